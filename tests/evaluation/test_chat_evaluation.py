"""Tasks through a chat template (`evaluate(chat=True)`, `attnsteer eval --chat`): what the model reads and
where the emphasis lands."""

from __future__ import annotations

import pytest

from attnsteer.evaluation.runner import evaluate


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


@pytest.mark.parametrize("method", ["llmsteer", "autopasta"])
def test_context_methods_read_the_prompt_as_the_zero_shot_chat_does(chat_steerer, method):
    options = {"limit": 1, "steerer": chat_steerer, "chat": True, "progress": False}
    context = evaluate(chat_steerer.model, chat_steerer.tokenizer, "squad", method, **options)
    zero_shot = evaluate(chat_steerer.model, chat_steerer.tokenizer, "squad", "zero-shot", **options)
    assert [p["prompt"] for p in context.predictions] == [p["prompt"] for p in zero_shot.predictions]
    assert context.predictions[0]["prompt"].endswith("<|im_end|>\n<|im_start|>assistant\n")
