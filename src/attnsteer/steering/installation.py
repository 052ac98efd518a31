"""Install the steered attention on a model, and restore the original implementation.

Installing is the only model-wide change attnsteer makes; everything per call (steering, reading
attention probabilities) travels in contextvars (`state.py`) that the installed functions read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from transformers import PreTrainedModel

from attnsteer.errors import UnsupportedModelError
from attnsteer.steering.attention import STEERED_EAGER, STEERED_SDPA, register_steered_attention

_ORIGINAL = "_attnsteer_original_attn"
_USERS = "_attnsteer_users"
_LOCK = threading.Lock()


def check_supported(model: PreTrainedModel) -> None:
    """Raise UnsupportedModelError unless every attention layer dispatches through AttentionInterface."""
    name = type(model).__name__
    if not getattr(model, "_supports_attention_backend", False):
        raise UnsupportedModelError(
            f"{name} does not dispatch attention through transformers' AttentionInterface, so it cannot be "
            "steered; supported: decoders such as Llama, Mistral, Qwen2/3, Gemma 1/2/3, Phi3, OLMo2, GPT-2"
        )
    if not attention_layers(model):
        raise UnsupportedModelError(f"{name} has no attention modules with a layer_idx to steer")


def attention_layers(model: PreTrainedModel) -> dict[int, object]:
    """{layer index: attention module} for the self-attention modules that carry a `layer_idx`."""
    layers = {}
    for module_name, module in model.named_modules():
        if module_name.endswith(("self_attn", "attn", "attention")) and isinstance(
            getattr(module, "layer_idx", None), int
        ):
            layers.setdefault(module.layer_idx, module)
    return layers


def steered_name_for(implementation: str | None) -> str:
    """Our implementation matching the model's: eager stays eager (bit-identical when unsteered)."""
    return STEERED_EAGER if implementation == "eager" else STEERED_SDPA


def install(model: PreTrainedModel) -> None:
    """Switch the model to the steered attention (idempotent). Unsteered calls still run stock math."""
    with _LOCK:
        _install_locked(model)


def _install_locked(model: PreTrainedModel) -> None:
    current = model.config._attn_implementation
    if current in (STEERED_SDPA, STEERED_EAGER):
        return
    check_supported(model)
    register_steered_attention()
    if getattr(model.config, "attn_logit_softcapping", None) is not None:
        target = STEERED_EAGER  # sdpa cannot soft-cap logits
    else:
        target = steered_name_for(current)
    setattr(model, _ORIGINAL, current)
    model.set_attn_implementation(target)


def uninstall(model: PreTrainedModel) -> None:
    """Restore the attention implementation the model had before `install`."""
    with _LOCK:
        original = getattr(model, _ORIGINAL, None)
        if original is not None and getattr(model, _USERS, 0) == 0:
            model.set_attn_implementation(original)
            delattr(model, _ORIGINAL)


def is_installed(model: PreTrainedModel) -> bool:
    return model.config._attn_implementation in (STEERED_SDPA, STEERED_EAGER)


@contextmanager
def installed(model: PreTrainedModel) -> Iterator[None]:
    """Keep the steered attention installed inside the block.

    If this block (or a concurrent one) installed it, the original implementation comes back when
    the last such block exits; a model that was already steered-by-default stays as it was.
    """
    with _LOCK:
        owned = not is_installed(model) or getattr(model, _USERS, 0) > 0
        _install_locked(model)
        if owned:
            setattr(model, _USERS, getattr(model, _USERS, 0) + 1)
    try:
        yield
    finally:
        if owned:
            with _LOCK:
                setattr(model, _USERS, getattr(model, _USERS) - 1)
            uninstall(model)
