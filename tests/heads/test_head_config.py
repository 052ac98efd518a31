from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnsteer.errors import HeadConfigError
from attnsteer.heads import HeadConfig

PASTA_CONFIGS = sorted((Path(__file__).parents[2] / "data" / "pasta_head_configs").glob("*.json"))


def test_forms_agree():
    expected = HeadConfig.from_pairs([(11, 2), (12, 0), (12, 1), (12, 2), (12, 3)])
    assert HeadConfig.parse({"11": [2], 12: [3, 2, 1, 0]}) == expected
    assert HeadConfig.parse("12,11.2", num_layers=18, num_heads=4) == expected
    assert HeadConfig.parse(["11.2", 12], num_layers=18, num_heads=4) == expected
    assert HeadConfig.parse([12], num_layers=18, num_heads=4).as_dict() == {12: [0, 1, 2, 3]}
    assert HeadConfig.parse("all", num_layers=2, num_heads=3).num_heads_steered == 6
    assert str(expected) == "11.2,12.0,12.1,12.2,12.3"


@pytest.mark.parametrize("path", PASTA_CONFIGS, ids=lambda p: p.stem)
def test_loads_the_papers_published_head_sets(path, tmp_path):
    raw = json.loads(path.read_text())
    config = HeadConfig.load(path)
    assert config.num_heads_steered == sum(len(heads) for heads in raw.values())
    assert config.as_dict() == {int(layer): sorted(heads) for layer, heads in raw.items()}
    config.validate(num_layers=32, num_heads=32)  # LLaMA-7B / GPT-J shapes hold them
    config.save(tmp_path / "copy.json")
    assert HeadConfig.load(tmp_path / "copy.json") == config


def test_papers_llama_set_rejected_for_a_smaller_model():
    llama = next(p for p in PASTA_CONFIGS if "llama" in p.name)
    with pytest.raises(HeadConfigError, match=r"out of range: the model has (layers 0..17|heads 0..3)"):
        HeadConfig.parse(llama, num_layers=18, num_heads=4)


@pytest.mark.parametrize(("spec", "message"), [
    ("12.4", r"head 4 of layer 12 is out of range: the model has heads 0..3"),
    ("18", r"layer 18 is out of range: the model has layers 0..17"),
    ("x.1", r"layer in 'x.1' must be an integer >= 0, got 'x'"),
    ({"3": []}, r"layer '3' lists no heads"),
    ({"3": "12"}, r"must map to a list of head indices"),
    ("missing.json", r"does not exist"),
    ("", r"cannot read heads from"),
])
def test_bad_specs_name_the_value(spec, message):
    with pytest.raises(HeadConfigError, match=message):
        HeadConfig.parse(spec, num_layers=18, num_heads=4)


def test_profile_file_with_metadata_is_read(tmp_path):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps({"model_id": "m", "heads": {"1": [0]}}))
    assert HeadConfig.load(path).as_dict() == {1: [0]}
