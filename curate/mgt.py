"""Model-generated-text (MGT) detection: the classifier registry, scoring rules, training and evaluation.

Every kind (``fasttext`` on CPU, ``minilm`` a transformer on CPU or GPU, ``ensemble`` of both) sees normalised
word windows, never whole documents: chat preambles ("Sure", "Here is",
"Title:", markdown bold/headers) are stripped, digits folded, punctuation split off, and texts cut into
windows of ``WINDOW`` words, so length and formatting artefacts of the training data are not learnable.
A document's raw score combines its window scores (how is the kind's business), mapped through a Platt
calibration fitted on held-out groups, so a recipe threshold means a probability. Texts under ``MIN_WORDS``
words, texts that are mostly not words (:func:`unscorable`) and languages outside the model card's scope get no
score (NULL with a reason).

Artefacts live in ``classifiers/<name>/``: the model file(s) of its kind (``model.bin``, ``head.safetensors``),
``card.json`` (kind, recipe, calibration, metrics, validation-data digest) and ``README.md`` (the model card).
The kinds live in ``mgt_fasttext``, ``mgt_minilm`` and ``mgt_ensemble``; this module holds what they share.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ModelError
from curate.resources import CLASSIFIERS_DIR
from curate.schema import ScoreReason

WINDOW = 128
MIN_WORDS = 30
TEXT_CHECK_TOKENS = 128  # the head of a text that :func:`unscorable` reads (as lid reads its first 2,000 chars)
MIN_LETTER_SHARE = 0.2  # of those tokens, words of letters
MAX_JUNK_SHARE = 0.05  # of those tokens, C0/C1 control characters (whitespace aside) and U+FFFD
VAL_BUCKETS = 2  # of 10: a group is in validation when sha1(group) % 10 < VAL_BUCKETS
SCOPE_LANGUAGES = ("en",)
REFERENCE_BINS = 20  # calibrated-score histograms of the validation texts, for contamination estimates

_PREAMBLE = re.compile(
    r"^\s*(?:\*\*|#+\s|title\s*:|sure\b|certainly\b|here\s+is\b|here's\b|here\s+are\b|absolutely\b|of course\b)"
    r"[^\n]*(?:\n|$)",
    re.IGNORECASE,
)

_JUNK_CHARS = frozenset(
    chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0), 0xFFFD)
)
_ASCII_DIGITS_TO_ZERO = str.maketrans("123456789", "0" * 9)
_ASCII_SYMBOLS = tuple(c for c in map(chr, range(128)) if not (c.isalnum() or c in "_'" or c.isspace()))


def normalise(text: str) -> list[str]:
    """Words of ``text`` as the model sees them (preambles stripped, lower-cased, digits folded)."""
    for _ in range(3):
        stripped = _PREAMBLE.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    text = text.replace("**", "").replace("##", "").lower()
    # Digits (str.isdecimal, what regex \d matches) become 0; every character that is not a word character
    # (str.isalnum or _, regex \w), whitespace or an apostrophe becomes a token of its own. One str.replace
    # per distinct character: twice as fast as the equivalent regex on web text. ASCII text (most of it) skips
    # the set of its characters: a C-level translate for the digits and a substring test per ASCII symbol.
    if text.isascii():
        text = text.translate(_ASCII_DIGITS_TO_ZERO)
        for c in _ASCII_SYMBOLS:
            if c in text:
                text = text.replace(c, f" {c} ")
        return text.split()
    for c in set(text):
        if c.isdecimal():
            if c != "0":
                text = text.replace(c, "0")
        elif not (c.isalnum() or c in "_'" or c.isspace()):
            text = text.replace(c, f" {c} ")
    return text.split()


def window_count(n_words: int, size: int = WINDOW) -> int:
    """How many windows :func:`windows` cuts ``n_words`` words into."""
    return max(1, -(-max(1, n_words - size // 2) // size))


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


def clipped_logit(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) with ``p`` clipped to [1e-6, 1 - 1e-6], as float64."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)


def fit_platt(raw: Sequence[float], labels: Sequence[bool]) -> tuple[float, float]:
    """Fit P(machine) = sigmoid(a * logit(raw) + b) by minimising the log-loss (L-BFGS, tiny L2)."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    x = clipped_logit(raw)
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


