"""Questions a person asks of a store at the terminal: a summary, any read-only SQL, one document in full.

Everything here reads the store through a sandboxed connection (read-only, no files, no other databases), so
a query can only read; results come back as (columns, rows) for the command line to print.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import ConfigError, StoreError
from curate.predicate import sandboxed
from curate.store import open_store, store_file

ALLOWED_STATEMENTS = ("SELECT", "EXPLAIN")


@dataclass(frozen=True)
class Table:
    """A titled result: column names and rows."""

    title: str
    columns: list[str]
    rows: list[tuple[Any, ...]]


def _table(con: Any, title: str, sql: str, params: list[Any] | None = None) -> Table:
    cur = con.execute(sql, params or [])
    return Table(title, [d[0] for d in cur.description], cur.fetchall())


def _reader(store: Path) -> Any:
    """A sandboxed read-only connection to the store, after checking it is a store of this schema.

    Raises:
        StoreError: not a store, an older schema, or being written by another process.
    """
    open_store(store).close()
    return sandboxed(store_file(store))


def summary(store: Path) -> list[Table]:
    """The store at a glance: records by status and reason, tiers, ingests, dedup passes, decisions, languages,
    licences, domains."""
    con = _reader(store)
    try:
        return [
            _table(
                con,
                "records by status and reason",
                "SELECT coalesce(status, 'undecided') AS status, reason, count(*) AS records FROM documents "
                "GROUP BY ALL ORDER BY records DESC, status, reason",
            ),
            _table(
                con,
                "tiers",
                "SELECT coalesce(tier, 'unknown: ' || coalesce(date_reason, 'no record')) AS tier, count(*) AS records, "
                "count(*) FILTER (status = 'kept') AS kept FROM documents GROUP BY 1 ORDER BY 2 DESC",
            ),
            _table(
                con,
                "ingests",
                "SELECT run_id, finished_at, json_array_length(inputs_json) AS files, n_read AS records, "
                "n_quarantined AS quarantined FROM runs ORDER BY finished_at",
            ),
            _table(
                con,
                "dedup passes",
                "SELECT pass_id, finished_at, n_new AS new_documents, n_edges AS new_pairs, n_clustered AS clustered "
                "FROM dedup_passes ORDER BY pass_id",
            ),
            _table(
                con,
                "decisions",
                "SELECT decision_id, finished_at, recipe_name, cutoff, n_kept AS kept, n_dropped AS dropped, "
                "n_quarantined AS quarantined, mgt_rule FROM decisions ORDER BY decision_id",
            ),
            _table(
                con,
                "languages (top 10)",
                "SELECT coalesce(language, 'unknown') AS language, count(*) AS records, "
                "count(*) FILTER (status = 'kept') AS kept FROM documents WHERE record_type IS NOT NULL "
                "GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
            ),
            _table(
                con,
                "licences of kept documents",
                "SELECT coalesce(license_spdx, 'none found') AS license, coalesce(license_scope, '-') AS scope, "
                "count(*) AS kept FROM documents WHERE status = 'kept' GROUP BY ALL ORDER BY kept DESC",
            ),
            _table(
                con,
                "domains (top 10 by kept documents)",
                "SELECT domain, count(*) FILTER (status = 'kept') AS kept, count(*) AS records FROM documents "
                "WHERE domain IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 3 DESC, 1 LIMIT 10",
            ),
        ]
    finally:
        con.close()


def query(store: Path, sql: str, *, timeout_s: float = 60.0, limit: int | None = None) -> Table:
    """Run one read-only SQL statement on the store.

    Only SELECT (and EXPLAIN) statements are run, on a connection that is read-only and cannot reach files or
    other databases; a statement still running after ``timeout_s`` seconds is interrupted.

    Raises:
        StoreError: not a store.
        ConfigError: not a single SELECT, invalid SQL, a forbidden operation, or over the time limit.
    """
    con = _reader(store)
    try:
        try:
            statements = con.extract_statements(sql)
        except Exception as e:  # noqa: BLE001 - the parser's message is the user's answer
            raise ConfigError(f"not valid SQL: {e}") from None
        if len(statements) != 1:
            raise ConfigError(f"one statement at a time, got {len(statements)}")
        kind = str(statements[0].type).rsplit(".", 1)[-1]
        if kind not in ALLOWED_STATEMENTS:
            raise ConfigError(f"only SELECT queries run here (the store is read-only), got {kind}")
        timer = threading.Timer(timeout_s, con.interrupt)
        timer.start()
        try:
            cur = con.execute(sql)
            rows = cur.fetchmany(limit) if limit is not None else cur.fetchall()
        except Exception as e:  # noqa: BLE001 - DuckDB's error (binder, permission, interrupt) as a message
            if not timer.is_alive():
                raise ConfigError(f"the query ran past its time limit of {timeout_s:g} s and was stopped") from None
            raise ConfigError(f"the query failed: {e}") from None
        finally:
            timer.cancel()
        return Table("query", [d[0] for d in cur.description], rows)
    finally:
        con.close()


def show(store: Path, doc_id: str) -> list[Table]:
    """One document in full: the row, its text's start, tier evidence, licence and opt-out evidence, its
    duplicate cluster and what represents it.

    Raises:
        StoreError: not a store, or no document with this id.
    """
    con = _reader(store)
    try:
        return document_tables(con, doc_id, str(store))
    finally:
        con.close()


def document_tables(con: Any, doc_id: str, where: str = "the store") -> list[Table]:
    """The tables of :func:`show`, from an open connection to a store.

    Raises:
        StoreError: no document with this id.
    """
    doc = _table(con, "document", "SELECT * FROM documents WHERE doc_id = ?", [doc_id])
    if not doc.rows:
        raise StoreError(f"no document {doc_id!r} in {where}")
    fields = Table("document", ["field", "value"], list(zip(doc.columns, doc.rows[0], strict=True)))
    return [
        fields,
        _table(
            con,
            "text (first 500 characters)",
            "SELECT left(text, 500) AS text FROM texts WHERE doc_id = ?",
            [doc_id],
        ),
        _table(
            con,
            "capture-time evidence: the same payload captured elsewhere in the store",
            """SELECT o.doc_id, o.warc_date, o.tier, o.url, o.warc_file_name, o.record_offset FROM documents d
               JOIN documents o ON o.warc_payload_digest = d.warc_payload_digest AND o.doc_id <> d.doc_id
               WHERE d.doc_id = ? ORDER BY o.warc_date NULLS LAST, o.doc_id""",
            [doc_id],
        ),
        _table(
            con,
            "licence evidence",
            "SELECT kind, raw_value, spdx_id, location, scope, snippet FROM license_evidence WHERE doc_id = ? ORDER BY ALL",
            [doc_id],
        ),
        _table(
            con,
            "opt-out evidence",
            "SELECT kind, raw_value, agent, observed_at, source FROM optout_evidence WHERE doc_id = ? ORDER BY ALL",
            [doc_id],
        ),
        _table(
            con,
            "site-level MGT evidence: the site's post-cutoff pages against its own pre-cutoff pages",
            """SELECT s.domain, s.n_post, s.n_pre, s.pre_median, s.post_median, s.shift_auc, s.shift_p,
                      s.post_flagged, s.evidence
               FROM documents d JOIN site_scores s USING (domain) WHERE d.doc_id = ?""",
            [doc_id],
        ),
        _table(
            con,
            "duplicate cluster (anchored at its earliest capture)",
            """SELECT m.doc_id, m.warc_date, m.dup_kind, m.status, m.reason, m.reason_detail FROM documents d
               JOIN documents m ON m.dup_cluster_id = d.dup_cluster_id WHERE d.doc_id = ?
               ORDER BY m.warc_date NULLS LAST, m.doc_id""",
            [doc_id],
        ),
        _table(
            con,
            "mixes that hold it",
            """SELECT m.mix_id, m.out, m.created_at, md.entries, md.tokens FROM mix_documents md
               JOIN mixes m USING (mix_id) WHERE md.doc_id = ? ORDER BY m.mix_id""",
            [doc_id],
        ),
        _table(
            con,
            "decision",
            """SELECT x.decision_id, x.finished_at, x.recipe_name, x.recipe_digest, x.cutoff, x.mgt_rule
               FROM documents d JOIN decisions x USING (decision_id) WHERE d.doc_id = ?""",
            [doc_id],
        ),
    ]
