from __future__ import annotations

import pytest

from tests.tiny_models import tiny_model, tiny_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="session")
def embedded():
    """The real embedded Gemma 3 270M, loaded once per session (first use converts it, ~100 s)."""
    from attnsteer import load_model

    return load_model()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """save(architecture) -> a directory holding that tiny model and the tiny tokenizer (made once each)."""
    saved = {}

    def save(architecture: str):
        if architecture not in saved:
            path = tmp_path_factory.mktemp(f"tiny-{architecture}")
            tiny_model(architecture).save_pretrained(path)
            tokenizer.save_pretrained(path)
            saved[architecture] = path
        return saved[architecture]

    return save
