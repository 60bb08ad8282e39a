"""Generator-agnostic lexical features of a document, and a stacked detector that adds them to fastText (issue 15).

The features come from word frequencies of large general human corpora, not from the labelled data, so they
cannot memorise a generator or a domain: ``wordfreq``'s English ``large`` list (Zipf frequencies from Wikipedia,
subtitles, news, books, web text, Twitter and Reddit, collected before 2022; code Apache-2.0, data CC-BY-SA 4.0
with the SUBTLEX credit, see the package's README). Over a document's normalised words
(:func:`curate.score.text.normalise`) they are, in :data:`FEATURES` order:

- the mean, standard deviation and 10th / 25th percentiles of the words' Zipf frequency (a unigram surprisal);
- GLTR-style frequency-rank buckets: the share of words among the 10, 100, 1,000, 10,000 most frequent, the
  rest of the list, and out of the list;
- burstiness: the standard deviation across sentences of their mean Zipf frequency, the log of the mean
  sentence length and its coefficient of variation;
- the type-token ratio of the first 100 words, punctuation tokens and commas per word.

:func:`stack_fit` is a :data:`curate.score.ood.FoldFit`: two fastText models (the ``mgt-fasttext-v1`` recipe),
each fitted on one half of the training groups, give every training row an out-of-fold score; a logistic
regression on [logit of that score, features] is fitted on them; a new document gets the mean logit of the two
models. Registered as the kind ``lexical`` (:mod:`curate.score.lexical_model`, ``mgt-lexical-v1``); measured on
the leave-one-out folds in docs/mgt.md.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ModelError
from curate.score import fasttext_model
from curate.score.labelled import balance_copies, prepare, web_split
from curate.score.metrics import clipped_logit
from curate.score.minilm_model import fit_head, head_probs
from curate.score.ood import Scorer

FEATURES = (
    "zipf_mean",
    "zipf_std",
    "zipf_p10",
    "zipf_p25",
    "rank_top10",
    "rank_top100",
    "rank_top1k",
    "rank_top10k",
    "rank_rest",
    "out_of_list",
    "sentence_zipf_std",
    "sentence_length_log_mean",
    "sentence_length_cv",
    "type_token_ratio",
    "punctuation_per_word",
    "commas_per_word",
)
RANK_BOUNDS = (10, 100, 1_000, 10_000)  # frequency-rank buckets of the word list
WORDLIST = ("en", "large")  # wordfreq's language and list
TTR_WORDS = 100  # words of the head the type-token ratio is measured on
MIN_SENTENCE_WORDS = 3  # shorter sentences do not count toward the sentence-level Zipf spread
STACK_L2 = 1e-3
_SENTENCE_END = frozenset(".!?")
_OUT_OF_LIST = (0.0, len(RANK_BOUNDS) + 1)


@functools.cache
def word_table() -> dict[str, tuple[float, int]]:
    """word -> (Zipf frequency, rank bucket) of :data:`WORDLIST` (about 320k words, loaded once, ~0.5 s).

    Raises:
        ModelError: the ``wordfreq`` package is not installed.
    """

    try:
        from wordfreq import get_frequency_dict
    except ImportError:
        raise ModelError("the lexical MGT features need the wordfreq package: pip install wordfreq") from None
    freqs = get_frequency_dict(*WORDLIST)
    ranked = sorted(freqs.items(), key=lambda kv: (-kv[1], kv[0]))
    return {w: (math.log10(f * 1e9), sum(i >= b for b in RANK_BOUNDS)) for i, (w, f) in enumerate(ranked)}


def _std(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def _quantile(ordered: Sequence[float], q: float) -> float:
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def features(words: Sequence[str]) -> list[float]:
    """The :data:`FEATURES` of one document's normalised words (any list of tokens; empty gives zeros)."""
    table = word_table()
    get = table.get
    zipfs: list[float] = []
    buckets = [0] * (len(RANK_BOUNDS) + 2)
    sentence_means: list[float] = []
    sentence_lengths: list[int] = []
    s_sum, s_n, punct, commas = 0.0, 0, 0, 0
    for w in words:
        c = w[0]
        if c.isalnum() or c in "'_":
            z, b = get(w, _OUT_OF_LIST)
            zipfs.append(z)
            buckets[b] += 1
            s_sum += z
            s_n += 1
            continue
        punct += 1
        if c == ",":
            commas += 1
        elif w in _SENTENCE_END and s_n:
            sentence_lengths.append(s_n)
            if s_n >= MIN_SENTENCE_WORDS:
                sentence_means.append(s_sum / s_n)
            s_sum, s_n = 0.0, 0
    if s_n:
        sentence_lengths.append(s_n)
        if s_n >= MIN_SENTENCE_WORDS:
            sentence_means.append(s_sum / s_n)
    n = max(1, len(zipfs))
    ordered = sorted(zipfs) or [0.0]
    lengths = sentence_lengths or [1]
    mean_length = sum(lengths) / len(lengths)
    head = [w for w in words[: 2 * TTR_WORDS] if w[0].isalnum()][:TTR_WORDS]
    return [
        sum(zipfs) / n,
        _std(zipfs),
        _quantile(ordered, 0.10),
        _quantile(ordered, 0.25),
        *[k / n for k in buckets],
        _std(sentence_means) if len(sentence_means) >= 2 else 0.0,
        math.log(mean_length),
        _std(lengths) / mean_length,
        len(set(head)) / max(1, len(head)),
        punct / n,
        commas / n,
    ]


