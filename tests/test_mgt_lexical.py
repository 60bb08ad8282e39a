"""The lexical MGT features (curate/score/lexical.py): values on hand-built documents, bad input, and the
features-only and fastText-stacked fits on the in-repo labelled subset."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from curate.errors import ModelError
from curate.score import lexical
from curate.score.labelled import prepare, split_rows
from curate.score.metrics import auroc
from curate.score.text import normalise

from conftest import mgt_rows


def test_features_of_a_hand_built_document() -> None:
    """Zipf statistics, rank buckets and punctuation rates follow from the word list, word by word."""
    table = lexical.word_table()
    the, unknown = table["the"], "qzxvkjwq"
    assert unknown not in table and the[1] == 0  # 'the' is among the 10 most frequent words
    f = dict(zip(lexical.FEATURES, lexical.features(["the", "the", ".", unknown, ","]), strict=True))
    assert f["zipf_mean"] == pytest.approx(2 * the[0] / 3)
    assert f["rank_top10"] == pytest.approx(2 / 3) and f["out_of_list"] == pytest.approx(1 / 3)
    assert f["punctuation_per_word"] == pytest.approx(2 / 3) and f["commas_per_word"] == pytest.approx(1 / 3)
    assert f["sentence_length_log_mean"] == pytest.approx(math.log(1.5))  # sentences of 2 and 1 words
    assert f["type_token_ratio"] == pytest.approx(2 / 3)


def test_common_words_score_higher_than_rare_ones() -> None:
    plain = normalise("The man went to the shop and he said that it was good for the day.")
    rare = normalise("Perspicacious lexicographers promulgate sesquipedalian neologisms notwithstanding obloquy.")
    z = lexical.FEATURES.index("zipf_mean")
    assert lexical.features(plain)[z] > lexical.features(rare)[z] + 1.0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "....,,,,!!!!",
        "a" * 5000,
        "ha " * 2000,
        bytes(range(256)).decode("latin-1") * 4,
        "Le chat est assis sur le tapis, et il regarde la pluie tomber doucement sur la ville.",
        "机器学习是人工智能的一个分支。" * 20,
    ],
)
def test_bad_or_odd_input_gives_finite_features(text: str) -> None:
    """Empty, punctuation-only, repeated characters, binary and other languages: finite numbers, no error (the
    scoring rules upstream, :func:`curate.score.text.unscorable` and the language check, refuse such texts)."""
    row = lexical.features(normalise(text))
    assert len(row) == len(lexical.FEATURES) and all(math.isfinite(v) for v in row)
    assert lexical.feature_matrix([normalise(text)] * 2).shape == (2, len(lexical.FEATURES))


def test_missing_wordfreq_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    lexical.word_table.cache_clear()
    monkeypatch.setitem(sys.modules, "wordfreq", None)
    try:
        with pytest.raises(ModelError, match="pip install wordfreq"):
            lexical.word_table()
    finally:
        monkeypatch.undo()
        lexical.word_table.cache_clear()
    assert "the" in lexical.word_table()


def test_halves_split_by_group() -> None:
    rows = mgt_rows()
    by_group: dict[str, set[int]] = {}
    for r in rows:
        by_group.setdefault(r["group"], set()).add(lexical.half_of(r))
    assert all(len(h) == 1 for h in by_group.values())
    assert 0.3 < np.mean([lexical.half_of(r) for r in rows]) < 0.7


def _subset_auroc(fit: object) -> tuple[float, list[float]]:
    train, val = split_rows(mgt_rows())
    labels, docs, _ = prepare(val)
    scores = fit(train)(docs)  # type: ignore[operator]
    assert len(scores) == len(docs) and all(0.0 <= s <= 1.0 for s in scores)
    return auroc(labels, scores), scores


def test_features_alone_carry_signal_on_the_subset() -> None:
    """A logistic regression on the features alone, fitted on the subset's training groups, ranks its validation
    texts well above chance, and refits identically."""
    a, scores = _subset_auroc(lexical.fit_lexical)
    assert a >= 0.70, a
    assert _subset_auroc(lexical.fit_lexical)[1] == scores


@pytest.mark.slow
def test_stack_fit_is_deterministic_and_beats_chance() -> None:
    """The stacked fit (two single-threaded fastText fits in fresh processes, then the regression) gives the
    same scores twice and ranks the subset's validation texts well above chance."""
    a, scores = _subset_auroc(lexical.stack_fit)
    assert a >= 0.75, a
    assert _subset_auroc(lexical.stack_fit)[1] == scores
