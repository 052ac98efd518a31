"""`load_model(device_map=..., max_memory=...)`: a model placed by accelerate (layers offloaded to cpu / disk) steers
exactly as the model loaded whole, and the placements steering cannot run with are refused with a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from attnsteer import Steerer, load_model
from attnsteer.cli.main import app
from attnsteer.cli.options import placement_options
from attnsteer.models import ModelLoadError
from attnsteer.models.placement import PlacementError, check_placement, parse_device_map, parse_max_memory
from attnsteer.steering.state import SteeringState

PROMPT = ("Previously, The Eiffel Tower is located in Paris. **Currently, The Eiffel Tower is located in Rome.** "
          "The Eiffel Tower is located in the city of")
# Layer 0 in memory, layers 1 and 2 and the output layer offloaded to disk: each runs through accelerate's hooks.
OFFLOADED = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk",
             "model.layers.2": "disk", "model.norm": "cpu", "lm_head": "disk"}
METHODS = [{"method": "pasta", "heads": "all"}, {"method": "instaboost", "boost": 5.0},
           {"method": "spotlight", "target": 0.6, "granularity": "head"},
           {"method": "spotlight", "target": 0.6, "granularity": "layer"}]


@pytest.fixture(scope="module")
def llama_models(tiny_model_dir, tmp_path_factory):
    """(whole, offloaded): the tiny Llama loaded whole on the CPU, and with OFFLOADED (disk weights in a folder)."""
    path = str(tiny_model_dir("llama"))
    offloaded = load_model(path, device_map=OFFLOADED, offload_folder=tmp_path_factory.mktemp("offload"))
    return load_model(path), offloaded


def steered_and_plain(steerer: Steerer) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(steered logits, plain logits) of PROMPT [1, tokens, vocab], and its steered greedy continuation."""
    encoded = steerer.encode(PROMPT)
    with torch.inference_mode():
        plain = steerer.model(**encoded.encodings).logits
        with steerer.steered(encoded.encodings, encoded.emphasis_mask):
            steered = steerer.model(**encoded.encodings).logits
    return steered, plain, steerer.generate(PROMPT, max_new_tokens=6)


def test_the_offloaded_model_runs_its_layers_through_accelerates_hooks(llama_models):
    _, (offloaded, _) = llama_models
    assert offloaded.hf_device_map == OFFLOADED
    assert offloaded.model.layers[1].self_attn.q_proj.weight.device.type == "meta"  # on disk until it runs
    assert hasattr(offloaded.model.layers[1], "_hf_hook")
    assert offloaded.config._attn_implementation == "attnsteer_sdpa"


@pytest.mark.parametrize("method", METHODS, ids=lambda m: "-".join(str(v) for v in m.values()))
def test_steering_an_offloaded_model_equals_the_whole_model(llama_models, method):
    (whole, tokenizer), (offloaded, _) = llama_models
    steered, plain, text = steered_and_plain(Steerer(whole, tokenizer, **method))
    placed_steered, placed_plain, placed_text = steered_and_plain(Steerer(offloaded, tokenizer, **method))
    assert torch.allclose(placed_plain, plain, atol=1e-5)
    assert torch.allclose(placed_steered, steered, atol=1e-5)
    assert (placed_steered - placed_plain).abs().max() > 1e-2  # steering is not a no-op on the offloaded model
    assert placed_text == text


def test_max_memory_offloads_by_itself_and_steers_the_same(tiny_model_dir):
    """Gemma 3 (sliding-window layers, tied embeddings): a CPU cap small enough that accelerate sends the layers to
    disk; PASTA and Spotlight give the whole model's logits."""
    path = str(tiny_model_dir("gemma3"))
    (whole, tokenizer), (capped, _) = load_model(path), load_model(path, max_memory={"cpu": "250KB"})
    assert set(capped.hf_device_map.values()) == {"cpu", "disk"}  # max_memory alone means device_map "auto"
    for method in (METHODS[0], METHODS[2]):
        steered, plain, _ = steered_and_plain(Steerer(whole, tokenizer, **method))
        placed_steered, _, _ = steered_and_plain(Steerer(capped, tokenizer, **method))
        assert torch.allclose(placed_steered, steered, atol=1e-5) and not torch.allclose(steered, plain, atol=1e-2)


def test_the_bias_is_built_on_each_layers_device():
    """Layers of a split model sit on different devices: the cached key bias must not cross from one to the next
    (a 'meta' query stands in for a second device on this CPU-only machine)."""
    state = SteeringState(token_bias=torch.tensor([[0.0, -1.0, -2.0, 0.0]]),
                          weights={0: torch.ones(1, 2), 1: torch.ones(1, 2), 2: torch.ones(1, 2)})
    state.note_query(0, 4)
    on_cpu, on_other = torch.zeros(1, 2, 4, 8), torch.zeros(1, 2, 4, 8, device="meta")
    first = state.bias_for(0, on_cpu, 4)
    assert state.bias_for(1, on_other, 4).device.type == "meta"
    assert torch.equal(state.bias_for(2, on_cpu, 4), first) and first.device.type == "cpu"
    assert state.steered_heads(1, on_other.device).device.type == "meta"


