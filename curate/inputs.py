"""Resolve what a user names (files, globs, directories, fsspec URLs) into a sorted list of input files."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

from curate.errors import InputError

INPUT_SUFFIXES = (".warc", ".warc.gz", ".wet", ".wet.gz", ".warc.wet.gz", ".wat", ".wat.gz", ".arc", ".arc.gz")


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def resolve_inputs(paths: Sequence[str]) -> list[str]:
    """Input files for ``paths``.

    A directory contributes every WARC/WET/WAT/ARC file below it (recursively); a glob its matches; a file
    or URL itself. The result is sorted and de-duplicated.

    Raises:
        InputError: a path does not exist, a glob or directory matches nothing, or two inputs share a base
            name (document ids are derived from base names, so they must be unique within a run).
    """
    out: list[str] = []
    for p in paths:
        if _is_remote(p):
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
