"""Errors by blast radius.

A problem with one record never raises: it becomes a reason-coded row. These exceptions are for problems
that stop a whole run before or during work; the CLI turns them into messages that say what to fix.
"""

from __future__ import annotations


class CurateError(Exception):
    """Base class of every error curate raises on purpose."""


class ConfigError(CurateError):
    """A recipe or option is invalid; raised before any work starts."""


class InputError(CurateError):
    """An input path is missing, or no input record could be read at all."""


class ModelError(CurateError):
    """A classifier artefact is missing or corrupt."""


class StoreError(CurateError):
    """A store path is not a curate store, is locked by another writer, or has a schema this code cannot read."""


class Interrupted(CurateError):
    """A long command was stopped (Ctrl-C); the message says what was interrupted and how to resume."""


class TasksFailed(CurateError):
    """Tasks of a stage ended unfinished. ``causes``: the last line of each failed task's traceback, by rank, as
    its log recorded it (empty for a task whose worker was killed, which leaves none)."""

    def __init__(self, message: str, causes: dict[int, str]) -> None:
        super().__init__(message)
        self.causes = causes

    def disk_error(self) -> str | None:
        """The operating system's words for a full or read-only disk when that is what stopped a task, else None."""
        for cause in self.causes.values():
            for words in DISK_ERRORS:
                if words in cause:
                    return words
        return None


DISK_ERRORS = (
    "No space left on device",
    "Read-only file system",
    "Disk quota exceeded",
)  # strerror of ENOSPC, EROFS, EDQUOT


class OutputError(CurateError):
    """An output (mix, report, exports) could not be written: a full or read-only disk. Nothing half-written
    is left behind."""