def test_placements_steering_cannot_run_with_are_refused(tiny_model_dir):
    llama, gemma = str(tiny_model_dir("llama")), str(tiny_model_dir("gemma3"))
    with pytest.raises(PlacementError, match=r"device_map\['model.layers.1'\] is 'meta': a module there has no "
                                             "weights"):
        load_model(llama, device_map={**OFFLOADED, "model.layers.1": "meta"})
    with pytest.raises(ModelLoadError, match=r"offloads the model's first weights \(model.embed_tokens, the input "
                                             "embeddings\\) to 'disk'"):
        load_model(llama, device_map={**OFFLOADED, "model.embed_tokens": "disk"})
    with pytest.raises(ModelLoadError, match="the tied weights lm_head.weight and model.embed_tokens.weight on cpu and "
                                             "disk: a weight offloaded to 'disk' cannot be tied"):
        load_model(gemma, device_map=OFFLOADED)  # accelerate would fail at the first forward (KeyError)
    with pytest.raises(ModelLoadError, match="give device \\('cpu'\\) or a device_map / max_memory, not both"):
        load_model(llama, device="cpu", device_map="auto")


@pytest.mark.parametrize(("arguments", "message"), [
    ({"device_map": "everywhere"}, "device_map must be a placement (auto, balanced, balanced_low_0, sequential), a "
     "device (cpu, cuda:1, 0, mps), or {module: device} whose devices are GPU indices, device names, 'cpu' or 'disk' "
     "(offloaded); got 'everywhere'"),
    ({"device_map": "disk"}, "device_map 'disk' for the whole model leaves no weights on a device"),
    ({"device_map": {}}, "device_map is an empty mapping"),
    ({"device_map": {"model.layers": "gpu"}}, "device_map['model.layers'] must be a GPU index, a device name (cpu, "
     "cuda:1, mps) or 'disk'; got 'gpu'"),
    ({"device_map": {3: "cpu"}}, "device_map keys must be module names such as 'model.layers.3'"),
    ({"device_map": {"": "cpu"}, "max_memory": {"cpu": "1GB"}}, "max_memory goes with device_map auto, balanced, "
     "balanced_low_0, sequential (accelerate's placement), not with device_map {'': 'cpu'}"),
    ({"max_memory": {"gpu0": "1GB"}}, "max_memory keys must be a GPU index (0, 1, ...) or one of cpu, mps, disk; got "
     "'gpu0'"),
    ({"max_memory": {"cpu": "lots"}}, "max_memory for 'cpu' must be a positive number of bytes or a size such as "
     "'20GiB' or '500MB' (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB); got 'lots'"),
    ({"max_memory": {"cpu": 0}}, "max_memory for 'cpu' must be a positive number of bytes"),
    ({"offload_folder": "/tmp/x"}, "offload_folder goes with a device_map"),
])
def test_bad_placements_name_what_is_allowed(arguments, message):
    with pytest.raises(PlacementError) as raised:
        check_placement(**arguments)
    assert message in str(raised.value)


def test_placement_values_as_from_pretrained_takes_them():
    assert check_placement() == {}
    assert check_placement(max_memory={0: "20GiB", "cpu": "1.5GB"}) == {
        "device_map": "auto", "max_memory": {0: 20 * 2**30, "cpu": 1_500_000_000}}
    assert check_placement("cuda:1") == {"device_map": "cuda:1"} and check_placement("0") == {"device_map": 0}
    assert check_placement({"model.layers": "1", "lm_head": "disk"}, offload_folder="~/off") == {
        "device_map": {"model.layers": 1, "lm_head": "disk"}, "offload_folder": str(Path("~/off").expanduser())}
    assert parse_max_memory("0=20GiB, cpu=60GiB") == {0: 20 * 2**30, "cpu": 60 * 2**30}
    assert parse_device_map('{"model.layers": "disk", "": 0}') == {"model.layers": "disk", "": 0}
    with pytest.raises(PlacementError, match="--max-memory takes device=size items joined by ','"):
        parse_max_memory("20GiB")
    with pytest.raises(PlacementError, match="--device-map: not a valid JSON object"):
        parse_device_map("{model.layers: disk}")
    with pytest.raises(PlacementError, match="max_memory goes with device_map"):
        placement_options("cpu", "cpu=1GB", None)


def test_cli_generate_with_a_device_map_and_max_memory(tiny_model_dir, tmp_path):
    path = str(tiny_model_dir("llama"))
    runner = CliRunner()
    plain = runner.invoke(app, ["generate", PROMPT, "--heads", "all", "--max-new-tokens", "5", "--model", path])
    placed = runner.invoke(app, ["generate", PROMPT, "--heads", "all", "--max-new-tokens", "5", "--model", path,
                                 "--device-map", json.dumps(OFFLOADED), "--offload-folder", str(tmp_path)])
    capped = runner.invoke(app, ["generate", PROMPT, "--heads", "all", "--max-new-tokens", "5", "--model", path,
                                 "--max-memory", "cpu=250KB"])
    assert plain.exit_code == placed.exit_code == capped.exit_code == 0, placed.output + capped.output
    assert placed.stdout == capped.stdout == plain.stdout
    bad = runner.invoke(app, ["generate", PROMPT, "--model", path, "--device-map", '{"lm_head": "meta"}'])
    assert bad.exit_code == 2 and "device_map['lm_head'] is 'meta'" in bad.output


def test_an_embedded_model_placed_by_max_memory_steers_as_loaded_whole(embedded_chat):
    """The embedded copy goes through `from_pretrained` when placed (its fast reader builds on the CPU only)."""
    model, tokenizer = embedded_chat
    capped, _ = load_model("smollm2-135m-instruct", max_memory={"cpu": "200MB"})
    assert set(capped.hf_device_map.values()) == {"cpu", "disk"}
    whole_steered, plain, _ = steered_and_plain(Steerer(model, tokenizer, heads="10,11"))
    placed_steered, _, _ = steered_and_plain(Steerer(capped, tokenizer, heads="10,11"))
    assert torch.allclose(placed_steered, whole_steered, atol=1e-5) and not torch.allclose(whole_steered, plain,
                                                                                           atol=1e-2)