def doc_means(values: np.ndarray, owner: np.ndarray, n_docs: int) -> np.ndarray:
    """Mean of ``values`` per owning document (every document owns at least one value)."""
    sums = np.bincount(owner, weights=values, minlength=n_docs)
    counts = np.bincount(owner, minlength=n_docs)
    return np.asarray(sums / np.maximum(counts, 1), dtype=np.float64)


def spread(items: Sequence[Any], limit: int | None) -> list[Any]:
    """At most ``limit`` of ``items``, evenly spaced from first to last (all of them when ``limit`` is None)."""
    n = len(items)
    if limit is None or n <= limit:
        return list(items)
    if limit == 1:
        return [items[0]]
    return [items[round(i * (n - 1) / (limit - 1))] for i in range(limit)]


def calibration_rows(val_rows: list[dict[str, Any]]) -> list[bool]:
    """Which validation rows fit the Platt calibration: the even-hash half of the validation groups."""
    return [int(hashlib.sha1(str(r.get("group")).encode()).hexdigest(), 16) % 2 == 0 for r in val_rows]


def platt(raw: float, a: float, b: float) -> float:
    """sigmoid(a * logit(raw) + b), with ``raw`` clipped away from 0 and 1."""
    x = min(max(raw, 1e-6), 1 - 1e-6)
    z = a * math.log(x / (1 - x)) + b
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


Scored = tuple[float | None, ScoreReason | None, int]


def unscorable(words: Sequence[str]) -> ScoreReason | None:
    """Why a text with these normalised words gets no score, or None when it can be scored.

    - ``too_short_to_score``: fewer than ``MIN_WORDS`` tokens.
    - ``not_text``: among the first ``TEXT_CHECK_TOKENS`` tokens, fewer than ``MIN_LETTER_SHARE`` are words of
      letters (symbol or digit soup, long tables, binary read as UTF-8) or more than ``MAX_JUNK_SHARE`` are
      control or U+FFFD replacement characters (binary read as Latin-1). No detector here was trained on such
      text, and the language identifier calls much of it English.

    The same rule picks the labelled texts that training and evaluation use (:func:`prepare`); it rejects none
    of the MGT training texts (their lowest letter share is 0.375, their highest junk share 0).
    """
    if len(words) < MIN_WORDS:
        return ScoreReason.TOO_SHORT
    head = words[:TEXT_CHECK_TOKENS]
    if sum(map(str.isalpha, head)) < MIN_LETTER_SHARE * len(head):
        return ScoreReason.NOT_TEXT
    if sum(map(_JUNK_CHARS.__contains__, head)) > MAX_JUNK_SHARE * len(head):
        return ScoreReason.NOT_TEXT
    return None


def _detected_language(text: str) -> str | None:
    from curate.extract import detect_language

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


def registry() -> list[dict[str, Any]]:
    """One summary per registered classifier (a folder of ``classifiers/`` with a readable card), by name:
    name, kind, languages, validation AUROC / TPR at 1% FPR / ECE, and (ensembles) the members."""
    out = []
    for folder in sorted(p for p in CLASSIFIERS_DIR.iterdir() if (p / "card.json").is_file()):
        try:
            card = load_card(folder.name)
        except ModelError:
            continue
        v = card.get("validation", {})
        out.append(
            {
                "name": folder.name,
                "kind": card.get("kind"),
                "languages": card.get("languages"),
                "auroc": v.get("auroc"),
                "tpr_at_1pct_fpr": v.get("tpr_at_1pct_fpr"),
                "ece": v.get("ece"),
                "members": [m["name"] for m in card.get("members", [])],
            }
        )
    return out


KINDS = ("fasttext", "minilm", "ensemble")
TORCH_KINDS = ("minilm", "ensemble")  # kinds that run torch: their numbers depend on the device and its threads


