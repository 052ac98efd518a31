"""The evaluation method `spa`: Selective Prompt Anchoring through the `anchoring` package (the `spa` extra).

Skipped where the package is not installed, except the error that says how to install it."""

from __future__ import annotations

import sys

import pytest
import torch
from tests.evaluation.test_steering_methods import run, scores
from tests.tiny_models import tiny_model
from typer.testing import CliRunner

from attnsteer.cli.main import app
from attnsteer.evaluation.methods import render
from attnsteer.evaluation.spa import DEFAULT_STRENGTH, AnchoringMissingError, SpaRuns
from attnsteer.tasks import get_task


@pytest.fixture(scope="module")
def steerer(tokenizer):
    from attnsteer.steerer import Steerer

    return Steerer(tiny_model("llama"), tokenizer, heads="1", markup=None)


def test_spa_at_strength_1_scores_as_the_plain_model_and_a_strength_changes_the_scores(steerer):
    pytest.importorskip("anchoring")
    plain = scores(run(steerer, "zero-shot"))
    assert scores(run(steerer, "spa", spa_strength=1.0)) == pytest.approx(plain, abs=1e-4)
    anchored = run(steerer, "spa", spa_strength=3.0)
    assert anchored.config["steering"] == {"method": "spa", "strength": 3.0, "modulated_by_prob": True,
                                           "use_attention_mask": True, "anchoring_version": "0.1.0"}
    assert max(abs(a - b) for a, b in zip(scores(anchored), plain, strict=True)) > 1e-3
    assert run(steerer, "spa").config["steering"]["strength"] == DEFAULT_STRENGTH


def test_spa_generation_is_the_packages_own_generation_with_the_emphasis_as_anchors(steerer):
    anchoring = pytest.importorskip("anchoring")
    example = next(e for e in get_task("json_format")().examples("test", 3) if e.kind == "generate")
    rendered = render("spa", example)
    runs = SpaRuns(steerer, 3.0, chat=False)
    ours = runs.generate([rendered], [rendered.plain()], 12, None)[0]
    anchors = [rendered.prompt[span.start : span.end] for span in rendered.emphasis]
    main, aux, mask_token = anchoring.spa_tokenize(rendered.prompt, anchors, steerer.tokenizer, steerer.model.device)
    processor = anchoring.SPALogitsProcessor(steerer.model, aux, mask_token, strength=3.0, modulated_by_prob=True,
                                             tokenizer=steerer.tokenizer, use_attention_mask=True)
    with torch.inference_mode():
        output = steerer.model.generate(input_ids=main, attention_mask=torch.ones_like(main), max_new_tokens=12,
                                        logits_processor=[processor], do_sample=False,
                                        pad_token_id=steerer.tokenizer.pad_token_id)
    assert ours == steerer.tokenizer.decode(output[0, main.shape[1] :], skip_special_tokens=True)
    assert mask_token in aux_text(steerer.tokenizer, aux) and anchors[0] not in aux_text(steerer.tokenizer, aux)


def aux_text(tokenizer, ids) -> str:
    return tokenizer.decode(ids[0], skip_special_tokens=True)


def test_spa_scores_are_the_log_probabilities_of_the_packages_adjusted_distribution(steerer):
    """Each candidate token's score is log_softmax of the package's processor output on the main logits, step by
    step (the reference built with the package's own tokenisation of the prompt and its anchors)."""
    anchoring = pytest.importorskip("anchoring")
    example = get_task("counterfact")().examples("test", 1)[0]
    rendered = render("spa", example)
    candidates = [" Rome", " Paris located"]
    ours = SpaRuns(steerer, 3.0, chat=False).score(rendered, rendered.plain(), candidates)
    anchors = [rendered.prompt[span.start : span.end] for span in rendered.emphasis]
    main, aux, mask_token = anchoring.spa_tokenize(rendered.prompt, anchors, steerer.tokenizer, steerer.model.device)
    for candidate, (score, count) in zip(candidates, ours, strict=True):
        tokens = steerer.tokenizer(candidate, add_special_tokens=False)["input_ids"]
        processor = anchoring.SPALogitsProcessor(steerer.model, aux, mask_token, strength=3.0,
                                                 tokenizer=steerer.tokenizer)
        expected, ids = 0.0, main
        for token in tokens:
            with torch.inference_mode():
                logits = steerer.model(input_ids=ids).logits[:, -1].float()
                expected += float(torch.log_softmax(processor(ids, logits), dim=-1)[0, token])
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        assert count == len(tokens) and score == pytest.approx(expected, abs=1e-4)
    plain = steerer.score_candidates(rendered.plain(), candidates, steer=False)
    assert max(abs(a[0] - b[0]) for a, b in zip(ours, plain, strict=True)) > 1e-3


def test_a_missing_anchoring_package_is_a_clear_error_before_any_model_loads(steerer, monkeypatch):
    monkeypatch.setitem(sys.modules, "anchoring", None)  # `import anchoring` now fails
    with pytest.raises(AnchoringMissingError, match=r"needs the anchoring package .* pip install 'attnsteer\[spa\]'"):
        run(steerer, "spa")
    result = CliRunner().invoke(app, ["eval", "--task", "counterfact", "--method", "spa", "--model", "/nonexistent"])
    assert result.exit_code == 2 and "pip install 'attnsteer[spa]'" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "spa", "--spa-strength", "inf"], "spa_strength must be a finite number"),
    (["--method", "spa", "--spa-strength", "x"], "--spa-strength takes comma-separated numbers"),
    (["--method", "pasta", "--spa-strength", "2"], "--spa-strength is given but none of the methods pasta uses it"),
])
def test_bad_spa_input_exits_2(args, message):
    result = CliRunner().invoke(app, ["eval", "--task", "counterfact", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
