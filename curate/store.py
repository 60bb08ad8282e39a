"""The store: one folder that grows as crawls are ingested, with a DuckDB file as the system of record.

A store folder holds ``provenance.duckdb`` (the tables of :mod:`curate.schema`), ``LOCK`` (held by the one
process that writes) and ``work/`` (per-ingest task shards and logs). This module does I/O only: it creates,
opens, locks and migrates stores, loads an ingest's shards in one transaction, and counts. The rules that
set a record's status live in :mod:`curate.decide`; dedup lives in :mod:`curate.dedup`.

Readers open the DuckDB file read-only and see the last committed state: every writer (ingest load, dedup,
decide) changes the file in one transaction, so a kill leaves the store as it was before that command.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import CurateError, StoreError
from curate.schema import (
    DECIDED_COLUMNS,
    DOCUMENT_COLUMNS,
    EVIDENCE_COLUMNS,
    INGEST_COLUMNS,
    OPTOUT_COLUMNS,
    SCHEMA_VERSION,
    STORE_TABLES_DDL,
    TEXT_COLUMNS,
    Status,
    ddl,
)

STORE_FILE = "provenance.duckdb"
LOCK_FILE = "LOCK"
WORK_DIR = "work"


@dataclass(frozen=True)
class RunCounts:
    """How records ended; ``read == kept + dropped + quarantined`` always holds (undecided records count as
    neither until ``curate decide`` has run: ``pending``)."""

    read: int
    kept: int
    dropped: int
    quarantined: int
    by_reason: tuple[tuple[str, str, int], ...] = ()  # (status, reason, count), most frequent first
    pending: int = 0


def store_file(store: Path) -> Path:
    """The DuckDB file of a store folder (a path to the file itself is taken as it is)."""
    store = Path(store)
    return store if store.suffix == ".duckdb" else store / STORE_FILE


def duckdb_connect(path: str | Path, *, memory_limit: str, spill_dir: Path, read_only: bool = False) -> Any:
    """A DuckDB connection bounded to ``memory_limit``, spilling larger intermediates to ``spill_dir``."""
    import duckdb

    spill_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    _bound(con, memory_limit, spill_dir)
    con.execute("SET preserve_insertion_order = false")
    return con


def _bound(con: Any, memory_limit: str, spill_dir: Path) -> None:
    """Cap ``con``'s memory at ``memory_limit``; beyond it DuckDB spills to ``spill_dir``."""
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{spill_dir.as_posix()}'")


@contextlib.contextmanager
def registered(con: Any, name: str, table: Any) -> Iterator[None]:
    """``table`` (a pyarrow Table, or a dict of columns) visible to ``con``'s SQL as ``name`` for the block."""
    import pyarrow as pa

    con.register(name, pa.table(table) if isinstance(table, dict) else table)
    try:
        yield
    finally:
        con.unregister(name)


