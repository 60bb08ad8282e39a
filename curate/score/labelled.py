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


WEB_SPLITS = ("train", "reference", "eval")  # of real pre-cutoff human web pages, one per site (see read_web_human)


def read_web_human(path: Path) -> list[dict[str, Any]]:
    """Rows of a real-human-web-text file (``tests/data/mgt/web-human.jsonl.gz``): every row is ``human``, has a
    ``site`` and a ``split`` (``train`` to fit on, ``reference`` to calibrate and for reference distributions,
    ``eval`` only for the web false-positive gate), and every site is in one split only.

    Raises:
        ModelError: unreadable file, a machine row, a row without site or split, or a site in two splits.
    """
    rows = read_labelled(path)
    where: dict[str, str] = {}
    for i, r in enumerate(rows):
        if r["label"] != "human" or r.get("split") not in WEB_SPLITS or not r.get("site"):
            raise ModelError(f"{path}: row {i + 1} needs label human, a site and a split ({', '.join(WEB_SPLITS)})")
        if where.setdefault(r["site"], r["split"]) != r["split"]:
            raise ModelError(f"{path}: site {r['site']!r} is in splits {where[r['site']]} and {r['split']}")
    return rows


def web_split(rows: Iterable[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """The rows of one ``split`` of a real-human-web-text file (:func:`read_web_human`)."""
    return [r for r in rows if r.get("split") == split]


def balance_copies(rows: Sequence[dict[str, Any]], web_copies: int = 1, *, per_domain: bool = False) -> list[int]:
    """How many times each training row is shown to a model so that no domain teaches its label.

    A domain with one class only (``essay`` has machine texts only) gets 0 copies, so "essay" cannot come to
    mean "machine". Real human web rows (``domain`` web, no machine counterpart) get ``web_copies`` each: they
    pull the human side toward the genre a crawl holds. With ``per_domain`` the scarcer class of every other
    domain is also repeated (rounded ratio of the class counts) so both weigh the same; measured on the
    mgt-fasttext-v2 recipe, that lowered validation AUROC (0.931 against 0.942) and the AUROC of real human
    web pages against machine texts (0.871 against 0.888), so the shipped recipe leaves it off.
    """
    counts: dict[str, dict[bool, int]] = {}
    for r in rows:
        c = counts.setdefault(str(r.get("domain")), {True: 0, False: 0})
        c[r["label"] == "machine"] += 1
    out: list[int] = []
    for r in rows:
        domain = str(r.get("domain"))
        c = counts[domain]
        machine = r["label"] == "machine"
        if domain == "web" and not machine:
            out.append(web_copies)
        elif c[True] == 0 or c[False] == 0:
            out.append(0)
        elif per_domain:
            out.append(max(1, round(c[not machine] / c[machine])))
        else:
            out.append(1)
    return out


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
