from __future__ import annotations

import pytest

from tests.tiny_models import tiny_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer()
