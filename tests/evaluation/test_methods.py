from __future__ import annotations

import pytest

from attnsteer.evaluation.methods import UnknownMethodError, expand_methods, pick_demonstrations, render, wrap_spans
from attnsteer.spans import CharSpan
from attnsteer.tasks import Example

EXAMPLE = Example(id="x", kind="score", prompt="Old fact. New fact. Question", emphasis=(CharSpan(10, 19),),
                  answer=" yes", candidates=(" yes", " no"), gold=0)
DEMO = Example(id="d", kind="score", prompt="Demo prompt", emphasis=(CharSpan(0, 4),), answer=" ok",
               candidates=(" ok",), gold=0)


def test_expand_methods():
    assert expand_methods(["zero-shot", "marked", "pasta"]) == ["zero-shot", "marked-star", "marked-quote", "pasta"]
    assert len(expand_methods(["all"])) == 6
    with pytest.raises(UnknownMethodError, match="unknown method 'pastaa'; allowed: zero-shot"):
        expand_methods(["pastaa"])


def test_renderings():
    assert render("zero-shot", EXAMPLE).text == EXAMPLE.prompt and render("zero-shot", EXAMPLE).emphasis is None
    assert render("marked-star", EXAMPLE).text == "Old fact. *New fact.* Question"
    assert render("marked-quote", EXAMPLE).text == 'Old fact. "New fact." Question'
    steered = render("pasta", EXAMPLE)
    assert steered.text[steered.emphasis[0].start : steered.emphasis[0].end] == "New fact."
    few = render("few-shot+pasta", EXAMPLE, [DEMO])
    assert few.text == "Demo prompt ok\n\nOld fact. New fact. Question"
    assert few.text[few.emphasis[0].start : few.emphasis[0].end] == "New fact."
    assert render("few-shot", EXAMPLE, [DEMO]).emphasis is None


def test_wrap_several_spans_and_demonstrations_are_seeded():
    assert wrap_spans("a b c", [CharSpan(4, 5), CharSpan(0, 1)], "*") == "*a* b *c*"
    pool = [Example(id=str(i), kind="score", prompt=f"p{i}", emphasis=(CharSpan(0, 1),), answer=" a",
                    candidates=(" a", " b"), gold=0) for i in range(9)]
    assert pick_demonstrations(pool, 3, 0, "score") == pick_demonstrations(pool, 3, 0, "score")
    assert len(pick_demonstrations(pool, 3, 0, "score")) == 3
    assert pick_demonstrations(pool, 3, 0, "generate") == []


def test_evaluate_is_public():
    import attnsteer
    from attnsteer.evaluation import evaluate

    assert attnsteer.evaluate is evaluate
