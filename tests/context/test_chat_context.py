"""A context read through a chat template (`prepare_context(chat=True)`): the template's head is cached with
the context, each query carries the tail, and the tokens are those of the whole prompt as one user message."""

from __future__ import annotations

import pytest
import torch

from attnsteer.chat import chat_with_demonstrations
from attnsteer.context import ContextError, ContextStore, LLMSteerConfig, autopasta_generate, prepare_context
from attnsteer.context.frame import ChatFrame
from attnsteer.spans import MarkedText
from tests.context.conftest import CONTEXT
from tests.context.test_steered_context import TOLERANCE, from_scratch

QUESTION = "\n\nQuestion: Where is the Eiffel Tower?\nAnswer:"


def test_the_frame_is_the_template_around_one_user_message(chat_tokenizer):
    frame = ChatFrame.of(chat_tokenizer)
    assert frame.head == "<bos><|im_start|>user\n"
    assert frame.tail == "<|im_end|>\n<|im_start|>assistant\n"


def test_a_tokenizer_without_a_template_is_refused_with_the_way_out(tokenizer):
    with pytest.raises(ContextError, match="no chat template.*chat=False"):
        ChatFrame.of(tokenizer)


@pytest.mark.parametrize("method", ["plain", "spans", "llmsteer"])
def test_context_and_query_are_the_tokens_of_the_whole_chat_prompt(chat_steerer, method):
    emphasize = ["the capital of France"] if method == "spans" else None
    context = prepare_context(chat_steerer, CONTEXT, method, emphasize=emphasize, chat=True,
                              llmsteer=LLMSteerConfig(top_k=6))
    whole, _ = chat_with_demonstrations(chat_steerer.tokenizer, MarkedText(CONTEXT + QUESTION)).encode(
        chat_steerer.tokenizer)
    read = torch.cat([context.input_ids, context.query_ids(QUESTION)], dim=1)[0].tolist()
    assert read == whole
    head = ChatFrame.of(chat_steerer.tokenizer).head
    head_tokens = len(chat_steerer.tokenizer(head, add_special_tokens=False)["input_ids"])
    if context.steered:  # the template's head is never emphasised
        assert not context.emphasis_mask[0, :head_tokens].any() and context.emphasis_mask.any()


@pytest.mark.parametrize("method", ["plain", "spans", "llmsteer"])
def test_cached_chat_context_equals_recomputing(chat_steerer, method):
    emphasize = ["the capital of France"] if method == "spans" else None
    context = prepare_context(chat_steerer, CONTEXT, method, emphasize=emphasize, chat=True,
                              llmsteer=LLMSteerConfig(top_k=6))
    cached, reference = context.logits(QUESTION), from_scratch(context, QUESTION)
    assert cached.shape == reference.shape
    assert (cached - reference).abs().max().item() <= TOLERANCE


def test_chat_and_plain_readings_are_kept_apart_in_a_store(chat_steerer):
    store = ContextStore()
    chat = prepare_context(chat_steerer, CONTEXT, "plain", chat=True, store=store)
    plain = prepare_context(chat_steerer, CONTEXT, "plain", store=store)
    assert chat.num_tokens > plain.num_tokens and store.stats()["entries"] == 2
    assert prepare_context(chat_steerer, CONTEXT, "plain", chat=True, store=store) is chat


def test_autopasta_through_the_template_answers(chat_steerer):
    answer = autopasta_generate(chat_steerer, CONTEXT, QUESTION, max_new_tokens=3, chat=True,
                                extraction_query="Where is the Eiffel Tower?")
    assert isinstance(answer.text, str) and isinstance(answer.extraction, str)
