"""Labelled MGT texts: reading them, the grouped train/validation split, and the leave-one-out folds."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from curate.errors import ModelError
from curate.score.text import normalise, unscorable

VAL_BUCKETS = 2  # of 10: a group is in validation when sha1(group) % 10 < VAL_BUCKETS


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


def calibration_rows(val_rows: list[dict[str, Any]]) -> list[bool]:
    """Which validation rows fit the Platt calibration: the even-hash half of the validation groups."""
    return [int(hashlib.sha1(str(r.get("group")).encode()).hexdigest(), 16) % 2 == 0 for r in val_rows]


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
