"""Model-generated-text (MGT) detection with fastText: training, evaluation and scoring.

The model sees normalised word windows, never whole documents: chat preambles ("Sure", "Here is",
"Title:", markdown bold/headers) are stripped, digits folded, punctuation split off, and texts cut into
windows of ``WINDOW`` words, so length and formatting artefacts of the training data are not learnable.
A document's score is the mean window probability, mapped through a Platt calibration fitted on held-out
groups, so a recipe threshold means a probability. Texts under ``MIN_WORDS`` words and languages outside
the model card's scope get no score (NULL with a reason).

Artefacts live in ``classifiers/<name>/``: ``model.ftz``, ``card.json`` (recipe, calibration, metrics,
validation-data digest) and ``README.md`` (the model card).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ModelError
from curate.resources import CLASSIFIERS_DIR
from curate.schema import ScoreReason

WINDOW = 128
MIN_WORDS = 30
VAL_BUCKETS = 2  # of 10: a group is in validation when sha1(group) % 10 < VAL_BUCKETS
FASTTEXT_PARAMS: dict[str, Any] = {
    "wordNgrams": 3,
    "dim": 32,
    "epoch": 15,
    "lr": 0.3,
    "bucket": 300_000,
    "minCount": 2,
    "loss": "softmax",
    "seed": 1,
    "thread": 1,
}
SCOPE_LANGUAGES = ("en",)
REFERENCE_BINS = 20  # calibrated-score histograms of the validation texts, for contamination estimates

_PREAMBLE = re.compile(
    r"^\s*(?:\*\*|#+\s|title\s*:|sure\b|certainly\b|here\s+is\b|here's\b|here\s+are\b|absolutely\b|of course\b)"
    r"[^\n]*(?:\n|$)",
    re.IGNORECASE,
)


def normalise(text: str) -> list[str]:
    """Words of ``text`` as the model sees them (preambles stripped, lower-cased, digits folded)."""
    for _ in range(3):
        stripped = _PREAMBLE.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    text = text.replace("**", "").replace("##", "")
    text = re.sub(r"\d", "0", text.lower())
    text = re.sub(r"([^\w\s'])", r" \1 ", text)
    return text.split()


def windows(words: Sequence[str], size: int = WINDOW) -> Iterator[list[str]]:
    """Consecutive windows of ``size`` words; a short tail window is merged away unless it is the only one."""
    n = len(words)
    starts = list(range(0, max(1, n - size // 2), size))
    for i, start in enumerate(starts):
        end = n if i == len(starts) - 1 and n - start < size + size // 2 else start + size
        yield list(words[start:end])


def is_validation_group(group: str) -> bool:
    """Deterministic grouped split: a source text and all its rewrites land on the same side."""
    return int(hashlib.sha1(group.encode()).hexdigest(), 16) % 10 < VAL_BUCKETS


def read_labelled(path: Path) -> list[dict[str, Any]]:
    """Rows of a labelled JSONL(.gz) file; each needs ``text`` and ``label`` (human|machine)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read labelled data {path}: {e}") from None
    for i, r in enumerate(rows):
        if r.get("label") not in ("human", "machine") or not isinstance(r.get("text"), str):
            raise ModelError(f"{path}: row {i + 1} needs a text and a label of human or machine")
    return rows


def split_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation) by group (falls back to id, then text, when a row has no group)."""
    train: list[dict[str, Any]] = []
    val: list[dict[str, Any]] = []
    for r in rows:
        key = str(r.get("group") or r.get("id") or r["text"])
        (val if is_validation_group(key) else train).append(r)
    return train, val


def rows_digest(rows: Iterable[dict[str, Any]]) -> str:
    """SHA-256 over the (label, text) pairs, to pin the data an eval gate was measured on."""
    h = hashlib.sha256()
    for r in rows:
        h.update(r["label"].encode() + b"\0" + r["text"].encode() + b"\0")
    return h.hexdigest()


def auroc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve (ties get the average rank)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def tpr_at_fpr(labels: Sequence[bool], scores: Sequence[float], fpr: float) -> float:
    """True-positive rate at the threshold that lets through ``fpr`` of the negatives."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    threshold = np.quantile(s[~y], 1 - fpr)
    return float((s[y] > threshold).mean())


