"""The MGT classifier base: a calibrated model loaded from ``classifiers/<name>/``, its card, and evaluation.

A document's raw score combines its window scores (how is the kind's business), mapped through a Platt
calibration fitted on held-out groups, so a recipe threshold means a probability. Texts that
:func:`curate.score.text.unscorable` refuses and languages outside the model card's scope get no score
(NULL with a reason). Artefacts live in ``classifiers/<name>/``: the model file(s) of its kind, ``card.json``
(kind, recipe, calibration, metrics, validation-data digest) and ``README.md`` (the model card).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ModelError
from curate.extract import detect_language
from curate.resources import CLASSIFIERS_DIR
from curate.schema import ScoreReason
from curate.score.labelled import VAL_BUCKETS, calibration_rows, prepare, rows_digest
from curate.score.metrics import clipped_logit, fit_platt, metrics, platt
from curate.score.text import MIN_WORDS, WINDOW, normalise, unscorable, window_count, windows

SCOPE_LANGUAGES = ("en",)


REFERENCE_BINS = 20  # calibrated-score histograms of the validation texts, for contamination estimates


def spread(items: Sequence[Any], limit: int | None) -> list[Any]:
    """At most ``limit`` of ``items``, evenly spaced from first to last (all of them when ``limit`` is None)."""
    n = len(items)
    if limit is None or n <= limit:
        return list(items)
    if limit == 1:
        return [items[0]]
    return [items[round(i * (n - 1) / (limit - 1))] for i in range(limit)]


Scored = tuple[float | None, ScoreReason | None, int]


def _detected_language(text: str) -> str | None:

    return detect_language(text)[0]


class MgtModel:
    """A calibrated MGT classifier loaded from ``classifiers/<name>/``.

    Subclasses say how a document's raw score is computed (:meth:`raw_doc_scores`); scoring rules (scope,
    minimum length, calibration) are the same for every kind.
    """

    kind = "base"
    max_windows: int | None = None  # windows scored per document (evenly spread); None: all of them

    def __init__(self, name: str, card: dict[str, Any]) -> None:
        self.name = name
        self.card = card
        cal = card.get("calibration", {})
        self.platt_a = float(cal.get("a", 1.0))
        self.platt_b = float(cal.get("b", 0.0))
        self.languages = tuple(card.get("languages", SCOPE_LANGUAGES))
        self.reference: dict[str, Any] | None = card.get("reference_histograms")

    def raw_doc_scores(self, docs: Sequence[Sequence[str]]) -> list[float]:
        """Uncalibrated score of each document, given its normalised words (each passes :func:`unscorable`)."""
        raise NotImplementedError

    def doc_windows(self, words: Sequence[str]) -> list[list[str]]:
        """The windows of a document that this model scores."""
        return spread(list(windows(words)), self.max_windows)

    def window_texts(self, docs: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray]:
        """(text of every scored window of ``docs``, index of the document each belongs to)."""
        texts: list[str] = []
        owner: list[int] = []
        for d, words in enumerate(docs):
            for win in self.doc_windows(words):
                texts.append(" ".join(win))
                owner.append(d)
        return texts, np.asarray(owner, dtype=np.int64)

    def calibrate(self, raw: float) -> float:
        """Map a raw document score to a calibrated probability."""
        return platt(raw, self.platt_a, self.platt_b)

    def score_many(self, texts: Sequence[str], languages: Sequence[str | None] | None = None) -> list[Scored]:
        """(calibrated P(model-generated) or None, reason when None, windows scored) for each text.

        ``languages``: each text's ISO 639 code as the caller detected it; where it is None (or not given), the
        language is detected here (lid.176 on the first 2,000 characters), so out-of-scope text gets NULL with
        ``language_out_of_scope`` rather than a guess. Texts that :func:`unscorable` refuses get NULL with its
        reason. Batched: a transformer model embeds all windows of all ``texts`` in one sorted-by-length pass.
        """
        langs = list(languages) if languages is not None else [None] * len(texts)
        out: list[Scored] = []
        todo: list[int] = []
        docs: list[list[str]] = []
        for i, (text, language) in enumerate(zip(texts, langs, strict=True)):
            if language is not None and language not in self.languages:
                out.append((None, ScoreReason.LANGUAGE_OUT_OF_SCOPE, 0))
                continue
            words = normalise(text)
            reason = unscorable(words)
            if reason is None and language is None and _detected_language(text) not in self.languages:
                reason = ScoreReason.LANGUAGE_OUT_OF_SCOPE
            out.append((None, reason, 0))
            if reason is None:
                todo.append(i)
                docs.append(words)
        for i, words, raw in zip(todo, docs, self.raw_doc_scores(docs), strict=True):
            n = window_count(len(words))
            out[i] = (round(self.calibrate(raw), 6), None, n if self.max_windows is None else min(n, self.max_windows))
        return out

    def score(self, text: str, language: str | None = None) -> Scored:
        """(calibrated P(model-generated), reason when None, windows scored) of one text."""
        return self.score_many([text], [language])[0]


def model_dir(name: str) -> Path:
    """Folder of a registered classifier."""
    return CLASSIFIERS_DIR / name


def retrain_hint(name: str) -> str:
    """The command that rebuilds a registered classifier, for error messages."""
    return f"retrain with: curate classifiers train {name} --data ../shared/data/mgt/train.jsonl.gz"


def load_card(name: str) -> dict[str, Any]:
    """The card (``card.json``) of ``classifiers/<name>/``: recipe, calibration, metrics, score histograms.

    Raises:
        ModelError: the card is missing or corrupt, with the command to retrain.
    """
    card_path = model_dir(name) / "card.json"
    try:
        card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"classifier {name!r} not found: {card_path} is missing; {retrain_hint(name)}") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"classifier card {card_path} is corrupt ({e}); {retrain_hint(name)}") from None
    return card


def evaluate(model: MgtModel, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Validation metrics of ``model`` on labelled ``rows`` (see :func:`metrics`); too-short rows are counted."""
    labels, docs, kept = prepare(rows)
    probs = [model.calibrate(s) for s in model.raw_doc_scores(docs)]
    out = metrics(labels, probs, [rows[i] for i in kept], docs)
    out["skipped_too_short"] = len(rows) - len(labels)
    return out