def store_version(con: Any) -> str:
    """The schema version of the store behind ``con`` (``store-v1`` stores have no ``store_meta`` table)."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "store_meta" in tables:
        row = con.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()
        return str(row[0]) if row else "unknown"
    if {"documents", "runs"} <= tables:
        row = con.execute("SELECT any_value(schema_version) FROM runs").fetchone()
        return str(row[0]) if row and row[0] else "store-v1"
    raise StoreError("not a curate store: it has no documents and runs tables")


def _connect_checked(path: Path, read_only: bool) -> Any:
    import duckdb

    if not path.is_file():
        raise StoreError(f"{path.parent if path.name == STORE_FILE else path} is not a curate store: {path} is missing")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise StoreError(f"the store {path} is being written by another process ({_holder(path.parent)})") from None
        raise StoreError(f"{path} is not a curate store ({e})") from None
    except duckdb.Error as e:
        raise StoreError(f"{path} is not a curate store ({e})") from None
    try:
        version = store_version(con)
    except (StoreError, duckdb.Error) as e:
        con.close()
        raise StoreError(f"{path} is not a curate store ({e})") from None
    if version != SCHEMA_VERSION:
        con.close()
        raise StoreError(
            f"the store {path.parent} has schema {version}; this curate reads and writes {SCHEMA_VERSION}: "
            f"upgrade it with `curate migrate --store {path.parent}`"
        )
    return con


def open_store(store: Path, read_only: bool = True) -> Any:
    """Open a store (its folder, or its ``provenance.duckdb``) for queries: a DuckDB connection.

    Raises:
        StoreError: the path is not a curate store, is being written by another process, or has an older
            schema (the message names both versions and the command that migrates).
    """
    return _connect_checked(store_file(store), read_only)


def _holder(folder: Path) -> str:
    try:
        return (folder / LOCK_FILE).read_text(encoding="utf-8").strip() or "holder unknown"
    except OSError:
        return "holder unknown"


@contextlib.contextmanager
def store_lock(store: Path, command: str) -> Iterator[None]:
    """Hold the store's write lock for the block: one writer at a time. The lock is an OS file lock on
    ``STORE/LOCK``, so it dies with its process; the file names the holder for the message others get.

    Raises:
        StoreError: another process holds the lock (the message names it).
    """
    folder = Path(store)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"the store {folder} is locked by another curate process ({_holder(folder)}); wait for it to finish"
            ) from None
        info = (
            f"pid {os.getpid()} on {socket.gethostname()}: {command} since {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%SZ}"
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def create_tables(con: Any) -> None:
    """Create every table of the current schema in an empty database and record its version."""
    con.execute(ddl("documents", DOCUMENT_COLUMNS, primary_key="doc_id"))
    con.execute(ddl("texts", TEXT_COLUMNS, primary_key="doc_id"))
    con.execute(ddl("license_evidence", EVIDENCE_COLUMNS))
    con.execute(ddl("optout_evidence", OPTOUT_COLUMNS))
    for stmt in STORE_TABLES_DDL:
        con.execute(stmt)
    con.execute("INSERT INTO store_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])


def connect_for_writing(store: Path, *, memory_limit: str = "2GB", create: bool = False) -> Any:
    """A read-write connection to the store in folder ``store``; ``create``: make the store when it does not
    exist (ingest), else that is an error. The caller holds :func:`store_lock`.

    Raises:
        StoreError: the folder holds something that is not a curate store, or a store of another schema.
    """
    path = store_file(store)
    if not path.exists() and not create:
        raise StoreError(f"{Path(store)} is not a curate store: {path} is missing (a store is made by curate ingest)")
    if not path.exists():
        folder = Path(store)
        if folder.exists() and any(p.name not in (LOCK_FILE, WORK_DIR) for p in folder.iterdir()):
            stray = sorted(p.name for p in folder.iterdir() if p.name not in (LOCK_FILE, WORK_DIR))
            raise StoreError(f"{folder} is not a curate store (it holds {', '.join(stray[:3])} but no {STORE_FILE})")
        con = duckdb_connect(path, memory_limit=memory_limit, spill_dir=folder / WORK_DIR / "duckdb-tmp")
        con.execute("BEGIN")
        create_tables(con)
        con.execute("COMMIT")
        return con
    con = _connect_checked(path, read_only=False)
    _bound(con, memory_limit, Path(store) / WORK_DIR / "duckdb-tmp")
    return con


@contextlib.contextmanager
def transaction(con: Any) -> Iterator[Any]:
    """All of the block's writes, or none of them."""
    con.execute("BEGIN")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def known_inputs(con: Any) -> dict[str, dict[str, Any]]:
    """Every input file the store holds, by base name: its path, size and SHA-256 as recorded at ingest (the
    first ingest that read it; an input no ingest could read has ``sha256`` None)."""
    out: dict[str, dict[str, Any]] = {}
    for run_id, inputs_json in con.execute("SELECT run_id, inputs_json FROM runs ORDER BY started_at").fetchall():
        for entry in json.loads(inputs_json or "[]"):
            name = Path(str(entry["path"])).name
            if name not in out or (not out[name].get("sha256") and entry.get("sha256")):
                out[name] = {**entry, "run_id": run_id}
    return out


LOAD_PART_BYTES = 64 * 2**20  # compressed shard bytes behind one sorted insert of the load (bounds its sort)


def doc_id_ranges(n: int) -> list[str]:
    """SQL conditions that split doc_ids (hex digests, :func:`curate.read.warc.make_doc_id`) into ``n`` (at most
    4,096) ascending ranges of about equal size; together they hold every string, so inserting the ranges in
    turn, each ``ORDER BY doc_id``, gives the order of one sort of the whole."""
    n = max(1, min(n, 4096))
    bounds = [f"{i * 65536 // n:04x}" for i in range(1, n)]
    lows = [None, *bounds]
    highs = [*bounds, None]
    return [
        " AND ".join([*([f"doc_id >= '{lo}'"] if lo else []), *([f"doc_id < '{hi}'"] if hi else [])]) or "TRUE"
        for lo, hi in zip(lows, highs, strict=True)
    ]