def feature_matrix(docs: Sequence[Sequence[str]]) -> np.ndarray:
    """``(len(docs), len(FEATURES))`` float64 features of normalised documents."""
    return np.asarray([features(d) for d in docs], dtype=np.float64).reshape(len(docs), len(FEATURES))


def half_of(row: dict[str, Any]) -> int:
    """Which half (0 or 1) of the training groups a labelled row belongs to: by its group, like the split."""
    key = str(row.get("group") or row.get("id") or row["text"])
    return int(hashlib.sha1(f"lexical-half:{key}".encode()).hexdigest(), 16) % 2


Head = dict[str, np.ndarray]


def fit_lexical(rows: list[dict[str, Any]]) -> Scorer:
    """A :data:`curate.score.ood.FoldFit` on the features alone (an L2-regularised logistic regression on the
    standardised :data:`FEATURES`, deterministic): for measuring what the features carry without fastText."""

    labels, docs, _ = prepare(rows)
    head: Head = fit_head(feature_matrix(docs), np.asarray(labels, dtype=bool), STACK_L2)

    def score(new_docs: Sequence[Sequence[str]]) -> list[float]:
        return [float(v) for v in head_probs(head, feature_matrix(new_docs))] if new_docs else []

    return score


HALF_FILES = ("half0.bin", "half1.bin")  # the two fastText halves of a stack, in the order of :func:`half_of`
STACK_INPUTS = ("fasttext_logit", *FEATURES)  # the regression's input columns, in order


def fit_stack(
    rows: list[dict[str, Any]], folder: Path, web: list[dict[str, Any]] | None = None
) -> tuple[list[fasttext_model.FastTextModel], Head]:
    """Fit the stack on labelled ``rows``: the two fastText halves (written to ``folder`` as :data:`HALF_FILES`)
    and the regression on [out-of-fold fastText logit, :data:`FEATURES`]; returns (the two loaded models, the
    regression's head). Without ``web`` the halves follow the v1 recipe (every row once); with real human web
    pages (:func:`curate.score.labelled.read_web_human`) they follow ``mgt-fasttext-v2``'s balanced web recipe
    (the ``train`` pages added, copies by :func:`curate.score.labelled.balance_copies`, so one-class domains are
    left out), and the regression is fitted on the labelled rows that recipe shows. Deterministic: every fastText
    fit is single-threaded with a fixed seed, in a fresh process (:func:`curate.score.fasttext_model.train_supervised`),
    so the same rows give byte-identical model files and the same head.

    Raises:
        ModelError: a fastText fit failed.
    """
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    shown, copies, params = rows, [1] * len(rows), fasttext_model.FASTTEXT_PARAMS
    if web is not None:
        shown = rows + web_split(web, "train")
        copies = balance_copies(shown, fasttext_model.WEB_COPIES)
        params = fasttext_model.FASTTEXT_PARAMS_WEB
        rows = [r for r, k in zip(rows, copies, strict=False) if k > 0]
    models = []
    for h, file in enumerate(HALF_FILES):
        part = [(r, k) for r, k in zip(shown, copies, strict=True) if half_of(r) == h]
        with tempfile.TemporaryDirectory() as tmp:
            train_file = Path(tmp) / "train.txt"
            fasttext_model.write_training_file(
                [r for r, _ in part], train_file, copies=None if web is None else [k for _, k in part]
            )
            fasttext_model.train_supervised(train_file, folder / file, {**params, "thread": 1})
        models.append(fasttext_model.FastTextModel(f"half{h}", {}, fasttext_model.load_file(folder / file)))
    labels, docs, kept = prepare(rows)
    side = np.asarray([half_of(rows[i]) for i in kept])
    oof = np.empty(len(docs))
    for h in (0, 1):
        idx = np.flatnonzero(side == h)
        oof[idx] = models[1 - h].raw_doc_scores([docs[i] for i in idx])
    x = np.hstack([clipped_logit(oof)[:, None], feature_matrix(docs)])
    return models, fit_head(x, np.asarray(labels, dtype=bool), STACK_L2)


def stack_scores(
    models: Sequence[fasttext_model.FastTextModel], head: Head, docs: Sequence[Sequence[str]]
) -> list[float]:
    """P(machine) of the stack for normalised ``docs``: the regression ``head`` on [mean logit of the fastText
    ``models``' document scores, :data:`FEATURES`]."""
    if not docs:
        return []
    ft = np.mean([clipped_logit(m.raw_doc_scores(docs)) for m in models], axis=0)
    return [float(v) for v in head_probs(head, np.hstack([ft[:, None], feature_matrix(docs)]))]


def stack_fit(rows: list[dict[str, Any]], web: list[dict[str, Any]] | None = None) -> Scorer:
    """A :data:`curate.score.ood.FoldFit` (with ``web`` bound, e.g. by :func:`functools.partial`): :func:`fit_stack`
    on ``rows`` (model files in a temporary folder), scoring new documents by :func:`stack_scores` (module
    docstring)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        models, head = fit_stack(rows, Path(tmp), web)

    def score(new_docs: Sequence[Sequence[str]]) -> list[float]:
        return stack_scores(models, head, new_docs)

    return score
