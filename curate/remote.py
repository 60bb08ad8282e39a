"""Outputs and mixes at fsspec URLs (``s3://bucket/prefix``, any protocol but the local disk): staged, uploaded, read.

A mix or report bound for a URL is written and checked in a local staging folder first (under the store's
``work/``), then :func:`publish` uploads it so that nothing looks complete before it is: it deletes the old
``manifest.json`` first, writes an upload marker (:data:`UPLOAD_MARKER`), uploads every other file, checks their
sizes in the bucket, uploads the manifest last and removes the marker. A failure leaves no manifest (the marker
says an upload was under way), and a rerun replaces that partial upload. :class:`RemotePath` gives the readers
of a mix (``curate trace``, ``curate report --mix``) the few path operations they use, over fsspec. Credentials
and the endpoint come from the environment as the protocol's library reads them (for S3, boto3's ``AWS_*``).
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from curate.errors import ConfigError, InputError, OutputError
from curate.mix import MANIFEST, SIDECAR
from curate.read.inputs import LOCAL_PROTOCOLS, is_remote
from curate.store import WORK_DIR

UPLOAD_MARKER = ".curate-upload.json"
"""Written to a prefix before an upload starts and removed after its last file: a prefix holding it and no
manifest holds an upload that did not finish, which the next upload there replaces."""


def is_url(target: str | Path) -> bool:
    """True for a URL of a remote fsspec filesystem (``s3://…``, ``gs://…``, ``memory://…``); False for a local
    path or a ``file://`` URL."""
    return not isinstance(target, Path) and is_remote(target)


def _fs(url: str) -> tuple[Any, str]:
    """(the fsspec filesystem of ``url``, its path there without the protocol or a trailing slash)."""
    import fsspec.core

    fs, path = fsspec.core.url_to_fs(url)
    return fs, str(path).rstrip("/")


class RemotePath:
    """A file or folder at an fsspec URL, with the pathlib operations the readers of a mix use (``name``,
    ``suffix``, ``parent``, ``/``, ``with_name``, ``with_suffix``, ``is_file``, ``open``, ``read_text``,
    ``size``). ``str()`` is the URL, without a trailing slash."""

    def __init__(self, url: str) -> None:
        import fsspec.core

        protocol, path = fsspec.core.split_protocol(url)
        if protocol is None or protocol in LOCAL_PROTOCOLS:
            raise ValueError(f"{url} is not a URL of a remote filesystem")
        self.protocol = protocol
        self.path = path.rstrip("/")

    def __str__(self) -> str:
        return f"{self.protocol}://{self.path}"

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def _at(self, path: str) -> RemotePath:
        return RemotePath(f"{self.protocol}://{path}")

    @property
    def name(self) -> str:
        """The last part of the path."""
        return str(posixpath.basename(self.path))

    @property
    def suffix(self) -> str:
        """The last dot-suffix of the name, as :attr:`pathlib.PurePath.suffix`."""
        name = self.name
        i = name.rfind(".")
        return name[i:] if 0 < i < len(name) - 1 else ""

    @property
    def parent(self) -> RemotePath:
        """The folder holding this path."""
        return self._at(posixpath.dirname(self.path))

    def __truediv__(self, other: str | os.PathLike[str]) -> RemotePath:
        return self._at(posixpath.join(self.path, os.fspath(other)))

    def with_name(self, name: str) -> RemotePath:
        """This path with its last part replaced."""
        return self.parent / name

    def with_suffix(self, suffix: str) -> RemotePath:
        """This path with its last dot-suffix replaced."""
        stem = self.name[: len(self.name) - len(self.suffix)] if self.suffix else self.name
        return self.with_name(stem + suffix)

    def resolve(self) -> RemotePath:
        """Itself (a URL is already absolute)."""
        return self

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (one instance per protocol and settings, cached by fsspec)."""
        import fsspec

        return fsspec.filesystem(self.protocol)

    def is_file(self) -> bool:
        """True when a file (an object) is at this URL; False when none is, or the filesystem cannot say."""
        try:
            return bool(self.fs.isfile(self.path))
        except Exception:  # noqa: BLE001 - as pathlib: a path that cannot be checked is not a file here
            return False

    def open(self, mode: str = "rb") -> IO[Any]:
        """The file, opened for reading (ranged reads: a seek does not download what it skips)."""
        return self.fs.open(self.path, mode)  # type: ignore[no-any-return]

    def read_bytes(self) -> bytes:
        """The whole file."""
        return bytes(self.fs.cat_file(self.path))

    def read_text(self, encoding: str = "utf-8") -> str:
        """The whole file as text."""
        return self.read_bytes().decode(encoding)

    def size(self) -> int:
        """The file's size in bytes."""
        return int(self.fs.size(self.path))


def readable(folder: RemotePath) -> None:
    """Check that the remote ``folder`` can be listed (fresh, not from fsspec's listing cache), so a reader fails
    once with the reason rather than finding every file missing.

    Raises:
        InputError: nothing is at ``folder`` (no such bucket or prefix), or its filesystem cannot be reached.
    """

    fs = folder.fs
    try:
        fs.invalidate_cache(folder.path)
        fs.ls(folder.path, detail=False)
    except FileNotFoundError:
        raise InputError(f"nothing at {folder}: no such bucket or prefix") from None
    except Exception as e:  # noqa: BLE001 - connection refused, timeout, access denied: the library's own errors
        raise InputError(f"cannot read {folder}: {type(e).__name__}: {e}") from None


def location(target: str | Path) -> Path | RemotePath:
    """``target`` as a :class:`RemotePath` when it is a remote URL (:func:`is_url`), else as a local
    :class:`~pathlib.Path` (a ``file://`` URL becomes its path)."""
    if is_url(target):
        return RemotePath(str(target))
    text = str(target)
    return Path(text.removeprefix("file://")) if text.startswith("file://") else Path(text)


def file_size(path: Path | RemotePath) -> int:
    """The size in bytes of a local or remote file."""
    return path.size() if isinstance(path, RemotePath) else path.stat().st_size


def staging(store: Path, what: str) -> Path:
    """A fresh local folder path under the store's ``work/`` for an output bound for a URL (``what``: ``mix``,
    ``report``); removed first if a crashed process of the same id left it. Not created."""

    folder = Path(store) / WORK_DIR / f"{what}-upload-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def _listing(url: str) -> tuple[Any, str, dict[str, int]]:
    """(filesystem, path, {name relative to the prefix: size}) of everything under the prefix ``url``.

    Raises:
        ConfigError: the bucket (the path's first part) does not exist.
        OutputError: the filesystem cannot be reached or refuses the listing.
    """
    fs, path = _fs(url)
    try:
        fs.invalidate_cache()
        found = fs.find(path, detail=True)
    except FileNotFoundError as e:
        raise ConfigError(
            f"cannot write to {url}: the bucket {path.split('/')[0]!r} does not exist or these credentials "
            f"cannot see it ({e})"
        ) from None
    except Exception as e:  # noqa: BLE001 - connection refused, timeout, access denied: the library's own errors
        raise OutputError(f"cannot reach {url}: {type(e).__name__}: {e}") from None
    if path in found and found[path].get("type") != "directory":
        raise ConfigError(f"{url} is a file, not a folder for a mix")
    prefix = path + "/"
    return fs, path, {k[len(prefix) :]: int(v.get("size") or 0) for k, v in found.items() if k.startswith(prefix)}


def check_mix_prefix(url: str, manifest: str, overwrite: bool) -> None:
    """Refuse a prefix that holds another mix (its ``manifest``) unless ``overwrite``, or files that are neither
    a mix nor an unfinished upload of one (:data:`UPLOAD_MARKER`); an empty or new prefix, or an unfinished
    upload, is accepted.

    Raises:
        ConfigError: saying which, and what to do; or the bucket does not exist.
        OutputError: the filesystem cannot be reached.
    """
    _, _, names = _listing(url)
    if not names:
        return
    if manifest in names:
        if not overwrite:
            raise ConfigError(f"{url} already holds another mix; pass --overwrite to replace it")
        return
    if UPLOAD_MARKER not in names:
        raise ConfigError(
            f"{url} holds files that are not a mix (no {manifest}, no unfinished upload); choose an empty or new prefix"
        )


def _files(folder: Path) -> list[str]:
    """The files under the local ``folder``, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def publish(folder: Path, url: str, *, last: str, progress: Callable[[str], None] | None = None) -> list[str]:
    """Upload every file under the local ``folder`` to the prefix ``url`` so that ``last`` (the file that marks
    the output complete, e.g. ``manifest.json``) appears only once every other file is there whole: ``last`` is
    deleted from the prefix first, :data:`UPLOAD_MARKER` written, files the new output does not have removed, the
    files uploaded in name order (``progress`` is called with each name once it is up), their sizes in the
    bucket checked against ``folder``'s, then ``last`` uploaded and the marker removed. Returns the names
    uploaded, ``last`` at the end. The caller checks the prefix first (:func:`check_mix_prefix`).

    Raises:
        ConfigError: the bucket does not exist.
        OutputError: an upload failed or the filesystem cannot be reached; ``last`` is not in the prefix, the
            marker is, and the next :func:`publish` there replaces what was uploaded.
    """
    files = _files(folder)
    if last not in files:
        raise OutputError(f"{folder} has no {last}: not a finished output, so nothing was uploaded")
    fs, path, existing = _listing(url)
    body = [f for f in files if f != last]
    try:
        if last in existing:
            fs.rm_file(f"{path}/{last}")  # the old output stops looking complete before anything changes
        fs.pipe_file(f"{path}/{UPLOAD_MARKER}", (json.dumps({"files": files}, indent=1) + "\n").encode())
        _remove_stale(fs, path, existing, {*files, UPLOAD_MARKER})
        for name in body:
            fs.put_file(str(folder / name), f"{path}/{name}")
            if progress is not None:
                progress(name)
        fs.invalidate_cache()
        sizes = {k.removeprefix(path + "/"): int(v.get("size") or 0) for k, v in fs.find(path, detail=True).items()}
        wrong = [n for n in body if sizes.get(n) != (folder / n).stat().st_size]
        if wrong:
            raise OSError(f"{len(wrong)} files differ in size after upload, e.g. {wrong[0]}")
        fs.put_file(str(folder / last), f"{path}/{last}")
        if progress is not None:
            progress(last)
        fs.rm_file(f"{path}/{UPLOAD_MARKER}")
    except Exception as e:  # noqa: BLE001 - the filesystem library's errors, whatever they are
        raise OutputError(
            f"cannot upload to {url}: {type(e).__name__}: {e}; {last} was not written, so the upload does not "
            "look complete: run the command again to replace it"
        ) from None
    fs.invalidate_cache()
    return [*body, last]


def upload(local: Path, url: str) -> list[str]:
    """Put the local file ``local`` at ``url``, or every file under the local folder ``local`` below the prefix
    ``url`` (in name order); each object appears whole or not at all. Returns the names put (relative to
    ``local``'s folder). Files already under the prefix that ``local`` does not have are left alone.

    Raises:
        ConfigError: the bucket does not exist.
        OutputError: an upload failed.
    """
    fs, path = _fs(url)
    if local.is_dir():
        names = _files(local)
        pairs = [(local / n, f"{path}/{n}") for n in names]
    else:
        names, pairs = [local.name], [(local, path)]
    try:
        for source, target in pairs:
            fs.put_file(str(source), target)
    except FileNotFoundError as e:
        raise ConfigError(f"cannot write to {url}: the bucket does not exist ({e})") from None
    except Exception as e:  # noqa: BLE001 - the filesystem library's errors
        raise OutputError(f"cannot upload to {url}: {type(e).__name__}: {e}") from None
    return names


def _remove_stale(fs: Any, path: str, existing: Iterable[str], keep: set[str]) -> list[str]:
    """Delete the files ``existing`` under ``path`` (names relative to it) that are not in ``keep``; returns them."""
    stale = sorted(set(existing) - keep)
    if stale:
        fs.rm([f"{path}/{name}" for name in stale])
    return stale


def remove_others(url: str, keep: list[str]) -> list[str]:
    """Delete every file under the prefix ``url`` whose name (relative to it) is not in ``keep``: what an earlier
    upload of the same folder left that the new one does not have. Returns the names removed.

    Raises:
        ConfigError: the bucket does not exist.
        OutputError: the filesystem cannot be reached or a deletion failed.
    """
    fs, path, existing = _listing(url)
    try:
        stale = _remove_stale(fs, path, existing, set(keep))
    except Exception as e:  # noqa: BLE001 - the filesystem library's errors
        raise OutputError(f"cannot remove old files under {url}: {type(e).__name__}: {e}") from None
    fs.invalidate_cache()
    return stale


def download(url: str, local: Path) -> None:
    """Copy the file at ``url`` to ``local`` (its folder created).

    Raises:
        FileNotFoundError: nothing at ``url``.
        OutputError: the filesystem cannot be reached.
    """
    fs, path = _fs(url)
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        fs.get_file(path, str(local))
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - the filesystem library's errors
        raise OutputError(f"cannot read {url}: {type(e).__name__}: {e}") from None


def fetch_mix(url: str, into: Path) -> Path:
    """Copy what a report reads of the mix at ``url`` (its ``manifest.json`` and mix-level sidecar) into the
    local folder ``into``, and return ``into``.

    Raises:
        InputError: ``url`` holds no manifest (not a mix, or an upload that did not finish) or is unreadable.
        ConfigError: the bucket does not exist.
        OutputError: the filesystem cannot be reached.
    """

    base = str(RemotePath(url))
    try:
        download(f"{base}/{MANIFEST}", into / MANIFEST)
    except FileNotFoundError:
        _listing(base)  # a missing bucket or an unreachable endpoint says so
        raise InputError(f"{base} holds no {MANIFEST}: not a mix, or a mix whose upload did not finish") from None
    try:
        sidecar = json.loads((into / MANIFEST).read_text(encoding="utf-8")).get("sidecar") or SIDECAR
        download(f"{base}/{sidecar}", into / SIDECAR)
    except (FileNotFoundError, ValueError, AttributeError) as e:
        raise InputError(f"the mix at {base} has no readable sidecar: {e}") from None
    return into