def load_shards(con: Any, work: Path, *, skip_files: frozenset[str] = frozenset()) -> int:
    """Insert the stage-1 shards under ``work`` into the store (inside the caller's transaction); returns the
    documents added. Rows of input files named in ``skip_files`` (base names) are left out; a shard row whose
    doc_id is already in the store is an error (a second load of the same work). Each table is filled in doc_id
    order by one sorted insert per range of doc_ids (:func:`doc_id_ranges`, one per :data:`LOAD_PART_BYTES` of
    shards), so the sort's memory stays within DuckDB's limit however large the ingest."""
    ingest_cols = ", ".join(c.name for c in INGEST_COLUMNS)
    decided = ", ".join("NULL" for _ in DECIDED_COLUMNS)  # set by dedup and decide
    docs = (work / "documents" / "*.parquet").as_posix()
    shards = list((work / "documents").glob("*.parquet"))
    if not shards:
        return 0
    skip = "NOT list_contains(?::VARCHAR[], warc_file_name)"
    dup = con.execute(
        f"""SELECT count(*) FROM read_parquet('{docs}') s JOIN documents d USING (doc_id)
            WHERE NOT list_contains(?::VARCHAR[], s.warc_file_name)""",
        [sorted(skip_files)],
    ).fetchone()[0]
    if dup:
        raise CurateError(f"{dup} documents of {work} are already in the store (was this ingest loaded twice?)")
    before = con.execute("SELECT count(*) FROM documents").fetchone()[0]
    decided_names = ", ".join(c.name for c in DECIDED_COLUMNS)
    inserts = (
        f"INSERT INTO documents ({ingest_cols}, {decided_names}) SELECT {ingest_cols}, {decided} "
        f"FROM read_parquet('{docs}') WHERE {skip} AND {{part}} ORDER BY doc_id",
        f"INSERT INTO texts SELECT doc_id, text FROM read_parquet('{docs}') "
        f"WHERE text IS NOT NULL AND {skip} AND {{part}} ORDER BY doc_id",
        f"""INSERT INTO minhash_signatures SELECT doc_id, minhash FROM read_parquet('{docs}')
            WHERE minhash IS NOT NULL AND {skip} AND {{part}} ORDER BY doc_id""",
        f"""INSERT INTO minhash_bands SELECT doc_id, generate_subscripts(bands, 1) AS band, unnest(bands) AS key FROM (
              SELECT doc_id, bands FROM read_parquet('{docs}') WHERE bands IS NOT NULL AND {skip} AND {{part}})
            ORDER BY doc_id, band""",
    )
    parts = doc_id_ranges(-(-sum(f.stat().st_size for f in shards) // LOAD_PART_BYTES))
    for sql in inserts:  # each table in doc_id order, one range of doc_ids at a time: a sort DuckDB can hold
        for part in parts:
            con.execute(sql.replace("{part}", part), [sorted(skip_files)])
    for table, sub, columns in (
        ("license_evidence", "evidence", EVIDENCE_COLUMNS),
        ("optout_evidence", "optout", OPTOUT_COLUMNS),
    ):
        names = ", ".join(c.name for c in columns)
        if not list((work / sub).glob("*.parquet")):
            continue
        src = (work / sub / "*.parquet").as_posix()
        con.execute(
            f"""INSERT INTO {table} ({names}) SELECT {names} FROM read_parquet('{src}')
                WHERE doc_id IN (SELECT doc_id FROM read_parquet('{docs}') WHERE {skip}) ORDER BY ALL""",
            [sorted(skip_files)],
        )
    return int(con.execute("SELECT count(*) FROM documents").fetchone()[0] - before)


def counts(con: Any) -> RunCounts:
    """Counts of the ``documents`` table by status."""
    row = con.execute(
        f"""SELECT count(*), count(*) FILTER (status = '{Status.KEPT}'), count(*) FILTER (status = '{Status.DROPPED}'),
                  count(*) FILTER (status = '{Status.QUARANTINED}'), count(*) FILTER (status IS NULL) FROM documents"""
    ).fetchone()
    reasons = con.execute(
        "SELECT status, reason, count(*) AS n FROM documents WHERE reason IS NOT NULL GROUP BY ALL ORDER BY n DESC, reason"
    ).fetchall()
    read, kept, dropped, quarantined, pending = row
    return RunCounts(read, kept, dropped, quarantined, tuple((s, r, n) for s, r, n in reasons), pending)


def remove_outputs(paths: list[Path]) -> None:
    """Delete files and folders (a ``--force`` start over)."""
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


@contextlib.contextmanager
def writing(
    store: Path, command: str, *, lock: bool = True, memory_limit: str = "2GB", create: bool = False
) -> Iterator[Any]:
    """A read-write connection to the store for the block, all of whose writes commit together at its end (or
    none, on an error or a kill). ``lock``: take the store's write lock for the block (False when the calling
    command already holds it); ``create``: make the store if there is none (ingest only).

    Raises:
        StoreError: locked by another process, not a curate store, or an older schema.
    """
    if not create and not store_file(store).exists():
        raise StoreError(f"{Path(store)} is not a curate store: {store_file(store)} is missing")
    with store_lock(store, command) if lock else contextlib.nullcontext():
        import duckdb

        con = connect_for_writing(store, memory_limit=memory_limit, create=create)
        try:
            with transaction(con):
                yield con
            con.execute("CHECKPOINT")
        except (duckdb.IOException, duckdb.TransactionException) as e:
            # a full or read-only disk, met while writing or at the commit (DuckDB then says "Failed to commit"):
            # the transaction rolled back; any other transaction error is not about the disk and goes up as it is
            if isinstance(e, duckdb.TransactionException) and "Failed to commit" not in str(e):
                raise
            raise StoreError(
                f"cannot write the store {store_file(store)}: {e}; it keeps its last committed state"
            ) from None
        finally:
            con.close()
