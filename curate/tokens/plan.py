"""The mix plan: how many copies of each document, in what order, in which shard. Pure functions of the selected
documents, their token counts, the recipe and the seed, so the plan (and the shards) never depend on how many
tasks tokenized the documents.

A bucket takes its documents in one of three ways:

- neither ``weight`` nor ``tokens``: every document once;
- ``tokens = N``: a token target;
- ``weight = w``: a share of the mix. Weights are normalised to sum to 1 over the weighted buckets. The weighted
  buckets together get ``mix.tokens`` minus what the other buckets take, or, when ``mix.tokens`` is 0, the
  largest total at these shares that repeats no document (the bucket with the fewest tokens per unit of weight
  is taken whole, the others are subsampled).

A target is filled in seeded passes over the bucket: whole passes while the target exceeds the bucket, then one
pass in a seeded order taking every document that still fits, then, if that leaves a gap, the smallest document
that brings the total closer; no document enters more than ``mix.max_copies`` times. When the result is more
than 1% from the target the bucket's ``notes`` say why (too small under the cap, or documents too coarse).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TOLERANCE = 0.01
"""How far (as a fraction of the target) the achieved tokens of a bucket may be from its target."""


@dataclass
class BucketPlan:
    """What the plan did with one bucket (it becomes the bucket's entry in ``manifest.json``)."""

    name: str
    where: str
    mode: str  # "all" (each document once), "tokens" (a target) or "weight" (a share)
    weight: float | None = None
    share: float | None = None
    requested_tokens: int | None = None
    documents: int = 0  # distinct documents selected
    available_tokens: int = 0  # their tokens, each once (BOS/EOS included)
    entries: int = 0
    tokens: int = 0
    max_copies_used: int = 0
    within_tolerance: bool = True
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: v for k, v in self.__dict__.items()}


def hash_keys(seed: int, tag: str, doc_ids: Sequence[str], extra: Sequence[int] | int = 0) -> np.ndarray:
    """A seeded 64-bit key per document (and per ``extra`` number, e.g. a copy), for orders and samples."""
    extras = [extra] * len(doc_ids) if isinstance(extra, int) else list(extra)
    prefix = f"{seed}:{tag}:".encode()
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(prefix + f"{d}:{x}".encode(), digest_size=8).digest(), "big")
            for d, x in zip(doc_ids, extras, strict=True)
        ),
        dtype=np.uint64,
        count=len(doc_ids),
    )


def fill(lengths: np.ndarray, doc_ids: Sequence[str], target: int, *, cap: int, seed: int, bucket: str) -> np.ndarray:
    """Copies of each document (lengths in tokens) so that their tokens come as close to ``target`` as the
    documents allow, each document at most ``cap`` times (see the module docstring)."""
    n = len(lengths)
    copies = np.zeros(n, dtype=np.int64)
    if n == 0 or target <= 0:
        return copies
    total = int(lengths.sum())
    rem = int(target)
    passes = 0
    while rem >= total and passes < cap:
        copies += 1
        rem -= total
        passes += 1
    if rem > 0 and passes < cap:
        order = np.lexsort((np.arange(n), hash_keys(seed, f"fill:{bucket}", doc_ids, passes)))
        ordered = lengths[order]
        cum = np.cumsum(ordered)
        k = int(np.searchsorted(cum, rem, side="right"))
        copies[order[:k]] += 1
        rem -= int(cum[k - 1]) if k else 0
        smallest_left = ordered[k:].min() if k < n else 0
        for j in order[k:]:
            if rem < smallest_left:
                break
            if lengths[j] <= rem:
                copies[j] += 1
                rem -= int(lengths[j])
    while rem > 0:  # the gap: a document that fits, or the one whose overshoot is smaller than the gap
        open_ = np.flatnonzero(copies < cap)
        if not len(open_):
            break
        j = int(open_[np.lexsort((open_, lengths[open_]))[0]])
        size = int(lengths[j])
        if size <= rem:
            copies[j] += 1
            rem -= size
            continue
        if size - rem < rem:
            copies[j] += 1
        break
    return copies


