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
from functools import cache
from typing import Any

import numpy as np

_NON_WORD = re.compile(r"[^\w\s]+")
_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")

WORDS_V1 = "words-v1"
WORDS_V2 = "words-v2"
SCHEMES = (WORDS_V1, WORDS_V2)
"""Shingling schemes (``dedup.scheme``). ``words-v1``: lower-cased ``\\w+`` words, CJK and Hangul as single
characters. ``words-v2``: typography normalised (NFKC, case folding, curly quotes and apostrophes, dashes),
apostrophes dropped (``it's`` = ``its``), words of space-separated scripts as ``\\w+`` runs, and
text in a language written without spaces segmented into words (spaCy where it can do it offline) or, failing a
segmenter, into characters, shingled in n-grams two longer than for words."""

# scripts written without spaces between words: Han, kana, Thai, Lao, Tibetan, Myanmar, Khmer
_NO_SPACE = "\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_NO_SPACE_CHAR = re.compile(f"[{_NO_SPACE}]")
_SEGMENTS = re.compile(f"[{_NO_SPACE}]|[^\\W{_NO_SPACE}]+")
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "dz", "wuu", "yue"})
"""Languages (ISO 639 codes, as the language id at ingest writes them) written without spaces between words."""
SPACY_SEGMENTED = frozenset({"zh"})
"""Languages segmented by spaCy's blank pipeline with spaCy alone (no model, no extra package): Chinese, whose
default segmenter is per character. Japanese (SudachiPy), Thai (PyThaiNLP), Khmer, Lao, Burmese and Tibetan need
packages that are not dependencies, so they take the character fallback; adding one would change signatures, so
it would be a new scheme."""
_TYPOGRAPHY = str.maketrans(
    {c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u02bc\u0060\u00b4"}
    | {c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"}
    | {c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"}
)


def normalise_text(text: str) -> str:
    """NFKC, lower-case, punctuation removed, whitespace collapsed: the exact-dedup key's input."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_NON_WORD.sub(" ", text).split())


def text_hash(text: str) -> str:
    """SHA-1 of the normalised text (hex, 40 characters)."""
    return hashlib.sha1(normalise_text(text).encode("utf-8")).hexdigest()


def tokens(text: str) -> list[str]:
    """``words-v1`` tokens: lower-cased words (NFKC first for non-ASCII text); characters for CJK scripts, which
    do not separate words by spaces."""
    low = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).lower()
    if not low.isascii() and _CJK.search(low):
        return [c for c in low if c.isalnum()]
    return _WORD.findall(low)


def normalise_typography(text: str) -> str:
    """NFKC, case folding, quotes and dashes unified, apostrophes removed (``it's`` = ``its``; a quote mark
    between words is only punctuation to the shingler)."""
    low = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY).casefold()
    return low.replace("'", "") if "'" in low else low


@cache
def _spacy_tokenizer(language: str) -> Any:
    import spacy

    return spacy.blank(language).tokenizer


def segmented(text: str, language: str | None) -> tuple[list[str], bool]:
    """``words-v2`` tokens of ``text`` and whether they are characters of a script written without spaces.

    Space-separated text (no character of such a script) is ``\\w+`` runs, without spaCy. Text in one of
    :data:`SPACY_SEGMENTED` is segmented by spaCy (``spacy.blank(language)``). Other text holding such characters
    is segmented by script: each of those characters is a token, runs of other word characters are words;
    it counts as character-segmented when its language is one of :data:`NO_SPACE_LANGUAGES`, or, language
    unknown, when most of its tokens are such characters.
    """
    low = normalise_typography(text)
    if low.isascii() or not _NO_SPACE_CHAR.search(low):
        return _WORD.findall(low), False
    if language in SPACY_SEGMENTED:
        words = [t.text for t in _spacy_tokenizer(language)(low) if _WORD.search(t.text)]
        return words, True
    words = _SEGMENTS.findall(low)
    if language:
        return words, language in NO_SPACE_LANGUAGES
    return words, 2 * sum(1 for w in words if len(w) == 1 and _NO_SPACE_CHAR.match(w)) > len(words)


def scheme_tokens(text: str, scheme: str, ngram: int, language: str | None = None) -> tuple[list[str], int]:
    """The tokens of ``text`` under ``scheme`` and the n-gram size to shingle them with (``ngram``, or
    ``ngram + 2`` for character-segmented ``words-v2`` text: about as many words)."""
    if scheme == WORDS_V1:
        return tokens(text), ngram
    words, chars = segmented(text, language)
    return words, ngram + 2 if chars else ngram


def shingles(text: str, n: int, scheme: str = WORDS_V1, language: str | None = None) -> set[bytes]:
    """Word n-gram shingles as bytes (a single shingle of all words when there are fewer than ``n``).

    Used by the text checks of candidates; signatures hash the same n-grams without building them.
    """
    words, n = scheme_tokens(text, scheme, n, language)
    if not words:
        return set()
    if len(words) < n:
        return {" ".join(words).encode("utf-8")}
    return {" ".join(words[i : i + n]).encode("utf-8") for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str, n: int, scheme: str = WORDS_V1) -> float:
    """Exact Jaccard similarity of two texts' n-gram shingle sets."""
    sa, sb = shingles(a, n, scheme), shingles(b, n, scheme)
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


@dataclass(frozen=True)
class Similarity:
    """How much of two texts is the same, by n-gram shingles: ``jaccard`` (shared / all), ``containment``
    (shared / the smaller set: an excerpt, or a copy with sentences dropped or added, is contained in the
    other) and ``main_block`` (the larger, over the two texts, of the share of its longest line's shingles found
    in the other text: the article's main paragraph; a page template shares many shingles but never carries
    the article)."""

    jaccard: float
    containment: float
    main_block: float


def similarity(
    a: str, b: str, n: int, scheme: str, languages: tuple[str | None, str | None] = (None, None)
) -> Similarity:
    """The :class:`Similarity` of texts ``a`` and ``b`` (lines are separated by newlines), from their
    :func:`shingled` hashes."""
    return compare(shingled(a, n, scheme, languages[0]), shingled(b, n, scheme, languages[1]))


_SHIFT = np.uint64(32)
CHUNK = 8192  # shingles per block: at most CHUNK x num_perm x 8 bytes (8 MB at 128 hashes) in flight


class MinHasher:
    """MinHash signatures of word n-grams, vectorised with numpy.

    Tokens (of ``scheme``, see :data:`SCHEMES`) are hashed once (xxh64), n-gram hashes are combined from token
    hashes with fixed odd multipliers, and the ``num_perm`` hash functions are multiply-shift universal hashes
    ``(a * h + b) mod 2^64 >> 32`` (Dietzfelbinger) evaluated over the whole array at once, so no Python code
    runs per shingle. Seeded and deterministic; values are 32-bit.
    """

    def __init__(self, num_perm: int, ngram: int, seed: int = 1, scheme: str = WORDS_V1) -> None:
        rng = np.random.RandomState(seed)
        self.num_perm, self.ngram, self.scheme = num_perm, ngram, scheme
        self.a = rng.randint(0, 1 << 62, size=num_perm, dtype=np.uint64) * np.uint64(4) | np.uint64(1)
        self.b = rng.randint(0, 1 << 62, size=num_perm, dtype=np.uint64) * np.uint64(4)
        self.mult = rng.randint(1, 1 << 62, size=ngram + 2, dtype=np.uint64) * np.uint64(2) | np.uint64(1)

    def shingle_hashes(self, text: str, language: str | None = None) -> np.ndarray:
        """64-bit hashes of the text's n-grams (one hash of all words when there are fewer than n); may repeat."""
        import xxhash

        words, ngram = scheme_tokens(text, self.scheme, self.ngram, language)
        if not words:
            return np.empty(0, dtype=np.uint64)
        h = np.fromiter(map(xxhash.xxh64_intdigest, words), dtype=np.uint64, count=len(words))
        n = min(ngram, len(words))
        m = len(words) - n + 1
        with np.errstate(over="ignore"):
            combined = h[:m] * self.mult[0]
            for k in range(1, n):
                combined += h[k : m + k] * self.mult[k]
            mixed: np.ndarray = combined ^ (combined >> np.uint64(31))
        return mixed

    def signature(self, text: str, language: str | None = None) -> np.ndarray | None:
        """The ``num_perm`` MinHash values (uint64 holding 32-bit values), or None when the text has no words;
        ``language`` (ISO 639, from language id) chooses the word segmenter of ``words-v2``."""
        sh = self.shingle_hashes(text, language)
        if sh.size == 0:
            return None
        out: np.ndarray = np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
        buf = np.empty((min(sh.size, CHUNK), self.num_perm), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for start in range(0, sh.size, CHUNK):  # bounded memory for documents of megabytes
                block = sh[start : start + CHUNK, None]
                prod = buf[: block.shape[0]]
                np.multiply(block, self.a[None, :], out=prod)
                np.add(prod, self.b[None, :], out=prod)
                np.minimum(out, prod.min(axis=0), out=out)
        # the shift is monotonic, so it commutes with the minimum: shift num_perm values, not every product
        return out >> _SHIFT


class Shingled:
    """A text's n-gram shingles as sorted distinct 64-bit hashes (:meth:`MinHasher.shingle_hashes`): ``all`` of
    the whole text, ``main`` of its longest line (its main paragraph, shingled when first asked for). A few
    kilobytes per text, so candidates are compared without building strings, and each text is shingled once
    however many pairs it is in."""

    __slots__ = ("_hasher", "_language", "_main", "_main_line", "all")

    def __init__(self, text: str, n: int, scheme: str, language: str | None = None) -> None:
        self._hasher, self._language = _shingle_hasher(n, scheme), language
        self.all: np.ndarray = np.unique(self._hasher.shingle_hashes(text, language))
        main = max(text.splitlines() or [""], key=len)
        self._main: np.ndarray | None = self.all if main == text else None
        self._main_line = main

    @property
    def main(self) -> np.ndarray:
        """The sorted distinct shingle hashes of the longest line."""
        if self._main is None:
            self._main = np.unique(self._hasher.shingle_hashes(self._main_line, self._language))
        return self._main


@cache
def _shingle_hasher(n: int, scheme: str) -> MinHasher:
    return MinHasher(1, n, 1, scheme)


def shingled(text: str, n: int, scheme: str, language: str | None = None) -> Shingled:
    """The :class:`Shingled` hashes of ``text`` (n-grams as :func:`shingles` makes them; lines are separated by
    newlines)."""
    return Shingled(text, n, scheme, language)


def shared(a: np.ndarray, b: np.ndarray) -> int:
    """How many hashes two sorted arrays of distinct hashes have in common."""
    return int(np.intersect1d(a, b, assume_unique=True).size)


def compare(a: Shingled, b: Shingled) -> Similarity:
    """The :class:`Similarity` of two shingled texts."""
    if not a.all.size or not b.all.size:
        same = float(a.all.size == b.all.size)
        return Similarity(same, same, same)
    inter = shared(a.all, b.all)
    blocks = [shared(x.main, other.all) / x.main.size if x.main.size else 0.0 for x, other in ((a, b), (b, a))]
    return Similarity(inter / (a.all.size + b.all.size - inter), inter / min(a.all.size, b.all.size), max(blocks))


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[int]:
    """One 64-bit key per LSH band (xxh64 of the band's ``rows`` values, salted with the band number)."""
    import xxhash

    raw, width = sig.astype(np.uint64, copy=False).tobytes(), rows * 8
    digest = xxhash.xxh64_intdigest
    return [digest(raw[i * width : (i + 1) * width], seed=i) for i in range(bands)]


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
