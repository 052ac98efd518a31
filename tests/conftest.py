"""Fixtures shared by the whole suite: the tiny tokenizer and saved tiny models, and the one embedded model.

Every test that uses the `embedded` or `embedded_chat` fixture (directly or through `embedded_steerer`, the
server fixtures, ...) is marked `embedded` at collection, so `pytest -m "not embedded"` runs the fast part.
"""

from __future__ import annotations

import pytest

from tests.tiny_models import tiny_model, tiny_tokenizer

EMBEDDED_MARKER = "embedded"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `embedded` every test whose fixture closure loads an embedded model."""
    for item in items:
        if {"embedded", "embedded_chat"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(EMBEDDED_MARKER)


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer()


CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="session")
def chat_tokenizer():
    """The tiny tokenizer plus a ChatML-style template whose markers are special tokens (its own instance)."""
    chat = tiny_tokenizer()
    chat.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    chat.chat_template = CHAT_TEMPLATE
    return chat


@pytest.fixture(scope="session")
def chat_steerer(chat_tokenizer):
    """A tiny Llama with a ChatML template (its markers are added tokens, so the embeddings grow to fit)."""
    from attnsteer.steerer import Steerer

    model = tiny_model("llama")
    model.resize_token_embeddings(len(chat_tokenizer), mean_resizing=False)
    return Steerer(model, chat_tokenizer, heads="1", markup=None)


@pytest.fixture(scope="session")
def embedded():
    """(model, tokenizer): the real embedded Gemma 3 270M, loaded once per session (first use converts it, ~100 s)."""
    from attnsteer import load_model

    return load_model()


@pytest.fixture(scope="session")
def embedded_chat():
    """(model, tokenizer): the real embedded chat model SmolLM2-135M-Instruct, loaded once per session."""
    from attnsteer import load_model

    return load_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def embedded_steerer(embedded):
    """A `Steerer` on the embedded model with its shipped default heads and the default `**markup**`.

    Session-scoped and shared by every model-heavy test (server, contexts, the embedded model's own tests);
    tests that need other heads or alpha take `embedded_steerer.with_options(...)`, which shares the model.
    """
    from attnsteer import Steerer

    model, tokenizer = embedded
    return Steerer(model, tokenizer)


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


@pytest.fixture(scope="session")
def model_dir(tiny_model_dir):
    """The directory of a tiny Gemma 3 (3 layers x 4 heads, sliding window 6) that the CLI tests load with --model."""
    return tiny_model_dir("gemma3")
