"""Exact and near-duplicate building blocks; the earliest capture represents its cluster.

Per document (in parallel, in stage 1): ``text_hash`` of the normalised text, a MinHash signature of its word
n-grams (:class:`MinHasher`) and its LSH band keys. :mod:`curate.dedup.cluster` turns them into clusters;
``choose_representatives`` picks, in each cluster, the earliest capture (among the documents still kept, when
``curate decide`` asks; then the one with a page licence, then the longest, then the smallest id), so a
pre-cutoff copy always wins over its post-cutoff re-captures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

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
    """Lower-cased words (NFKC first for non-ASCII text); characters for CJK scripts, which do not separate
    words by spaces."""
    low = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).lower()
    if not low.isascii() and _CJK.search(low):
        return [c for c in low if c.isalnum()]
    return _WORD.findall(low)


def shingles(text: str, n: int) -> set[bytes]:
    """Word n-gram shingles as bytes (a single shingle of all words when there are fewer than ``n``).

    Used by the optional exact-Jaccard check; signatures hash the same n-grams without building them.
    """
    words = tokens(text)
    if not words:
        return set()
    if len(words) < n:
        return {" ".join(words).encode("utf-8")}
    return {" ".join(words[i : i + n]).encode("utf-8") for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str, n: int) -> float:
    """Exact Jaccard similarity of two texts' n-gram shingle sets."""
    sa, sb = shingles(a, n), shingles(b, n)
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


_SHIFT = np.uint64(32)
CHUNK = 8192  # shingles per block: at most CHUNK x num_perm x 8 bytes (8 MB at 128 hashes) in flight


class MinHasher:
    """MinHash signatures of word n-grams, vectorised with numpy.

    Tokens are hashed once (xxh64), n-gram hashes are combined from token hashes with fixed odd multipliers,
    and the ``num_perm`` hash functions are multiply-shift universal hashes ``(a * h + b) mod 2^64 >> 32``
    (Dietzfelbinger) evaluated over the whole array at once, so no Python code runs per shingle. Seeded and
    deterministic; values are 32-bit.
    """

    def __init__(self, num_perm: int, ngram: int, seed: int = 1) -> None:
        rng = np.random.RandomState(seed)
        self.num_perm, self.ngram = num_perm, ngram
        self.a = rng.randint(0, 1 << 62, size=num_perm, dtype=np.uint64) * np.uint64(4) | np.uint64(1)
        self.b = rng.randint(0, 1 << 62, size=num_perm, dtype=np.uint64) * np.uint64(4)
        self.mult = rng.randint(1, 1 << 62, size=ngram, dtype=np.uint64) * np.uint64(2) | np.uint64(1)

    def shingle_hashes(self, text: str) -> np.ndarray:
        """64-bit hashes of the text's n-grams (one hash of all words when there are fewer than n); may repeat."""
        import xxhash

        words = tokens(text)
        if not words:
            return np.empty(0, dtype=np.uint64)
        h = np.fromiter(map(xxhash.xxh64_intdigest, words), dtype=np.uint64, count=len(words))
        n = min(self.ngram, len(words))
        m = len(words) - n + 1
        with np.errstate(over="ignore"):
            combined = h[:m] * self.mult[0]
            for k in range(1, n):
                combined += h[k : m + k] * self.mult[k]
            mixed: np.ndarray = combined ^ (combined >> np.uint64(31))
        return mixed

    def signature(self, text: str) -> np.ndarray | None:
        """The ``num_perm`` MinHash values (uint64 holding 32-bit values), or None when the text has no words."""
        sh = self.shingle_hashes(text)
        if sh.size == 0:
            return None
        out: np.ndarray = np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for start in range(0, sh.size, CHUNK):  # bounded memory for documents of megabytes
                block = sh[start : start + CHUNK, None]
                np.minimum(out, ((block * self.a[None, :] + self.b[None, :]) >> _SHIFT).min(axis=0), out=out)
        return out


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[int]:
    """One 64-bit key per LSH band (xxh64 of the band's ``rows`` values, salted with the band number)."""
    import xxhash

    return [xxhash.xxh64_intdigest(sig[i * rows : (i + 1) * rows].tobytes(), seed=i) for i in range(bands)]


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """P(two documents of Jaccard ``s`` share at least one band) = 1 - (1 - s^rows)^bands: the S-curve."""
    return float(1 - (1 - s**rows) ** bands)


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


@dataclass(frozen=True)
class Member:
    """What representative choice needs to know about a cluster member."""

    doc_id: str
    kept: bool
    captured: dt.datetime | None
    has_page_license: bool
    text_chars: int
    text_hash: str


def _rank(m: Member) -> tuple[bool, bool, dt.datetime, bool, int, str]:
    never = dt.datetime.max.replace(tzinfo=dt.UTC)
    return (not m.kept, m.captured is None, m.captured or never, not m.has_page_license, -m.text_chars, m.doc_id)


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
