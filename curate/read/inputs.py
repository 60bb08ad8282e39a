"""Resolve what a user names (files, globs, directories, fsspec URLs) into a sorted list of input files."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Sequence
from typing import IO

from curate.errors import InputError

DEFAULT_BASE_URL = "https://data.commoncrawl.org/"
INPUT_SUFFIXES = (".warc", ".warc.gz", ".wet", ".wet.gz", ".warc.wet.gz", ".wat", ".wat.gz", ".arc", ".arc.gz")


class UnreachableInput(OSError):
    """A remote input could not be reached after every try (not: it does not exist)."""


def is_transient(error: BaseException) -> bool:
    """Whether an error opening a remote input may pass on another try: a refused, reset or timed-out connection,
    or an HTTP 5xx/429 answer, anywhere in the error's chain of causes. A missing file (HTTP 404, no such key)
    or a refused permission is not."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        status = getattr(seen, "status", None)
        if isinstance(status, int) and status >= 400:
            return status >= 500 or status == 429
        if isinstance(seen, ConnectionError | TimeoutError):
            return True
        kind = type(seen)
        if kind.__module__.split(".")[0] in ("aiohttp", "botocore", "urllib3") and any(
            word in kind.__name__ for word in ("Connect", "Connection", "Timeout", "Disconnect", "Endpoint")
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def open_input(path: str, attempts: int = 1, backoff_s: float = 0.0) -> IO[bytes]:
    """Open an input (local path or fsspec URL) for binary reading; the caller closes it.

    A remote input whose opening fails with a transient error (:func:`is_transient`) is tried again after
    ``backoff_s``, doubled after each try, up to ``attempts`` tries in all (ingest passes the recipe's
    ``read.attempts`` and ``read.backoff_s``; the default here is one try).

    Raises:
        UnreachableInput: every try failed with a transient error; the message has the last one.
        OSError: the input does not exist or cannot be read (not retried), as fsspec raises it.
    """
    import fsspec

    if not is_remote(path):
        opened: IO[bytes] = fsspec.open(path, "rb").open()
        return opened
    wait = backoff_s
    for attempt in range(1, attempts + 1):
        try:
            remote: IO[bytes] = fsspec.open(path, "rb").open()
            return remote
        except Exception as e:  # classified: transient errors are retried, others raised as they are
            if not is_transient(e):
                raise
            last = e
        if attempt < attempts:
            time.sleep(wait)
            wait *= 2
    cause = last.__cause__ or last
    raise UnreachableInput(f"unreachable after {attempts} tries: {type(cause).__name__}: {cause}") from last


LOCAL_PROTOCOLS = frozenset({"file", "local"})  # fsspec protocols that name this machine's files


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL of a remote fsspec filesystem (``s3://…``, ``https://…``, ``memory://…``);
    False for a local path or a ``file://`` / ``local://`` URL."""
    import fsspec.core

    protocol, _ = fsspec.core.split_protocol(path)
    return protocol is not None and protocol not in LOCAL_PROTOCOLS


def _is_relative_entry(entry: str) -> bool:
    """A listing entry is a relative path below the base: no scheme, no absolute path, no ``..`` segment."""
    if (
        "://" in entry
        or entry.startswith(("/", "\\", "~"))
        or "\x00" in entry
        or ":" in entry.split("/", maxsplit=1)[0]
    ):
        return False
    return ".." not in entry.replace("\\", "/").split("/")


def read_paths_listing(listing: str, base_url: str = DEFAULT_BASE_URL) -> list[str]:
    """Entries of a Common Crawl ``*.paths(.gz)`` listing joined to ``base_url`` (a URL or a local folder).

    Raises:
        InputError: the listing cannot be read, is empty, or (local base) names files that do not exist.
    """
    import fsspec

    try:
        with fsspec.open(listing, "rt", compression="infer", encoding="utf-8") as fh:
            entries = [line.strip() for line in fh if line.strip() and not line.startswith("#")]
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise InputError(f"cannot read paths listing {listing}: {e}") from None
    if not entries:
        raise InputError(f"paths listing {listing} is empty")
    unsafe = [e for e in entries if not _is_relative_entry(e)]
    if unsafe:
        raise InputError(
            f"paths listing {listing}: {len(unsafe)} entries do not name a file under the base URL "
            f"(absolute, '..' or a URL of their own; first: {unsafe[0]!r}); nothing was read"
        )
    if is_remote(base_url):
        return [base_url.rstrip("/") + "/" + e for e in entries]
    root = os.path.realpath(base_url)
    out = [os.path.abspath(os.path.join(base_url, e)) for e in entries]
    outside = [p for p in out if os.path.commonpath([root, os.path.realpath(p)]) != root]
    if outside:
        raise InputError(
            f"paths listing {listing}: {len(outside)} entries resolve outside {base_url} through a link "
            f"(first: {outside[0]}); nothing was read"
        )
    missing = [p for p in out if not os.path.exists(p)]
    if missing:
        raise InputError(
            f"{len(missing)} of {len(out)} files in {listing} are not under {base_url} (first: {missing[0]})"
        )
    return out


def remote_matches(url: str) -> list[str]:
    """The input files a remote glob (``s3://bucket/crawl/*.warc.gz``) or folder (ending in ``/``) names, as URLs.

    Raises:
        InputError: the listing fails, or matches no WARC/WET/WAT/ARC file.
    """
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url)
        found = fs.glob(root) if any(ch in url for ch in "*?[") else fs.find(root)
    except Exception as e:  # noqa: BLE001 - no credentials, no such bucket, unreachable: say which
        raise InputError(f"cannot list {url}: {type(e).__name__}: {e}") from None
    files = sorted(fs.unstrip_protocol(f) for f in found if str(f).lower().endswith(INPUT_SUFFIXES))
    if not files:
        raise InputError(f"no .warc/.wet/.wat/.arc(.gz) file matches {url!r}")
    return files


def resolve_inputs(paths: Sequence[str], base_url: str = DEFAULT_BASE_URL) -> list[str]:
    """Input files for ``paths``.

    A directory contributes every WARC/WET/WAT/ARC file below it (recursively); a glob its matches (also a
    remote one, ``s3://bucket/crawl/*.warc.gz``, and a remote folder ending in ``/``); a file or URL itself; a Common Crawl ``*.paths`` / ``*.paths.gz`` listing its entries joined to ``base_url``.
    The result is sorted and de-duplicated.

    Raises:
        InputError: a path does not exist, a glob or directory matches nothing, or two inputs share a base
            name (document ids are derived from base names, so they must be unique within a run).
    """
    out: list[str] = []
    for p in paths:
        if p.endswith((".paths", ".paths.gz")):
            out.extend(read_paths_listing(p, base_url))
            continue
        if is_remote(p):
            out.extend(remote_matches(p) if p.endswith("/") or any(ch in p for ch in "*?[") else [p])
            continue
        if any(ch in p for ch in "*?["):
            matches = sorted(m for m in glob.glob(p, recursive=True) if os.path.isfile(m))
            if not matches:
                raise InputError(f"no input file matches {p!r}")
            out.extend(os.path.abspath(m) for m in matches)
        elif os.path.isdir(p):
            found = sorted(
                os.path.join(root, f)
                for root, _, files in os.walk(p)
                for f in files
                if f.lower().endswith(INPUT_SUFFIXES)
            )
            if not found:
                raise InputError(f"directory {p!r} holds no .warc/.wet/.wat/.arc(.gz) file")
            out.extend(os.path.abspath(f) for f in found)
        elif os.path.isfile(p):
            out.append(os.path.abspath(p))
        else:
            raise InputError(f"input path {p!r} does not exist")
    files = sorted(set(out))
    seen: dict[str, str] = {}
    for f in files:
        name = os.path.basename(f)
        if name in seen:
            raise InputError(
                f"two inputs share the base name {name!r} ({seen[name]} and {f}); rename one or run them separately"
            )
        seen[name] = f
    return files
