"""A small real HF fast tokenizer, trained offline, for the offset-mapping tests."""

from __future__ import annotations

from typing import Any

import pytest

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a quick test of the tokenizer on a short sentence",
    "the dog sleeps while the fox runs",
] * 4
SPECIAL_TOKENS = ["<s>", "<pad>", "<unk>"]
SPACE_MARKERS = ("Ġ", "▁")


def build_fast_tokenizer(kind: str) -> Any:
    """A BPE ``PreTrainedTokenizerFast`` with a BOS token, using a ByteLevel or Metaspace
    pre-tokenizer; unseen words split into several tokens."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tokenizer = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    if kind == "bytelevel":
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        alphabet = sorted(set("".join(CORPUS)) | set("zebraxyqwkvZ"))
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + len(SPECIAL_TOKENS) + 60,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    bos_id = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos_id)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", pad_token="<pad>", unk_token="<unk>"
    )


@pytest.fixture(scope="session", params=["bytelevel", "metaspace"])
def fast_tokenizer(request: pytest.FixtureRequest) -> Any:
    return build_fast_tokenizer(request.param)
