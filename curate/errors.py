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


class OutputError(CurateError):
    """An output (mix, report, exports) could not be written: a full or read-only disk. Nothing half-written
    is left behind."""
