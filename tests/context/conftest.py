from __future__ import annotations

import pytest

from attnsteer.steerer import Steerer
from tests.tiny_models import tiny_model

CONTEXT = ("The Eiffel Tower is located in the city of Paris, the capital of France. "
           "She is a nurse who works at the hospital. He is a software engineer in Seattle.")
QUERY = " Previously, The Eiffel Tower is located in"


@pytest.fixture(scope="module")
def tiny_steerer(tokenizer):
    """A steerer on a tiny Gemma 3 (sliding window 6 tokens, so contexts are longer than the window)."""
    return Steerer(tiny_model("gemma3"), tokenizer, heads="0.1,1.0,1.3,2.2", markup=None)
