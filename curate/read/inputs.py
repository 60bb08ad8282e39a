"""Resolve what a user names (files, globs, directories, fsspec URLs) into a sorted list of input files."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

from curate.errors import InputError

DEFAULT_BASE_URL = "https://data.commoncrawl.org/"
INPUT_SUFFIXES = (".warc", ".warc.gz", ".wet", ".wet.gz", ".warc.wet.gz", ".wat", ".wat.gz", ".arc", ".arc.gz")


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL that fsspec reads remotely (``file://`` is local)."""
    return "://" in path and not path.startswith("file://")


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


def resolve_inputs(paths: Sequence[str], base_url: str = DEFAULT_BASE_URL) -> list[str]:
    """Input files for ``paths``.

    A directory contributes every WARC/WET/WAT/ARC file below it (recursively); a glob its matches; a file
    or URL itself; a Common Crawl ``*.paths`` / ``*.paths.gz`` listing its entries joined to ``base_url``.
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
            out.append(p)
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
