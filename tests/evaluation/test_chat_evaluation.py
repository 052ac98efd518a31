"""Tasks through a chat template (`evaluate(chat=True)`, `attnsteer eval --chat`): what the model reads and
where the emphasis lands."""

from __future__ import annotations

import pytest
from tests.tiny_models import tiny_model

from attnsteer.context.config import ContextError
from attnsteer.evaluation.runner import evaluate
from attnsteer.steerer import Steerer


@pytest.fixture(scope="module")
def chat_steerer(chat_tokenizer):
    """A tiny Llama with a ChatML template (its markers are added tokens, so the embeddings grow to fit)."""
    model = tiny_model("llama")
    model.resize_token_embeddings(len(chat_tokenizer), mean_resizing=False)
    return Steerer(model, chat_tokenizer, heads="1", markup=None)


@pytest.mark.parametrize("task", ["counterfact", "json_format"])
def test_chat_prompts_hold_the_demonstrations_as_turns_and_the_emphasis_on_the_task_text(chat_steerer, task):
    result = evaluate(chat_steerer.model, chat_steerer.tokenizer, task, "few-shot+pasta", limit=2, k_shot=2,
                      steerer=chat_steerer, chat=True, progress=False)
    assert result.config["chat"] is True and result.predictions
    for prediction in result.predictions:
        prompt = prediction["prompt"]
        assert prompt.count("<|im_start|>user\n") == 3 and prompt.count("<|im_start|>assistant\n") == 3
        assert prompt.endswith("<|im_start|>assistant\n")
        last_user = prompt.rindex("<|im_start|>user\n")
        emphasised = [prompt[start:end] for start, end in prediction["emphasis"]]
        assert emphasised and all(prompt.index(text, last_user) >= last_user for text in emphasised)


def test_plain_and_chat_renderings_differ_only_by_the_template(chat_steerer):
    plain, chat = (evaluate(chat_steerer.model, chat_steerer.tokenizer, "json_format", "pasta", limit=1,
                            steerer=chat_steerer, chat=flag, progress=False).predictions[0] for flag in (False, True))
    assert "<|im_start|>" not in plain["prompt"] and plain["prompt"] in chat["prompt"]
    assert [chat["prompt"][a:b] for a, b in chat["emphasis"]] == [plain["prompt"][a:b] for a, b in plain["emphasis"]]


def test_context_methods_refuse_a_chat_template_with_the_way_out(chat_steerer):
    with pytest.raises(ContextError, match="--chat off"):
        evaluate(chat_steerer.model, chat_steerer.tokenizer, "squad", "llmsteer", limit=1, steerer=chat_steerer,
                 chat=True, progress=False)