def kind_for(name: str, kind: str | None = None) -> str:
    """The model kind of ``name``: ``kind`` when given, else the kind its name says (``mgt-minilm-v1`` → minilm).

    Raises:
        ModelError: no kind given and none in the name.
    """
    if kind is not None:
        if kind not in KINDS:
            raise ModelError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        return kind
    for k in KINDS:
        if k in name:
            return k
    raise ModelError(f"cannot tell the kind of {name!r} from its name: pass --kind ({', '.join(KINDS)})")


@functools.cache
def load_model(name: str, device: str = "auto") -> MgtModel:
    """Load ``classifiers/<name>/`` (any kind); ``device`` matters to transformer kinds only.

    Raises:
        ModelError: the folder, model file or card is missing or unreadable, with the command to retrain.
        ConfigError: ``device`` is unknown, or ``cuda`` where torch sees no GPU.
    """
    card = load_card(name)
    kind = card.get("kind")
    if kind == "fasttext":
        from curate.mgt_fasttext import load

        return load(name, card)
    if kind == "minilm":
        from curate.mgt_minilm import load as load_minilm

        return load_minilm(name, card, device)
    if kind == "ensemble":
        from curate.mgt_ensemble import load as load_ensemble

        return load_ensemble(name, card, device)
    raise ModelError(f"classifier card {model_dir(name) / 'card.json'} has an unknown kind {kind!r}")


def prepare(rows: Sequence[dict[str, Any]]) -> tuple[list[bool], list[list[str]], list[int]]:
    """(is machine, normalised words, row index) of the rows that can be scored (:func:`unscorable`)."""
    labels, docs, kept = [], [], []
    for i, r in enumerate(rows):
        words = normalise(r["text"])
        if unscorable(words) is None:
            labels.append(r["label"] == "machine")
            docs.append(words)
            kept.append(i)
    return labels, docs, kept


def auroc_block(labels: Sequence[bool], scores: Sequence[float], *, tpr: bool = False) -> dict[str, Any]:
    """One table cell (per group, leave-one-out): n, AUROC (None with one class only), optionally TPR at 1% FPR."""
    a = auroc(labels, scores)
    out: dict[str, Any] = {"n": len(labels), "auroc": None if math.isnan(a) else round(a, 4)}
    if tpr:
        out["tpr_at_1pct_fpr"] = None if math.isnan(a) else round(tpr_at_fpr(labels, scores, 0.01), 4)
    return out


Keep = Callable[[dict[str, Any]], bool]  # whether a labelled row stays in a leave-one-out fold's fitting data


def in_generator_test(r: dict[str, Any], g: str) -> bool:
    """Whether row ``r`` is tested for generator ``g``: the humans, and that generator's texts."""
    return r["label"] == "human" or str(r.get("generator")) == g


def in_domain_test(r: dict[str, Any], d: str) -> bool:
    """Whether row ``r`` is tested for domain ``d``."""
    return str(r.get("domain")) == d


def _without_generator(g: str) -> Keep:
    return lambda r: not (r["label"] == "machine" and str(r.get("generator")) == g)


def _without_domain(d: str) -> Keep:
    return lambda r: not in_domain_test(r, d)


def leave_one_out_table(
    rows: list[dict[str, Any]], score_fold: Callable[[Keep], Sequence[float]]
) -> dict[str, dict[str, Any]]:
    """The leave-one-generator-out and leave-one-domain-out table every kind's card carries.

    Folds: for each generator, fit without its machine texts and test on them against the validation humans
    (AUROC and TPR at 1% FPR); for each domain, fit without it and test on its validation texts (AUROC; NULL
    with one class only). ``score_fold(keep)`` fits on the rows ``keep`` accepts (training rows; an ensemble
    also fits its stacking on accepted validation rows) and returns raw scores of every scorable validation row
    in :func:`prepare` order. The grouped split holds on both sides.
    """
    _, val_rows = split_rows(rows)
    labels, _, kept = prepare(val_rows)
    scored = [val_rows[i] for i in kept]
    out: dict[str, dict[str, Any]] = {"generator": {}, "domain": {}}

    def cell(keep: Keep, test: list[int], *, tpr: bool) -> dict[str, Any]:
        raw = score_fold(keep)
        return auroc_block([labels[i] for i in test], [raw[i] for i in test], tpr=tpr)

    for g in sorted({str(r.get("generator")) for r in rows if r["label"] == "machine"}):
        test = [i for i, r in enumerate(scored) if in_generator_test(r, g)]
        out["generator"][g] = cell(_without_generator(g), test, tpr=True)
    for d in sorted({str(r.get("domain")) for r in rows}):
        test = [i for i, r in enumerate(scored) if in_domain_test(r, d)]
        out["domain"][d] = cell(_without_domain(d), test, tpr=False)
    return out


