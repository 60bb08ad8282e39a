"""Progress of long commands, as data: the library reports, the command line draws (library code never prints).

A command calls its :class:`Reporter` when a stage starts and ends; while stage 1 runs (in worker processes,
or on cluster nodes) :func:`watching` polls the ``progress/<rank>.json`` files its tasks write and the
executor's completion markers, and reports records, bytes and tasks done about twice a second.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from datatrove.io import DataFolderLike, get_datafolder

REMOTE_POLL_S = 5.0  # how often progress lists a work folder on object storage (each poll is a listing request)


@dataclass(frozen=True)
class Snapshot:
    """Where a stage stands."""

    stage: str
    records: int
    bytes: int
    tasks_done: int
    tasks: int
    elapsed_s: float

    @property
    def docs_per_s(self) -> float:
        """Records per second so far."""
        return self.records / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Reporter(Protocol):
    """What a command tells whoever shows its progress."""

    def stage(self, name: str, tasks: int, total_bytes: int | None) -> None:
        """A stage starts (``total_bytes``: the input size when known)."""

    def update(self, snapshot: Snapshot) -> None:
        """The running stage's latest numbers."""

    def end(self, name: str, summary: str) -> None:
        """A stage ended; ``summary`` is one line for a person."""


class NullReporter:
    """Reports to nobody (library callers, ``--quiet``)."""

    def stage(self, name: str, tasks: int, total_bytes: int | None) -> None:
        """Ignore."""

    def update(self, snapshot: Snapshot) -> None:
        """Ignore."""

    def end(self, name: str, summary: str) -> None:
        """Ignore."""


def read_snapshot(stage: str, work: str | Path, logs: DataFolderLike, tasks: int, started: float) -> Snapshot:
    """Sum the tasks' progress files under ``work/progress`` and count completion markers under ``logs``
    (local folders or fsspec URLs)."""
    records = nbytes = 0
    folder, markers = get_datafolder(str(work)), get_datafolder(logs if not isinstance(logs, Path) else str(logs))
    for name in (
        folder.list_files("progress", recursive=False, glob_pattern="*.json") if folder.isdir("progress") else []
    ):
        try:
            with folder.open(name, "r", encoding="utf-8") as fh:
                p = json.load(fh)
        except (OSError, ValueError):
            continue  # being replaced right now
        records += int(p.get("records", 0))
        nbytes += int(p.get("bytes", 0))
    done = len(markers.list_files("completions", recursive=False)) if markers.isdir("completions") else 0
    return Snapshot(stage, records, nbytes, done, tasks, time.monotonic() - started)


@contextlib.contextmanager
def watching(
    reporter: Reporter, stage: str, work: str | Path, logs: DataFolderLike, tasks: int, *, every_s: float = 0.5
) -> Iterator[None]:
    """Report the stage's snapshot every ``every_s`` seconds while the block runs, and once at its end (every
    ``REMOTE_POLL_S`` seconds when the work folder is not local: each poll lists it)."""
    if "://" in str(work):
        every_s = max(every_s, REMOTE_POLL_S)
    started = time.monotonic()
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(every_s):
            reporter.update(read_snapshot(stage, work, logs, tasks, started))

    thread = threading.Thread(target=poll, name="curate-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        reporter.update(read_snapshot(stage, work, logs, tasks, started))