def calibration_error(labels: Sequence[bool], probs: Sequence[float], bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    y = np.asarray(labels, dtype=float)
    p = np.asarray(probs, dtype=float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(err)


def fit_platt(raw: Sequence[float], labels: Sequence[bool]) -> tuple[float, float]:
    """Fit P(machine) = sigmoid(a * logit(raw) + b) by minimising the log-loss (L-BFGS, tiny L2)."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    x = np.clip(np.asarray(raw, dtype=float), 1e-6, 1 - 1e-6)
    x = np.log(x / (1 - x))
    y = np.asarray(labels, dtype=float)

    def loss(w: np.ndarray) -> float:
        z = w[0] * x + w[1]
        return float(-(y * log_expit(z) + (1 - y) * log_expit(-z)).mean() + 1e-4 * w[0] ** 2)

    def grad(w: np.ndarray) -> np.ndarray:
        z = w[0] * x + w[1]
        d = expit(z) - y
        return np.array([(d * x).mean() + 2e-4 * w[0], d.mean()])

    res = minimize(loss, np.array([1.0, 0.0]), jac=grad, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


@dataclass
class MgtModel:
    """A loaded fastText MGT model with its calibration."""

    name: str
    model: Any
    platt_a: float
    platt_b: float
    languages: tuple[str, ...]
    reference: dict[str, Any] | None = None  # validation histograms of calibrated scores (human, machine)

    def raw_window_scores(self, words: Sequence[str]) -> list[float]:
        """Uncalibrated P(machine) of each window."""
        out = []
        for win in windows(words):
            labels, probs = self.model.predict(" ".join(win), k=2)
            d = dict(zip(labels, probs, strict=False))
            out.append(float(min(d.get("__label__machine", 0.0), 1.0)))
        return out

    def calibrate(self, raw: float) -> float:
        """Map a mean raw window probability to a calibrated probability."""
        x = min(max(raw, 1e-6), 1 - 1e-6)
        z = self.platt_a * math.log(x / (1 - x)) + self.platt_b
        return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))

    def score(self, text: str, language: str | None = None) -> tuple[float | None, ScoreReason | None, int]:
        """(calibrated P(model-generated), reason when None, windows scored)."""
        if language is not None and language not in self.languages:
            return None, ScoreReason.LANGUAGE_OUT_OF_SCOPE, 0
        words = normalise(text)
        if len(words) < MIN_WORDS:
            return None, ScoreReason.TOO_SHORT, 0
        raw = self.raw_window_scores(words)
        return round(self.calibrate(float(np.mean(raw))), 6), None, len(raw)


def model_dir(name: str) -> Path:
    """Folder of a registered classifier."""
    return CLASSIFIERS_DIR / name


def _retrain_hint(name: str) -> str:
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
        raise ModelError(f"classifier {name!r} not found: {card_path} is missing; {_retrain_hint(name)}") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"classifier card {card_path} is corrupt ({e}); {_retrain_hint(name)}") from None
    return card


@functools.cache
def load_model(name: str) -> MgtModel:
    """Load ``classifiers/<name>/``.

    Raises:
        ModelError: the folder, model file or card is missing or unreadable, with the command to retrain.
    """
    retrain = _retrain_hint(name)
    model_path = model_dir(name) / "model.ftz"
    if not model_path.exists():
        raise ModelError(f"classifier {name!r} not found: {model_path} is missing; {retrain}")
    card = load_card(name)
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    try:
        model = fasttext.load_model(str(model_path))
    except (ValueError, RuntimeError, MemoryError) as e:
        raise ModelError(f"classifier model {model_path} is corrupt ({e}); {retrain}") from None
    cal = card["calibration"]
    return MgtModel(
        name,
        model,
        float(cal["a"]),
        float(cal["b"]),
        tuple(card.get("languages", SCOPE_LANGUAGES)),
        card.get("reference_histograms"),
    )


def _write_training_file(rows: list[dict[str, Any]], path: Path, seed: int = 1) -> None:
    """One line per window, shuffled with ``seed``: single-threaded SGD must not see the data in source order."""
    import random

    lines: list[str] = []
    for r in rows:
        words = normalise(r["text"])
        if len(words) < MIN_WORDS:
            continue
        lines.extend(f"__label__{r['label']} {' '.join(win)}\n" for win in windows(words))
    random.Random(seed).shuffle(lines)
    path.write_text("".join(lines), encoding="utf-8")


def _raw_doc_scores(model: MgtModel, rows: list[dict[str, Any]]) -> tuple[list[bool], list[float], list[int]]:
    labels, scores, kept = [], [], []
    for i, r in enumerate(rows):
        words = normalise(r["text"])
        if len(words) < MIN_WORDS:
            continue
        labels.append(r["label"] == "machine")
        scores.append(float(np.mean(model.raw_window_scores(words))))
        kept.append(i)
    return labels, scores, kept


def evaluate(model: MgtModel, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """AUROC, TPR at 1% and 5% FPR, calibration error, overall and per generator and per domain."""
    labels, raw, kept = _raw_doc_scores(model, rows)
    probs = [model.calibrate(s) for s in raw]
    kept_rows = [rows[i] for i in kept]

    def block(mask: list[bool]) -> dict[str, float | None]:
        y = [lab for lab, m in zip(labels, mask, strict=True) if m]
        s = [p for p, m in zip(probs, mask, strict=True) if m]
        a = auroc(y, s)
        return {"n": len(y), "auroc": None if math.isnan(a) else round(a, 4)}  # None: one class only

    out: dict[str, Any] = {
        "n": len(labels),
        "auroc": round(auroc(labels, probs), 4),
        "tpr_at_1pct_fpr": round(tpr_at_fpr(labels, probs, 0.01), 4),
        "tpr_at_5pct_fpr": round(tpr_at_fpr(labels, probs, 0.05), 4),
        "ece": round(calibration_error(labels, probs), 4),
        "skipped_too_short": len(rows) - len(labels),
    }
    gens = sorted({str(r.get("generator")) for r in kept_rows if r["label"] == "machine"})
    out["per_generator"] = {
        g: block([r["label"] == "human" or str(r.get("generator")) == g for r in kept_rows]) for g in gens
    }
    domains = sorted({str(r.get("domain")) for r in kept_rows})
    out["per_domain"] = {d: block([str(r.get("domain")) == d for r in kept_rows]) for d in domains}
    return out


def _fit_worker(train_file: str, model_file: str, params: dict[str, Any], quantize: bool) -> None:
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    ft = fasttext.train_supervised(train_file, verbose=0, **params)
    if quantize:
        ft.quantize(input=train_file, qnorm=True, retrain=False, cutoff=0, dsub=2)
    ft.save_model(model_file)


def train_supervised(train_file: Path, model_file: Path, params: dict[str, Any], *, quantize: bool = False) -> None:
    """Train (and optionally quantize) a fastText model into ``model_file``, in a freshly spawned process.

    fastText 0.9.2 initialises the input matrix in ten blocks, one per training thread, so with ``thread = 1``
    nine tenths of it keep whatever the memory held: zeros in a fresh process, leftovers of earlier work in a
    long-lived one (different models, and sometimes "Encountered NaN"). A fresh process makes every training
    from the same data byte-identical, also when called repeatedly from one notebook.

    Raises:
        ModelError: the training process failed.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_fit_worker, args=(str(train_file), str(model_file), params, quantize))
    proc.start()
    proc.join()
    if proc.exitcode != 0 or not model_file.exists():
        raise ModelError(f"fastText training on {train_file} failed (exit code {proc.exitcode})")


def _fit(rows: list[dict[str, Any]], threads: int = 1) -> MgtModel:
    import tempfile

    import fasttext

    with tempfile.TemporaryDirectory() as tmp:
        path, model_file = Path(tmp) / "train.txt", Path(tmp) / "model.bin"
        _write_training_file(rows, path)
        train_supervised(path, model_file, {**FASTTEXT_PARAMS, "thread": threads})
        ft = fasttext.load_model(str(model_file))
    return MgtModel("loo", ft, 1.0, 0.0, SCOPE_LANGUAGES)


def leave_one_out(rows: list[dict[str, Any]], threads: int = 2) -> dict[str, dict[str, Any]]:
    """AUROC on each generator / domain when it is left out of training (grouped split on both sides).

    Generator: trained without that generator's machine texts, tested on it against the validation humans.
    Domain: trained without that domain, tested on its validation texts (NULL when it has one class only).
    """
    train_rows, val_rows = split_rows(rows)
    out: dict[str, dict[str, Any]] = {"generator": {}, "domain": {}}
    for g in sorted({str(r.get("generator")) for r in rows if r["label"] == "machine"}):
        model = _fit([r for r in train_rows if str(r.get("generator")) != g], threads)
        test = [r for r in val_rows if r["label"] == "human" or str(r.get("generator")) == g]
        labels, raw, _ = _raw_doc_scores(model, test)
        out["generator"][g] = {
            "n": len(labels),
            "auroc": round(auroc(labels, raw), 4),
            "tpr_at_1pct_fpr": round(tpr_at_fpr(labels, raw, 0.01), 4),
        }
    for d in sorted({str(r.get("domain")) for r in rows}):
        model = _fit([r for r in train_rows if str(r.get("domain")) != d], threads)
        labels, raw, _ = _raw_doc_scores(model, [r for r in val_rows if str(r.get("domain")) == d])
        a = auroc(labels, raw)
        out["domain"][d] = {"n": len(labels), "auroc": None if math.isnan(a) else round(a, 4)}
    return out


def train(name: str, data: Path, out_dir: Path | None = None, *, leave_one_out_tables: bool = False) -> dict[str, Any]:
    """Train ``name`` on labelled JSONL ``data``; write model, card and README; return the card.

    The split is grouped (``group`` field), the training is single-threaded with a fixed seed, so the
    same data gives the same model. The Platt calibration is fitted on the even-hash half of the validation
    groups; the metrics in the card are measured on the whole validation split.
    """
    import tempfile

    import fasttext

    rows = read_labelled(data)
    train_rows, val_rows = split_rows(rows)
    folder = out_dir or model_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / "model.ftz"
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        _write_training_file(train_rows, train_file)
        train_supervised(train_file, model_path, FASTTEXT_PARAMS, quantize=True)
    model = MgtModel(name, fasttext.load_model(str(model_path)), 1.0, 0.0, SCOPE_LANGUAGES)
    cal_rows = [r for r in val_rows if int(hashlib.sha1(str(r.get("group")).encode()).hexdigest(), 16) % 2 == 0]
    labels, raw, _ = _raw_doc_scores(model, cal_rows)
    model.platt_a, model.platt_b = fit_platt(raw, labels)
    metrics = evaluate(model, val_rows)
    labels_v, raw_v, _ = _raw_doc_scores(model, val_rows)
    calibrated = np.array([model.calibrate(s) for s in raw_v])
    is_machine = np.array(labels_v, dtype=bool)
    edges = np.linspace(0, 1, REFERENCE_BINS + 1)
    card_hist = {
        "bins": REFERENCE_BINS,
        "human": np.histogram(calibrated[~is_machine], bins=edges)[0].tolist(),
        "machine": np.histogram(calibrated[is_machine], bins=edges)[0].tolist(),
    }
    card = {
        "name": name,
        "kind": "fasttext",
        "window_words": WINDOW,
        "min_words": MIN_WORDS,
        "languages": list(SCOPE_LANGUAGES),
        "fasttext_params": FASTTEXT_PARAMS,
        "quantized": True,
        "calibration": {
            "method": "platt",
            "a": model.platt_a,
            "b": model.platt_b,
            "fit_on": "even-hash half of validation groups",
        },
        "data": {
            "path": str(data.name),
            "rows": len(rows),
            "train_rows": len(train_rows),
            "validation_rows": len(val_rows),
            "validation_digest": rows_digest(val_rows),
            "split": f"grouped: sha1(group) % 10 < {VAL_BUCKETS} is validation",
        },
        "validation": metrics,
        "reference_histograms": card_hist,
    }
    if leave_one_out_tables:
        card["leave_one_out"] = leave_one_out(rows)
    (folder / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    load_model.cache_clear()
    return card
