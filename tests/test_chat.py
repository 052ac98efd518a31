"""`Steerer.chat`: emphasis inside messages lands on the same text after the chat template, and the steered
reply equals greedy decoding recomputed from scratch under the same steering."""

from __future__ import annotations

import pytest
import torch

from attnsteer import Steerer
from attnsteer.errors import AttnsteerError, SpanError
from tests.steering.test_equivalence import steer
from tests.tiny_models import tiny_model

SYSTEM = "Answer the occupation of the person and generate the answer as json format."
USER = "She is a nurse who works at the hospital."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]


@pytest.fixture(scope="module")
def chat_steerer(chat_tokenizer):
    model = tiny_model("llama")
    model.resize_token_embeddings(len(chat_tokenizer))  # room for the template's two special tokens
    return Steerer(model, chat_tokenizer, heads="0,1.2")


def emphasised_text(steerer, messages, emphasize):
    prompt = steerer.chat_prompt(messages, emphasize)
    ids, flags = prompt.encode(steerer.tokenizer)
    return steerer.tokenizer.decode([token for token, flag in zip(ids, flags, strict=True) if flag]), prompt


@pytest.mark.parametrize(("emphasize", "expected"), [
    ([["as json format"], None], "as json format"),  # system message
    ([None, ["a nurse"]], "a nurse"),  # user message
    ([["occupation"], [(7, 14)]], "occupationa nurse"),  # both, a substring and char offsets
])
def test_emphasis_lands_on_the_same_text_inside_the_template(chat_steerer, emphasize, expected):
    text, prompt = emphasised_text(chat_steerer, MESSAGES, emphasize)
    assert text.replace(" ", "") == expected.replace(" ", "")
    assert prompt.marked.text.startswith("<bos><|im_start|>system\n") and prompt.rendered.has_special_tokens


def test_markup_in_a_multi_turn_chat(chat_steerer):
    messages = [*MESSAGES, {"role": "assistant", "content": "nurse"},
                {"role": "user", "content": "And **he is a software engineer**?"}]
    text, prompt = emphasised_text(chat_steerer, messages, None)
    assert text.strip() == "he is a software engineer"
    assert "**" not in prompt.marked.text


def test_steered_chat_equals_greedy_recomputation(chat_steerer):
    reply = chat_steerer.chat(MESSAGES, emphasize=[["as json format"], None], max_new_tokens=6)
    plain = chat_steerer.chat(MESSAGES, emphasize=[["as json format"], None], max_new_tokens=6, steer=False)
    prompt = chat_steerer.chat_prompt(MESSAGES, [["as json format"], None])
    ids, flags = prompt.encode(chat_steerer.tokenizer)
    tokens, emphasis = torch.tensor([ids]), torch.tensor([flags])
    prompt_mask = torch.ones_like(emphasis)
    for _ in range(6):  # no KV cache: every step recomputes the whole sequence; new tokens are never biased
        with torch.no_grad(), steer(chat_steerer.model, chat_steerer.heads, emphasis, prompt_mask):
            next_token = chat_steerer.model(input_ids=tokens).logits[0, -1].argmax()
        tokens = torch.cat([tokens, next_token.view(1, 1)], dim=1)
        emphasis = torch.cat([emphasis, torch.zeros(1, 1, dtype=torch.bool)], dim=1)
        prompt_mask = torch.cat([prompt_mask, torch.zeros(1, 1, dtype=torch.bool)], dim=1)
    expected = chat_steerer.tokenizer.decode(tokens[0, len(ids):], skip_special_tokens=True)
    assert reply == expected
    assert reply != plain


def test_a_base_model_gets_the_plain_template_and_stops_at_a_new_turn(tokenizer):
    steerer = Steerer(tiny_model("llama"), tokenizer, heads="1")
    prompt = steerer.chat_prompt(MESSAGES, [None, ["a nurse"]])
    assert prompt.marked.text.endswith("Assistant:") and "User: She is a nurse" in prompt.marked.text
    assert not prompt.rendered.has_special_tokens
    reply = steerer.chat(MESSAGES, [None, ["a nurse"]], max_new_tokens=12)
    assert all(stop not in reply for stop in prompt.rendered.stop)


@pytest.mark.parametrize(("messages", "emphasize", "error", "message"), [
    (MESSAGES, [None, ["a doctor"]], SpanError, r"messages\[1\]: .*'a doctor' was not found"),
    (MESSAGES, [None], SpanError, "emphasize has 1 entries for 2 messages"),
    ([{"role": "robot", "content": "hi"}], None, AttnsteerError, "role 'robot' is not allowed"),
    ([{"role": "user"}], None, SpanError, r"messages\[0\] must be a dict with a 'role' and a str 'content'"),
    ([{"role": "user", "content": "a **b"}], None, AttnsteerError, r"messages\[0\]: .*"),
])
def test_bad_chat_input_names_the_message(chat_steerer, messages, emphasize, error, message):
    with pytest.raises(error, match=message):
        chat_steerer.chat(messages, emphasize, max_new_tokens=2)
