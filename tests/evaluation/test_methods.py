from __future__ import annotations

import pytest

from attnsteer.errors import AttnsteerError
from attnsteer.evaluation.methods import (
    EvalMethod,
    UnknownMethodError,
    continuation,
    expand_methods,
    get_method,
    method_names,
    pick_demonstrations,
    register_method,
    render,
    wrap_spans,
)
from attnsteer.spans import CharSpan, MarkedText
from attnsteer.tasks import Example

EXAMPLE = Example(id="x", kind="score", prompt="Old fact. New fact. Question", emphasis=(CharSpan(10, 19),),
                  answer=" yes", candidates=(" yes", " no"), gold=0)
DEMO = Example(id="d", kind="score", prompt="Demo prompt", emphasis=(CharSpan(0, 4),), answer=" ok",
               candidates=(" ok",), gold=0)


def test_expand_methods():
    assert expand_methods(["zero-shot", "marked", "pasta"]) == ["zero-shot", "marked-star", "marked-quote", "pasta"]
    assert expand_methods(["all"]) == ["zero-shot", "marked-star", "marked-quote", "few-shot", "pasta",
                                       "few-shot+pasta"]
    assert expand_methods(["all", "pasta", "llmsteer"])[-1] == "llmsteer"  # no duplicates


def test_unknown_method_lists_the_allowed_and_aliases_and_suggests_the_closest():
    with pytest.raises(UnknownMethodError, match=r"unknown evaluation method 'pastaa'; choose one of 'zero-shot'.*"
                                                 r"'spa', 'marked', 'all'; did you mean 'pasta'\?"):
        expand_methods(["pastaa"])
    with pytest.raises(UnknownMethodError, match="did you mean 'few-shot'"):
        render("fewshot", EXAMPLE)


def test_each_method_is_registered_once_with_what_it_does():
    assert method_names() == ["zero-shot", "marked-star", "marked-quote", "few-shot", "pasta", "few-shot+pasta",
                              "autopasta", "llmsteer", "instaboost", "spotlight", "spa"]
    assert [name for name in method_names() if get_method(name).steers] == [
        "pasta", "few-shot+pasta", "autopasta", "llmsteer", "instaboost", "spotlight", "spa"]
    assert [name for name in method_names() if get_method(name).reads_context] == ["autopasta", "llmsteer"]
    with pytest.raises(ValueError, match="already registered"):
        register_method(EvalMethod("pasta", lambda example, demos: render("zero-shot", example), steers=False))
    assert register_method(get_method("pasta")) is get_method("pasta")  # the same method again is harmless
    with pytest.raises(ValueError, match="render function exactly when"):
        EvalMethod("broken", None, steers=True)
    with pytest.raises(AttnsteerError, match="reads a context"):
        render("llmsteer", EXAMPLE)


def test_renderings():
    assert render("zero-shot", EXAMPLE).plain() == MarkedText(EXAMPLE.prompt)
    assert render("zero-shot", EXAMPLE).emphasis is None
    assert render("marked-star", EXAMPLE).plain().text == "Old fact. *New fact.* Question"
    assert render("marked-quote", EXAMPLE).plain().text == 'Old fact. "New fact." Question'
    steered = render("pasta", EXAMPLE).plain()
    assert steered.text[steered.spans[0].start : steered.spans[0].end] == "New fact."
    few = render("few-shot+pasta", EXAMPLE, [DEMO]).plain()
    assert few.text == "Demo prompt ok\n\nOld fact. New fact. Question"
    assert few.text[few.spans[0].start : few.spans[0].end] == "New fact."
    assert render("few-shot", EXAMPLE, [DEMO]).emphasis is None


def test_chat_rendering_puts_demonstrations_in_turns_and_emphasis_in_the_last_user_message(chat_tokenizer):
    chat = render("few-shot+pasta", EXAMPLE, [DEMO]).chat(chat_tokenizer)
    text = chat.marked.text
    assert text.count("<|im_start|>user\n") == 2 and "<|im_start|>assistant\nok<|im_end|>" in text
    assert [text[span.start : span.end] for span in chat.marked.spans] == ["New fact."]
    assert text.index("New fact.") > text.index("Demo prompt")
    assert continuation(" Paris", chat=True) == "Paris" and continuation(" Paris", chat=False) == " Paris"


def test_wrap_several_spans_and_demonstrations_are_seeded():
    assert wrap_spans("a b c", [CharSpan(4, 5), CharSpan(0, 1)], "*") == "*a* b *c*"
    pool = [Example(id=str(i), kind="score", prompt=f"p{i}", emphasis=(CharSpan(0, 1),), answer=" a",
                    candidates=(" a", " b"), gold=0) for i in range(9)]
    picked = pick_demonstrations(pool, 3, 0, "score")
    assert picked == pick_demonstrations(pool, 3, 0, "score")  # the same seed, the same demonstrations
    assert len({example.id for example in picked}) == 3 and all(example in pool for example in picked)
    assert any(pick_demonstrations(pool, 3, seed, "score") != picked for seed in range(1, 6))  # the seed matters
    assert pick_demonstrations(pool, 3, 0, "generate") == []


def test_evaluate_is_public():
    import attnsteer
    from attnsteer.evaluation import evaluate

    assert attnsteer.evaluate is evaluate
