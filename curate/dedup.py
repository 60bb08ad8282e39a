"""Exact and near-duplicate detection; the earliest capture represents its cluster.

Per document (in parallel, in stage 1): ``text_hash`` of the normalised text and a MinHash ``signature`` of
its word n-grams (datasketch). Once for the run: ``cluster`` unions exact-hash groups and MinHash-LSH
candidate pairs (union-find), then ``choose_representatives`` picks, in each cluster, the earliest capture
among the documents still kept (then the one with a page licence, then the longest, then the smallest id),
so a pre-cutoff copy always wins over its post-cutoff re-captures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

MINHASH_SCHEME = "affine32"  # datasketch 2.x permutation scheme; signatures of different schemes never mix
_NON_WORD = re.compile(r"[^\w\s]+")
_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def normalise_text(text: str) -> str:
    """NFKC, lower-case, punctuation removed, whitespace collapsed: the exact-dedup key's input."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_NON_WORD.sub(" ", text).split())


def text_hash(text: str) -> str:
    """SHA-1 of the normalised text (hex, 40 characters)."""
    return hashlib.sha1(normalise_text(text).encode("utf-8")).hexdigest()


def tokens(text: str) -> list[str]:
    """Words of the normalised text; characters for CJK scripts, which do not separate words by spaces."""
    norm = normalise_text(text)
    if _CJK.search(norm):
        return [c for c in norm if not c.isspace()]
    return _WORD.findall(norm)


def shingles(text: str, n: int) -> set[bytes]:
    """Word n-gram shingles (a single shingle of all words when there are fewer than ``n``)."""
    words = tokens(text)
    if not words:
        return set()
    if len(words) < n:
        return {" ".join(words).encode("utf-8")}
    return {" ".join(words[i : i + n]).encode("utf-8") for i in range(len(words) - n + 1)}


def signature(text: str, num_perm: int, n: int, seed: int = 1) -> np.ndarray | None:
    """MinHash signature (uint64 array of ``num_perm``) of ``text``; None when it has no words."""
    from datasketch import MinHash

    sh = shingles(text, n)
    if not sh:
        return None
    m = MinHash(num_perm=num_perm, seed=seed, scheme=MINHASH_SCHEME)
    m.update_batch(list(sh))
    return np.asarray(m.hashvalues, dtype=np.uint64)


class UnionFind:
    """Union-find over string keys with path halving; ``root`` of the smaller key wins for determinism."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        """Root of ``x``'s set."""
        p = self.parent.setdefault(x, x)
        while p != self.parent[p]:
            self.parent[p] = self.parent[self.parent[p]]
            p = self.parent[p]
        self.parent[x] = p
        return p

    def union(self, a: str, b: str) -> None:
        """Merge the sets of ``a`` and ``b``."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


def cluster(
    docs: Sequence[tuple[str, str, np.ndarray | None]],
    *,
    exact: bool,
    near: bool,
    threshold: float,
    num_perm: int,
    seed: int = 1,
) -> dict[str, str]:
    """Group ``(doc_id, text_hash, signature)`` triples; returns doc_id → cluster root for clustered docs only."""
    uf = UnionFind()
    if exact:
        first: dict[str, str] = {}
        for doc_id, h, _ in docs:
            if h in first:
                uf.union(first[h], doc_id)
            else:
                first[h] = doc_id
    if near:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        for doc_id, _, sig in sorted(docs, key=lambda d: d[0]):
            if sig is None:
                continue
            mh = MinHash(num_perm=num_perm, seed=seed, hashvalues=sig, scheme=MINHASH_SCHEME)
            for other in sorted(lsh.query(mh)):
                uf.union(other, doc_id)
            lsh.insert(doc_id, mh)
    groups: dict[str, list[str]] = defaultdict(list)
    for doc_id in list(uf.parent):
        groups[uf.find(doc_id)].append(doc_id)
    return {d: root for root, members in groups.items() if len(members) > 1 for d in members}


@dataclass(frozen=True)
class Member:
    """What representative choice needs to know about a cluster member."""

    doc_id: str
    kept: bool
    captured: dt.datetime | None
    has_page_licence: bool
    text_chars: int
    text_hash: str


def _rank(m: Member) -> tuple[bool, bool, dt.datetime, bool, int, str]:
    never = dt.datetime.max.replace(tzinfo=dt.UTC)
    return (not m.kept, m.captured is None, m.captured or never, not m.has_page_licence, -m.text_chars, m.doc_id)


def choose_representatives(members: Iterable[Member], roots: dict[str, str]) -> dict[str, tuple[str, int, str]]:
    """doc_id → (representative doc_id, cluster size, 'exact'|'near'|'self') for every clustered document."""
    by_root: dict[str, list[Member]] = defaultdict(list)
    for m in members:
        if m.doc_id in roots:
            by_root[roots[m.doc_id]].append(m)
    out: dict[str, tuple[str, int, str]] = {}
    for group in by_root.values():
        rep = min(group, key=_rank)
        for m in group:
            kind = "self" if m.doc_id == rep.doc_id else ("exact" if m.text_hash == rep.text_hash else "near")
            out[m.doc_id] = (rep.doc_id, len(group), kind)
    return out
