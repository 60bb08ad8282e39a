"""Payload digests in one canonical form: ``sha1:`` and 32 upper-case base32 characters, as WARC headers and Common
Crawl's index write them (the index without the ``sha1:`` prefix). Hex (40 characters) is accepted and normalised;
any other algorithm or encoding is refused with a message saying what is accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from pathlib import Path

from curate.errors import InputError

_B32 = re.compile(r"^[A-Z2-7]{32}$")
_HEX = re.compile(r"^[0-9a-f]{40}$")
ACCEPTED = "sha1: followed by 32 base32 characters (WARC, Common Crawl index) or 40 hex characters, prefix optional"


def canonical_digest(raw: str) -> str:
    """``raw`` as ``sha1:<BASE32>``.

    Raises:
        InputError: another algorithm (``sha256:…``) or encoding (base64, a truncated value), naming the value.
    """
    text = raw.strip()
    algo, sep, value = text.partition(":")
    if not sep:
        algo, value = "sha1", text
    if algo.lower() != "sha1":
        raise InputError(
            f"digest {raw!r} is {algo}, not SHA-1: only SHA-1 payload digests can be compared ({ACCEPTED})"
        )
    if _B32.match(value.upper()):
        return f"sha1:{value.upper()}"
    if _HEX.match(value.lower()):
        return "sha1:" + base64.b32encode(binascii.unhexlify(value.lower())).decode("ascii")
    hint = " (it looks like base64)" if re.fullmatch(r"[A-Za-z0-9+/]{27}=", value) else ""
    raise InputError(f"digest {raw!r} is not a SHA-1 digest in base32 or hex{hint}: expected {ACCEPTED}")


def sha1_digest(data: bytes) -> str:
    """The canonical digest (``sha1:<BASE32>``) of ``data``, as a WARC-Payload-Digest header writes it."""
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a local file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def digest_or_none(raw: str | None) -> str | None:
    """:func:`canonical_digest`, or None for a missing value or one in another algorithm or encoding."""
    if not raw:
        return None
    try:
        return canonical_digest(raw)
    except InputError:
        return None


def stored_forms(canonical: str) -> tuple[str, ...]:
    """The spellings under which an index or a store may hold ``canonical`` (compared as stored, so a join
    reads the digest column without computing on it): base32 with and without ``sha1:``, hex lower and upper
    case with and without it."""
    b32 = canonical.removeprefix("sha1:")
    hexed = base64.b32decode(b32).hex()
    return (b32, canonical, hexed, hexed.upper(), f"sha1:{hexed}", f"sha1:{hexed.upper()}")
