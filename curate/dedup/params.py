"""Near-dedup parameters: MinHash size, shingle size, the LSH band split chosen for a target recall at the
Jaccard threshold, and the S-curve that ``curate dedup --explain`` prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from curate.dedup.minhash import WORDS_V1, MinHasher, candidate_probability


def recall_bands(threshold: float, num_perm: int, min_recall: float = 0.97) -> tuple[int, int]:
    """(bands, rows), bands * rows <= num_perm, with P(candidate | Jaccard = threshold) >= ``min_recall`` and
    the fewest candidates below it (smallest P at threshold - 0.2); falls back to the highest recall."""
    best: tuple[float, float, int, int] | None = None
    fallback: tuple[float, int, int] = (-1.0, 1, 1)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = candidate_probability(threshold, b, r)
            if p > fallback[0]:
                fallback = (p, b, r)
            if p >= min_recall:
                key = (candidate_probability(max(threshold - 0.2, 0.0), b, r), -p, b, r)
                if best is None or key < best:
                    best = key
    return (best[2], best[3]) if best else (fallback[1], fallback[2])


def signature_margin(threshold: float, num_perm: int) -> float:
    """Two standard deviations of the MinHash Jaccard estimate at the threshold."""
    return 2 * math.sqrt(threshold * (1 - threshold) / num_perm)


@dataclass(frozen=True)
class DedupParams:
    """Everything that makes two runs' signatures comparable."""

    num_perm: int
    ngram: int
    bands: int
    rows: int
    seed: int
    scheme: str = WORDS_V1  # what signatures written before schemes existed were made with

    @property
    def name(self) -> str:
        """Versioned parameter string, recorded in the run."""
        tail = "" if self.scheme == WORDS_V1 else f",scheme={self.scheme}"
        return f"minhash-lsh-v2:perm={self.num_perm},ngram={self.ngram},bands={self.bands}x{self.rows},seed={self.seed}{tail}"

    def hasher(self) -> MinHasher:
        """The :class:`MinHasher` of these parameters."""
        return MinHasher(self.num_perm, self.ngram, self.seed, self.scheme)


def s_curve(
    params: DedupParams, threshold: float, steps: tuple[float, ...] = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
) -> list[tuple[float, float, bool]]:
    """(Jaccard, P(candidate), counts as duplicate) at each step: the LSH S-curve of ``params``."""
    return [(s, candidate_probability(s, params.bands, params.rows), s >= threshold) for s in steps]
