from __future__ import annotations

import pytest

from tests.tiny_models import tiny_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="session")
def embedded():
    """The real embedded Gemma 3 270M, loaded once per session (first use converts it, ~100 s)."""
    from attnsteer import load_model

    return load_model()