def finish_card(
    model: MgtModel,
    rows: list[dict[str, Any]],
    val_rows: list[dict[str, Any]],
    data: Path,
    folder: Path,
    *,
    extra: dict[str, Any],
    val_raw: Sequence[float] | None = None,
    web_raw: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Fit the Platt calibration on half the validation groups, measure on all of them, write ``card.json``.

    Shared by every kind. ``val_raw``: raw scores of the scorable validation rows, when the caller has them.
    ``web_raw``: raw scores of real human web pages to calibrate on as well (:func:`fit_web_calibration`);
    without them the calibration assumes the validation split's class balance (the v1 cards).
    """
    labels, docs, kept = prepare(val_rows)
    raw = list(val_raw) if val_raw is not None else model.raw_doc_scores(docs)
    cal_mask = calibration_rows([val_rows[i] for i in kept])
    cal_raw = [s for s, m in zip(raw, cal_mask, strict=True) if m]
    cal_labels = [y for y, m in zip(labels, cal_mask, strict=True) if m]
    fit_on = "even-hash half of validation groups"
    if web_raw is None:
        model.platt_a, model.platt_b = fit_platt(cal_raw, cal_labels)
    else:
        model.platt_a, model.platt_b = fit_web_calibration(cal_raw, cal_labels, web_raw)
        fit_on += (
            f" (classes weighted to a 1:1 prior) + {len(web_raw)} real human web pages (the web-human reference "
            f"split, weighted as much as the labelled humans); then shifted so that at most {WEB_MAX_ABOVE:.0%} "
            "of those pages score 0.5 or more"
        )
    probs = np.array([model.calibrate(s) for s in raw])
    measured = metrics(labels, probs.tolist(), [val_rows[i] for i in kept], docs)
    measured["skipped_too_short"] = len(val_rows) - len(labels)
    is_machine = np.array(labels, dtype=bool)
    edges = np.linspace(0, 1, REFERENCE_BINS + 1)
    train_rows = len(rows) - len(val_rows)
    card = {
        "name": model.name,
        "kind": model.kind,
        "window_words": WINDOW,
        "min_words": MIN_WORDS,
        "languages": list(model.languages),
        **extra,
        "calibration": {
            "method": "platt",
            "a": model.platt_a,
            "b": model.platt_b,
            "fit_on": fit_on,
        },
        "data": {
            "path": str(data.name),
            "rows": len(rows),
            "train_rows": train_rows,
            "validation_rows": len(val_rows),
            "validation_digest": rows_digest(val_rows),
            "split": f"grouped: sha1(group) % 10 < {VAL_BUCKETS} is validation",
        },
        "validation": measured,
        "reference_histograms": {
            "bins": REFERENCE_BINS,
            "human": np.histogram(probs[~is_machine], bins=edges)[0].tolist(),
            "machine": np.histogram(probs[is_machine], bins=edges)[0].tolist(),
        },
    }
    model.card = card
    write_card(folder, card)
    return card


def write_card(folder: Path, card: dict[str, Any]) -> None:
    """Write ``card`` as ``folder/card.json`` (sorted keys, so a retraining diff shows what changed)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")


WEB_MAX_ABOVE = 0.03  # a web-calibrated model puts at most this share of its calibration web pages at >= 0.5
WEB_MARGIN = 1e-3  # logit margin under 0.5 for the highest page allowed below it (scores are stored to 6 decimals)


def fit_web_calibration(raw: Sequence[float], labels: Sequence[bool], web_raw: Sequence[float]) -> tuple[float, float]:
    """Platt (a, b) that hold on real web text: fitted on labelled ``raw`` scores with both classes weighted
    to a 1:1 prior and real human web pages (``web_raw``) weighted as much as all labelled humans together;
    then, if more than :data:`WEB_MAX_ABOVE` of those pages would score 0.5 or more, ``b`` is lowered until
    at most that share does (a probability of 0.5 on a page then means more than the typical human page's
    score). The slope ``a``, and so every ranking, is unchanged by the shift.
    """
    y = [bool(v) for v in labels]
    n_h = max(1, sum(not v for v in y))
    n_m = max(1, sum(y))
    n_w = max(1, len(web_raw))
    weights = [2 * n_h / n_m if v else 1.0 for v in y] + [n_h / n_w] * len(web_raw)
    a, b = fit_platt([*raw, *web_raw], [*y, *([False] * len(web_raw))], weights)
    if len(web_raw):
        allowed = int(WEB_MAX_ABOVE * len(web_raw))  # pages that may stay at >= 0.5
        q = float(np.sort(np.asarray(web_raw, dtype=np.float64))[len(web_raw) - 1 - allowed])
        z = a * float(clipped_logit([q])[0]) + b
        if z >= 0:
            b -= z + WEB_MARGIN  # that page, and every page scored lower, lands under 0.5 (also once rounded)
    return a, b
