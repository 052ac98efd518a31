"""The fact steered prefix caching rests on: under PASTA, InstABoost and per-query Spotlight ("head") the logits at
positions <= i depend only on the tokens <= i and their emphasis flags; Spotlight "layer" does not have it (it
averages the span's share over all queries of the forward pass), which is why the prefix cache refuses it."""

from __future__ import annotations

import pytest
import torch

from attnsteer.steering import make_method, prepare_state, steered
from tests.tiny_models import tiny_model

ARCHITECTURES = ["llama", "mistral", "gemma3", "gpt2"]  # GQA (llama, mistral, gemma3), sliding windows of 6
# (mistral, gemma3; prompts of 24 tokens), learned absolute positions (gpt2)
METHODS = {  # label -> (steering method, its parameters)
    "pasta": ("pasta", {"heads": "0.1,1.0,1.3,2.2"}),
    "instaboost": ("instaboost", {"boost": 10.0}),
    "spotlight-head": ("spotlight", {"target": 0.5, "granularity": "head"}),
    "spotlight-layer": ("spotlight", {"target": 0.5, "granularity": "layer"}),
}
CAUSAL = ["pasta", "instaboost", "spotlight-head"]
LAST_SHARED = 11  # positions 0..11 agree between the two prompts (tokens and flags)


def two_prompts() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two [1, 24] prompts and emphasis masks equal up to LAST_SHARED, different (tokens and flags) after it."""
    generator = torch.Generator().manual_seed(3)
    first, second = torch.randint(3, 380, (2, 1, 24), generator=generator)
    second[:, : LAST_SHARED + 1] = first[:, : LAST_SHARED + 1]
    first_flags = torch.zeros(1, 24, dtype=torch.bool)
    first_flags[0, 4:9] = True
    second_flags = first_flags.clone()
    second_flags[0, 14:22] = True  # more emphasis, only after LAST_SHARED
    return first, first_flags, second, second_flags


def logits(model, method: str | None, ids: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """[tokens, vocab] logits of one prompt, steered by `method` (None: plain), in one forward pass."""
    state = None
    if method is not None:
        name, parameters = METHODS[method]
        row = make_method(name, model, **parameters).row()
        state = prepare_state(model, row, flags, torch.ones_like(flags))
    with torch.inference_mode(), steered(model, state):
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].float()


@pytest.fixture(scope="module", params=ARCHITECTURES)
def model(request):
    return tiny_model(request.param)


@pytest.mark.parametrize("method", CAUSAL)
def test_later_tokens_and_flags_do_not_change_earlier_logits(model, method):
    first, first_flags, second, second_flags = two_prompts()
    a, b = logits(model, method, first, first_flags), logits(model, method, second, second_flags)
    shared = slice(0, LAST_SHARED + 1)
    assert (a[shared] - b[shared]).abs().max() <= 1e-5
    assert (a[LAST_SHARED + 1:] - b[LAST_SHARED + 1:]).abs().max() > 1e-2  # the prompts do differ after it
    plain = logits(model, None, first, first_flags)
    assert (a[shared] - plain[shared]).abs().max() > 1e-3  # steering changed the shared positions


def test_spotlight_layer_is_not_causal(model):
    first, first_flags, second, second_flags = two_prompts()
    a = logits(model, "spotlight-layer", first, first_flags)
    b = logits(model, "spotlight-layer", second, second_flags)
    assert (a[: LAST_SHARED + 1] - b[: LAST_SHARED + 1]).abs().max() > 1e-3
