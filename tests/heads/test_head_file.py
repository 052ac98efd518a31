"""The one head-file reader: every accepted form, the model a file names, and errors that name the file."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from attnsteer.errors import HeadConfigError
from attnsteer.evaluation import ranked_heads
from attnsteer.heads import HeadConfig, heads_for_model, read_head_file, shipped_head_sets


def write(tmp_path, data, name="heads.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def fake_model(identity="tiny", layers=4, heads=2):
    text = SimpleNamespace(num_hidden_layers=layers, num_attention_heads=heads)
    return SimpleNamespace(config=SimpleNamespace(attnsteer_model_id=identity, get_text_config=lambda: text))


def test_pasta_file_profiled_file_and_ranking_file(tmp_path):
    pasta = read_head_file(write(tmp_path, {"3": [1], "1": [0, 1]}))
    assert pasta.heads == HeadConfig.from_dict({1: [0, 1], 3: [1]})
    assert pasta.ranking == ("3.1", "1.0", "1.1") and not pasta.names_model
    profiled = read_head_file(write(tmp_path, {"model_id": "tiny", "num_layers": 4, "num_heads": 2,
                                               "heads": {"2": [1]}, "provenance": "attnsteer profile"}))
    assert (profiled.model_id, profiled.num_layers, profiled.num_heads) == ("tiny", 4, 2)
    assert profiled.heads == HeadConfig.from_pairs([(2, 1)]) and profiled.provenance == "attnsteer profile"
    ranked = read_head_file(write(tmp_path, {"ranking": ["2.1", "0.0"]}))
    assert ranked.ranking == ("2.1", "0.0") and ranked.heads == HeadConfig.from_pairs([(0, 0), (2, 1)])
    assert ranked_heads(str(write(tmp_path, ["1.1", "0.1"]))) == ["1.1", "0.1"]


def test_a_profiled_file_is_refused_for_another_model(tmp_path):
    path = write(tmp_path, {"model_id": "tiny", "num_layers": 4, "num_heads": 2, "heads": {"2": [1]}})
    assert heads_for_model(str(path), fake_model()) == HeadConfig.from_pairs([(2, 1)])
    with pytest.raises(HeadConfigError, match="profiled for model 'tiny' .4 layers x 2 heads., not for 'other'"):
        heads_for_model(str(path), fake_model("other"))
    with pytest.raises(HeadConfigError, match="not for 'tiny' .6 x 2."):
        heads_for_model(path, fake_model(layers=6))


@pytest.mark.parametrize(("text", "message"), [
    ("{", "is not valid JSON"),
    ('"12"', "must hold a JSON object"),
    ('{"model_id": 3, "heads": {"1": [0]}}', "'model_id' must be a str"),
    ('{"1": []}', "lists no heads"),
])
def test_bad_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(HeadConfigError, match=message):
        read_head_file(path)
    with pytest.raises(HeadConfigError, match="does not exist"):
        read_head_file(tmp_path / "missing.json")


def test_shipped_sets_name_their_model():
    entries = shipped_head_sets()
    assert entries and all(entry.names_model and entry.provenance for entry in entries)


def test_the_chat_model_gets_its_own_profiled_set_by_default(embedded_chat):
    from attnsteer import Steerer
    from attnsteer.model_info import model_identity

    model, tokenizer = embedded_chat
    shipped = {entry.model_id: entry for entry in shipped_head_sets()}
    assert set(shipped) >= {"gemma-3-270m-q4_k_m", "smollm2-135m-instruct"}
    steerer = Steerer(model, tokenizer)
    assert model_identity(model) == "smollm2-135m-instruct"
    assert steerer.heads == shipped["smollm2-135m-instruct"].heads != shipped["gemma-3-270m-q4_k_m"].heads
    assert "--model smollm2-135m-instruct" in shipped["smollm2-135m-instruct"].provenance
