"""Shipped reference distributions: each classifier's scores on real human web text captured before the cutoff.

The reference MGT rule judges a post-cutoff page by the percentile of its score among human web pages' scores.
A store's own pre-cutoff captures are the best reference (same crawl, same extractor), but a small or all-recent
store has too few of them. For those, each classifier ships ``classifiers/NAME/reference.json``, written by
``curate classifiers reference NAME --data FILE``: its scores on the human pages of a labelled web-text file
(the rows whose ``split`` is ``reference``), with the data file's SHA-256, the classifier card's SHA-256 (a
retrained classifier makes the file stale, and loading it then fails rather than judging by another model's
scores), and every page's provenance (repository, commit, path, URL, date added, site, how its text was
extracted). The same data and classifier give a byte-identical file.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.digests import file_sha256
from curate.errors import ModelError
from curate.schema import REFERENCE_FILE, REFERENCE_FORMAT
from curate.score.labelled import read_labelled
from curate.score.model import model_dir
from curate.score.registry import load_model

PROVENANCE_FIELDS = ("source", "repo", "commit", "path", "url", "added", "site", "extractor", "extraction", "license")
"""Row fields copied into each page's provenance entry when the data has them."""

QUANTILES = (0.5, 0.8, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class ShippedReference:
    """A classifier's shipped reference, loaded: its sorted scores and what to cite when a decision uses it."""

    classifier: str
    scores: np.ndarray  # sorted ascending
    data_sha256: str
    data_file: str
    file_sha256: str  # of reference.json itself

    @property
    def n(self) -> int:
        """How many human pages the reference holds."""
        return len(self.scores)

    def describe(self) -> str:
        """One line naming the reference: classifier, size and digests (what the decision records)."""
        return (
            f"the shipped reference of {self.classifier} ({self.n} human web pages captured before the cutoff, "
            f"{self.data_file} sha256 {self.data_sha256[:12]}, reference.json sha256 {self.file_sha256[:12]})"
        )


def reference_path(name: str) -> Path:
    """Where classifier ``name``'s shipped reference lives."""
    return model_dir(name) / REFERENCE_FILE


def card_sha256(name: str) -> str:
    """SHA-256 of the classifier's ``card.json`` (its calibration and training data): the model a reference's
    scores belong to."""
    path = model_dir(name) / "card.json"
    try:
        return file_sha256(path)
    except OSError as e:
        raise ModelError(f"classifier {name!r}: cannot read {path} ({e.strerror or e})") from None


def build_reference(
    name: str, data: Path, *, split: str = "reference", extraction: str | None = None, device: str = "auto"
) -> dict[str, Any]:
    """Score the human rows of ``data`` whose ``split`` field is ``split`` (every human row when ``split`` is
    ``all``) with classifier ``name`` and return the reference as a dict (:func:`write_reference` writes it).

    Each text's language is detected as in scoring (texts outside the classifier's languages, or too short, get
    no score and are counted by reason, not used). ``extraction`` says how the texts were extracted from their
    pages when the rows do not (an ``extractor``/``extraction`` field).

    Raises:
        ModelError: unreadable data, no usable rows, or an unknown classifier.
    """
    rows = [r for r in read_labelled(data) if r.get("label") == "human"]
    if split != "all":
        rows = [r for r in rows if r.get("split") == split]
    if not rows:
        raise ModelError(f"{data} has no human rows with split = {split!r} to build a reference from")
    rows.sort(key=lambda r: str(r.get("id", "")))
    model = load_model(name, device)
    scored = model.score_many([str(r["text"]) for r in rows], [r.get("language") for r in rows])
    pages: list[dict[str, Any]] = []
    unscored: Counter[str] = Counter()
    for row, (score, reason, _) in zip(rows, scored, strict=True):
        if score is None:
            unscored[str(reason)] += 1
            continue
        page = {"id": str(row.get("id", "")), "score": round(float(score), 6)}
        page.update({k: row[k] for k in PROVENANCE_FIELDS if row.get(k) not in (None, "")})
        pages.append(page)
    if len(pages) < 10:
        raise ModelError(f"only {len(pages)} rows of {data} could be scored by {name}: a reference needs 10 or more")
    scores = np.sort(np.asarray([p["score"] for p in pages], dtype=float))
    extractors = sorted(
        {str(p.get("extractor") or p.get("extraction")) for p in pages if {"extractor", "extraction"} & set(p)}
    )
    by_source = Counter(str(p.get("source") or p.get("repo") or "unknown") for p in pages)
    return {
        "format": REFERENCE_FORMAT,
        "classifier": name,
        "classifier_card_sha256": card_sha256(name),
        "data": {"file": data.name, "sha256": file_sha256(data), "split": split, "human_rows": len(rows)},
        "extraction": extraction or ("; ".join(extractors) if extractors else "not stated"),
        "n": len(pages),
        "unscored": dict(sorted(unscored.items())),
        "quantiles": {f"{q:g}": round(float(np.quantile(scores, q)), 6) for q in QUANTILES},
        "sites": len({p.get("site") for p in pages if p.get("site")}),
        "by_source": dict(sorted(by_source.items())),
        "added": {
            "first": min((str(p["added"]) for p in pages if p.get("added")), default=None),
            "last": max((str(p["added"]) for p in pages if p.get("added")), default=None),
        },
        "scores": scores.round(6).tolist(),
        "pages": pages,
    }


def write_reference(reference: dict[str, Any], out: Path | None = None) -> Path:
    """Write ``reference`` (from :func:`build_reference`) to ``out`` or its classifier's folder; returns the path.
    Sorted keys and no time stamps: the same reference gives the same bytes."""
    path = out or reference_path(str(reference["classifier"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(reference, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_reference(name: str) -> ShippedReference | None:
    """Classifier ``name``'s shipped reference, or None when it ships none.

    Raises:
        ModelError: the file is corrupt, or stale (written for another version of the classifier's card), with
            the command that rebuilds it.
    """
    path = reference_path(name)
    if not path.is_file():
        return None
    rebuild = f"rebuild it with: curate classifiers reference {name} --data tests/data/mgt/web-human.jsonl.gz"
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
        scores = np.sort(np.asarray(data["scores"], dtype=float))
        card = str(data["classifier_card_sha256"])
        digest, data_file = str(data["data"]["sha256"]), str(data["data"]["file"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"the shipped reference {path} is unreadable ({e}); {rebuild}") from None
    if data.get("format") != REFERENCE_FORMAT or len(scores) < 10 or not np.all((scores >= 0) & (scores <= 1)):
        raise ModelError(
            f"the shipped reference {path} is not a {REFERENCE_FORMAT} file of 10 or more scores; {rebuild}"
        )
    if card != card_sha256(name):
        raise ModelError(
            f"the shipped reference {path} was computed with another version of {name} (its card.json changed "
            f"since): its scores would not be comparable; {rebuild}"
        )
    return ShippedReference(name, scores, digest, data_file, hashlib.sha256(raw).hexdigest())
