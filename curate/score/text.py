"""What an MGT classifier sees of a text: normalised words cut into windows, and the rule that refuses
texts that cannot be scored (too short, not text).

Every kind sees normalised word windows, never whole documents: chat preambles ("Sure", "Here is", "Title:",
markdown bold/headers) are stripped, digits folded, punctuation split off, and texts cut into windows of
``WINDOW`` words, so length and formatting artefacts of the training data are not learnable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from curate.schema import ScoreReason

WINDOW = 128


MIN_WORDS = 30


TEXT_CHECK_TOKENS = 128  # the head of a text that :func:`unscorable` reads (as lid reads its first 2,000 chars)


MIN_LETTER_SHARE = 0.2  # of those tokens, words of letters


MAX_JUNK_SHARE = 0.05  # of those tokens, C0/C1 control characters (whitespace aside) and U+FFFD


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
