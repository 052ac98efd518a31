from __future__ import annotations

import nltk

from attnsteer.integrations.nltk_data import english_punkt_parameters, ensure_punkt_tab


def test_punkt_tab_is_written_offline_in_nltks_format_and_used(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNSTEER_NLTK_DATA", str(tmp_path))
    monkeypatch.setenv("NLTK_DATA", "")
    monkeypatch.setattr(nltk.data, "path", [])  # no other punkt_tab can be found
    found = ensure_punkt_tab()
    assert found == tmp_path / "tokenizers" / "punkt_tab" / "english"
    assert sorted(p.name for p in found.iterdir()) == [
        "abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt"]
    from nltk.tokenize.punkt import load_punkt_params

    loaded = load_punkt_params(nltk.data.find("tokenizers/punkt_tab/english/"))
    expected = english_punkt_parameters()
    assert loaded.abbrev_types == expected.abbrev_types and loaded.ortho_context == expected.ortho_context
    assert {"dr", "mr", "inc", "p.m"} <= loaded.abbrev_types
    text = "Dr. Smith met Mr. Jones at 5 p.m. on Jan. 5. They talked. Then it rained!"
    assert nltk.sent_tokenize(text) == ["Dr. Smith met Mr. Jones at 5 p.m. on Jan. 5.", "They talked.",
                                        "Then it rained!"]
    assert ensure_punkt_tab() == found  # found again, not rewritten


def test_lm_evals_ifeval_checker_counts_sentences_with_it():
    ensure_punkt_tab()
    from lm_eval.tasks.ifeval import instructions_util

    assert instructions_util.count_sentences("Dr. Smith went home. He slept at 9 p.m. on Monday. Done.") == 3