def metrics(
    labels: Sequence[bool], probs: Sequence[float], rows: Sequence[dict[str, Any]], docs: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """AUROC, TPR at 1% and 5% FPR, calibration error, overall and per generator, domain and length.

    ``rows`` are the scored rows and ``docs`` their normalised words, aligned with ``labels`` and ``probs``.
    """

    def block(mask: list[bool]) -> dict[str, Any]:
        y = [lab for lab, m in zip(labels, mask, strict=True) if m]
        return auroc_block(y, [p for p, m in zip(probs, mask, strict=True) if m])

    out: dict[str, Any] = {
        "n": len(labels),
        "auroc": round(auroc(labels, probs), 4),
        "tpr_at_1pct_fpr": round(tpr_at_fpr(labels, probs, 0.01), 4),
        "tpr_at_5pct_fpr": round(tpr_at_fpr(labels, probs, 0.05), 4),
        "ece": round(calibration_error(labels, probs), 4),
    }
    gens = sorted({str(r.get("generator")) for r in rows if r["label"] == "machine"})
    out["per_generator"] = {g: block([in_generator_test(r, g) for r in rows]) for g in gens}
    domains = sorted({str(r.get("domain")) for r in rows})
    out["per_domain"] = {d: block([in_domain_test(r, d) for r in rows]) for d in domains}
    one = [window_count(len(words)) == 1 for words in docs]
    long_words = WINDOW + WINDOW // 2  # the most words a single window holds
    out["per_length"] = {
        f"1 window ({MIN_WORDS}-{long_words} words)": block(one),
        f"2+ windows (over {long_words} words)": block([not m for m in one]),
    }
    return out


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
) -> dict[str, Any]:
    """Fit the Platt calibration on half the validation groups, measure on all of them, write ``card.json``.

    Shared by every kind. ``val_raw``: raw scores of the scorable validation rows, when the caller has them.
    """
    labels, docs, kept = prepare(val_rows)
    raw = list(val_raw) if val_raw is not None else model.raw_doc_scores(docs)
    cal_mask = calibration_rows([val_rows[i] for i in kept])
    model.platt_a, model.platt_b = fit_platt(
        [s for s, m in zip(raw, cal_mask, strict=True) if m], [y for y, m in zip(labels, cal_mask, strict=True) if m]
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
            "fit_on": "even-hash half of validation groups",
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
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    load_model.cache_clear()
    return card


def train(
    name: str,
    data: Path,
    out_dir: Path | None = None,
    *,
    kind: str | None = None,
    leave_one_out_tables: bool = False,
    device: str = "auto",
) -> dict[str, Any]:
    """Train classifier ``name`` on labelled JSONL ``data``; write its artefacts and card; return the card.

    The split is grouped (``group`` field); the kind comes from ``kind`` or the name. An ensemble is fitted
    on top of its members as registered in ``classifiers/``.

    Raises:
        ModelError: unreadable data, unknown kind, or (ensemble) a missing member.
    """
    rows = read_labelled(data)
    folder = out_dir or model_dir(name)
    k = kind_for(name, kind)
    if k == "fasttext":
        from curate.mgt_fasttext import train as train_fasttext

        return train_fasttext(name, rows, data, folder, leave_one_out_tables=leave_one_out_tables)
    if k == "minilm":
        from curate.mgt_minilm import train as train_minilm

        return train_minilm(name, rows, data, folder, leave_one_out_tables=leave_one_out_tables, device=device)
    from curate.mgt_ensemble import train as train_ensemble

    return train_ensemble(name, rows, data, folder, device=device, leave_one_out_tables=leave_one_out_tables)