def plan_buckets(
    buckets: Sequence[Any],
    bucket_of: np.ndarray,
    lengths: np.ndarray,
    doc_ids: Sequence[str],
    *,
    total_tokens: int,
    max_copies: int,
    seed: int,
) -> tuple[np.ndarray, list[BucketPlan], list[str]]:
    """Copies of every selected document, the plan of each bucket, and the mix-level notes.

    ``buckets`` are the recipe's (``name``, ``where``, ``weight``, ``tokens``); ``bucket_of[i]`` is the bucket
    index of document ``i``, ``lengths[i]`` its tokens with BOS/EOS, ``doc_ids`` sorted.
    """
    copies = np.zeros(len(doc_ids), dtype=np.int64)
    plans: list[BucketPlan] = []
    members: list[np.ndarray] = []
    notes: list[str] = []
    for b_index, b in enumerate(buckets):
        idx = np.flatnonzero(bucket_of == b_index)
        members.append(idx)
        mode = "weight" if b.weight is not None else "tokens" if b.tokens is not None else "all"
        p = BucketPlan(b.name, b.where, mode, weight=b.weight, requested_tokens=b.tokens)
        p.documents, p.available_tokens = len(idx), int(lengths[idx].sum())
        if not len(idx):
            p.notes.append("warning: the bucket selects no documents")
        plans.append(p)
    weighted = [p for p in plans if p.mode == "weight"]
    weight_sum = sum(p.weight or 0.0 for p in weighted)
    for p in weighted:
        p.share = (p.weight or 0.0) / weight_sum if weight_sum > 0 else 0.0
    if weighted and abs(weight_sum - 1.0) > 1e-9:
        shares = ", ".join(f"{p.name} {p.share:.4f}" for p in weighted)
        notes.append(f"weights sum to {weight_sum:g}, not 1: normalised to shares {shares}")
    fixed = sum(p.available_tokens for p in plans if p.mode == "all") + sum(
        p.requested_tokens or 0 for p in plans if p.mode == "tokens"
    )
    if weighted:
        if total_tokens > 0:
            pool = total_tokens - fixed
            if pool < 0:
                notes.append(
                    f"warning: mix.tokens {total_tokens} is less than the {fixed} tokens the buckets without a weight "
                    "take; the weighted buckets get none"
                )
                pool = 0
        else:
            ratios = [p.available_tokens / p.share for p in weighted if p.share and p.available_tokens]
            pool = int(min(ratios)) if ratios else 0
            notes.append(
                f"mix.tokens is 0: the weighted buckets share {pool} tokens, the most at these shares that repeats "
                "no document"
            )
        for p in weighted:
            p.requested_tokens = round((p.share or 0.0) * pool)
    elif total_tokens > 0:
        notes.append("warning: mix.tokens applies to weighted buckets and no bucket has a weight; it was not used")
    for b_index, p in enumerate(plans):
        idx = members[b_index]
        if p.mode == "all":
            copies[idx] = 1
        else:
            ids = [doc_ids[int(i)] for i in idx]
            copies[idx] = fill(lengths[idx], ids, p.requested_tokens or 0, cap=max_copies, seed=seed, bucket=p.name)
        p.entries = int(copies[idx].sum())
        p.tokens = int((copies[idx] * lengths[idx]).sum())
        p.max_copies_used = int(copies[idx].max()) if len(idx) else 0
        if p.mode != "all" and p.requested_tokens:
            off = abs(p.tokens - p.requested_tokens)
            p.within_tolerance = off <= TOLERANCE * p.requested_tokens
            if not p.within_tolerance:
                cap_total = p.available_tokens * max_copies
                if cap_total < p.requested_tokens:
                    p.notes.append(
                        f"bucket too small: {p.documents} documents of {p.available_tokens} tokens, at most "
                        f"{max_copies} copies each (mix.max_copies), give {cap_total} tokens < the "
                        f"{p.requested_tokens} requested"
                    )
                else:
                    p.notes.append(
                        f"documents too coarse for the target: the closest total is {p.tokens} tokens "
                        f"({100.0 * (p.tokens - p.requested_tokens) / p.requested_tokens:+.2f}%)"
                    )
    return copies, plans, notes


def shuffle_entries(copies: np.ndarray, doc_ids: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(document index, copy number) of every entry in the mix's global order: sorted by a seeded hash of
    (doc_id, copy), the same whatever the buckets, shards or tasks."""
    doc = np.repeat(np.arange(len(copies), dtype=np.int64), copies)
    if not len(doc):
        return doc, doc.copy()
    starts = np.cumsum(copies) - copies
    copy = np.arange(len(doc), dtype=np.int64) - np.repeat(starts, copies)
    keys = hash_keys(seed, "order", [doc_ids[int(i)] for i in doc], copy.tolist())
    order = np.lexsort((copy, doc, keys))
    return doc[order], copy[order]


def shard_breaks(entry_lengths: np.ndarray, max_tokens: int) -> np.ndarray:
    """Shard number of each entry (in order): a shard closes before the entry that would take it past
    ``max_tokens``, and holds at least one entry."""
    shard = np.zeros(len(entry_lengths), dtype=np.int64)
    current, used = 0, 0
    for i, n in enumerate(entry_lengths.tolist()):
        if used and used + n > max_tokens:
            current, used = current + 1, 0
        shard[i] = current
        used += n
    return shard
