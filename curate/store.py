"""The provenance store: one DuckDB file per run output, loaded from the per-task Parquet shards.

``build_store`` is the single writer: it creates the tables from the schema module, loads every shard row in
``doc_id`` order (so the same input gives the same table contents), upgrades post-cutoff records whose exact
payload was captured before the cutoff to ``attested``, runs the global dedup and records the run. It writes
to a temporary file and renames it into place, so a crash never leaves a half-built store behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.dedup.cluster import save_signatures
from curate.dedup.minhash import Member, choose_representatives
from curate.recipe import Recipe
from curate.schema import (
    DOCUMENT_COLUMNS,
    EVIDENCE_COLUMNS,
    OPTOUT_COLUMNS,
    RUNS_DDL,
    SCHEMA_VERSION,
    SIGNATURE_DDL,
    TEXT_COLUMNS,
    Reason,
    Status,
    Tier,
    ddl,
)

STORE_NAME = "provenance.duckdb"


@dataclass(frozen=True)
class RunCounts:
    """How the run's records ended; ``read == kept + dropped + quarantined`` always holds."""

    read: int
    kept: int
    dropped: int
    quarantined: int
    by_reason: tuple[tuple[str, str, int], ...] = ()  # (status, reason, count), most frequent first


def duckdb_connect(path: str | Path, *, memory_limit: str, spill_dir: Path) -> Any:
    """A DuckDB connection bounded to ``memory_limit``, spilling larger intermediates to ``spill_dir``."""
    import duckdb

    spill_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{spill_dir.as_posix()}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def open_store(path: Path, read_only: bool = True) -> Any:
    """Open a store for queries (a DuckDB connection)."""
    import duckdb

    return duckdb.connect(str(path), read_only=read_only)


def _create_tables(con: Any) -> None:
    con.execute(ddl("documents", DOCUMENT_COLUMNS, primary_key="doc_id"))
    con.execute(ddl("texts", TEXT_COLUMNS, primary_key="doc_id"))
    con.execute(ddl("license_evidence", EVIDENCE_COLUMNS))
    con.execute(ddl("optout_evidence", OPTOUT_COLUMNS))
    con.execute(RUNS_DDL)
    for stmt in SIGNATURE_DDL:
        con.execute(stmt)


def _load_shards(con: Any, work: Path) -> None:
    cols = ", ".join(c.name for c in DOCUMENT_COLUMNS)
    docs = (work / "documents" / "*.parquet").as_posix()
    con.execute(f"INSERT INTO documents SELECT {cols} FROM read_parquet('{docs}') ORDER BY doc_id")
    con.execute(
        f"INSERT INTO texts SELECT doc_id, text FROM read_parquet('{docs}') WHERE text IS NOT NULL ORDER BY doc_id"
    )
    for table, sub, columns in (
        ("license_evidence", "evidence", EVIDENCE_COLUMNS),
        ("optout_evidence", "optout", OPTOUT_COLUMNS),
    ):
        names = ", ".join(c.name for c in columns)
        src = (work / sub / "*.parquet").as_posix()
        con.execute(f"INSERT INTO {table} SELECT {names} FROM read_parquet('{src}') ORDER BY ALL")


def _resolve_revisits(con: Any) -> None:
    """A revisit whose payload digest matches a response in this input points at it (``reason_detail``)."""
    con.execute(
        f"""
        UPDATE documents SET reason_detail = (
            SELECT min(o.doc_id) FROM documents o
            WHERE o.warc_payload_digest = documents.warc_payload_digest AND o.record_type IN ('response', 'resource')
              AND coalesce(o.payload_digest_ok, true))
        WHERE record_type = 'revisit' AND reason = '{Reason.REVISIT_RECORD.value}' AND warc_payload_digest IN (
            SELECT warc_payload_digest FROM documents WHERE record_type IN ('response', 'resource') AND warc_payload_digest IS NOT NULL)
        """
    )


def _attest(con: Any) -> None:
    """post_cutoff → attested when the same payload digest was captured before the cutoff in this input."""
    con.execute(
        f"""
        UPDATE documents SET tier = '{Tier.ATTESTED.value}'
        WHERE tier = '{Tier.POST_CUTOFF.value}' AND warc_payload_digest IS NOT NULL
          AND coalesce(payload_digest_ok, true)
          AND warc_payload_digest IN (
            SELECT warc_payload_digest FROM documents
            WHERE tier = '{Tier.PRE_CUTOFF.value}' AND coalesce(payload_digest_ok, true))
        """
    )


def _apply_mgt_rule(con: Any, recipe: Recipe) -> str:
    """Drop kept post-cutoff (and, when kept, undated) records by the recipe's MGT rule; returns the rule applied."""
    from curate.score.contamination import reference_percentiles

    r = recipe.score
    subject = f"(tier = '{Tier.POST_CUTOFF.value}'" + (" OR tier IS NULL)" if r.keep_unknown_date else ")")
    kept = f"status = '{Status.KEPT.value}' AND record_type IS NOT NULL AND {subject}"
    n_ref = reference_percentiles(con, r.min_reference)
    if r.rule == "reference" and n_ref >= r.min_reference:
        rule = f"reference: score above the {r.reference_quantile:.2f} quantile of {n_ref} pre-cutoff captures"
        cond = f"mgt_ref_pctl >= {r.reference_quantile}"
    else:
        why = f" (only {n_ref} pre-cutoff captures for a reference)" if r.rule == "reference" else ""
        rule = f"probability: calibrated score >= {r.threshold}{why}"
        cond = f"mgt_score >= {r.threshold}"
    if not r.keep_unscored_post_cutoff:
        con.execute(
            f"UPDATE documents SET status = '{Status.DROPPED.value}', reason = '{Reason.POST_CUTOFF_UNSCORED.value}', reason_detail = mgt_reason WHERE {kept} AND mgt_score IS NULL"
        )
    con.execute(
        f"UPDATE documents SET status = '{Status.DROPPED.value}', reason = '{Reason.MGT_ABOVE_THRESHOLD.value}', reason_detail = ? WHERE {kept} AND mgt_score IS NOT NULL AND {cond}",
        [rule],
    )
    return rule


def _apply_domain_reviews(con: Any, recipe: Recipe) -> None:
    """Reviewer verdicts per domain override page verdicts; each becomes a ``domain-review`` evidence row."""
    from curate.licenses.policy import load_domain_reviews
    from curate.schema import LICENSE_TAGGER_NAME

    if not recipe.license.domain_review:
        return
    for r in load_domain_reviews(Path(recipe.license.domain_review)):
        ids = [
            d
            for (d,) in con.execute(
                "SELECT doc_id FROM documents WHERE domain = ? AND record_type IS NOT NULL ORDER BY doc_id", [r.domain]
            ).fetchall()
        ]
        if not ids:
            continue
        text = f"{r.verdict} by {r.reviewer} on {r.date.isoformat()}" + (f": {r.note}" if r.note else "")
        con.executemany(
            "INSERT INTO license_evidence VALUES (?, 'domain-review', ?, ?, 'domain', ?, ?, ?)",
            [
                (
                    d,
                    text,
                    r.license_spdx,
                    "page" if r.verdict == "accept" else "unknown",
                    f"domain {r.domain}",
                    LICENSE_TAGGER_NAME,
                )
                for d in ids
            ],
        )
        if r.verdict == "accept":
            con.execute(
                """UPDATE documents SET license_spdx = ?, license_scope = 'page', license_confidence = 1.0,
                   license_conflict = false, license_signals = coalesce(license_signals, 0) + 1 WHERE domain = ?""",
                [r.license_spdx, r.domain],
            )
        elif r.verdict == "reject":
            con.execute(
                """UPDATE documents SET license_scope = 'unknown', license_confidence = 0.0,
                   license_signals = coalesce(license_signals, 0) + 1 WHERE domain = ? AND license_spdx IS NOT NULL""",
                [r.domain],
            )


def _apply_policy(con: Any, recipe: Recipe) -> None:
    """Drop kept documents the recipe's licence policy excludes (reason ``license_policy``)."""
    from curate.licenses.policy import get_policy

    policy = get_policy(recipe.license.policy)
    rows = con.execute(
        f"SELECT doc_id, license_spdx, license_scope, license_conflict FROM documents WHERE status = '{Status.KEPT.value}'"
    ).fetchall()
    excluded = [(d,) for d, spdx, scope, conflict in rows if not policy.admits(spdx, scope, conflict)]
    if not excluded:
        return
    con.executemany(
        f"UPDATE documents SET status = '{Status.DROPPED.value}', reason = '{Reason.LICENSE_POLICY.value}', reason_detail = '{policy.name}' WHERE doc_id = ?",
        excluded,
    )


def _dedup(con: Any, work: Path, recipe: Recipe) -> None:
    """Cluster this run's documents, pick representatives, drop the rest as ``duplicate_of``; then drop new
    documents that duplicate a kept document of a ``dedup.against`` store."""
    import pyarrow as pa

    from curate.dedup.cluster import cluster_documents, matches_in_old_store, split_chains

    d = recipe.dedup
    params = recipe.dedup_params
    roots = (
        cluster_documents(
            con,
            work,
            threshold=d.threshold,
            num_perm=d.num_perm,
            ngram=d.ngram,
            verify=d.verify,
            exact=d.exact,
            near=d.near,
        )
        if (d.exact or d.near)
        else {}
    )
    rows = con.execute(
        "SELECT doc_id, status, warc_date, license_scope, text_chars, text_hash FROM documents WHERE text_hash IS NOT NULL ORDER BY doc_id"
    ).fetchall()
    members = [
        Member(r[0], r[1] == Status.KEPT.value, r[2], r[3] == "page", r[4] or 0, r[5]) for r in rows if r[0] in roots
    ]
    chosen = split_chains(
        con,
        work,
        choose_representatives(members, roots),
        threshold=d.threshold,
        num_perm=d.num_perm,
        verify=d.verify,
        ngram=d.ngram,
    )
    old: dict[str, tuple[str, str]] = {}
    for store in d.against:  # an earlier, released corpus always represents
        for new_id, match in matches_in_old_store(
            con, work, store, params, threshold=d.threshold, verify=d.verify
        ).items():
            old.setdefault(new_id, match)
    if old:
        for doc_id, (rep, size, kind) in list(chosen.items()):  # a cluster whose representative is old points at it
            if rep in old:
                chosen[doc_id] = (old[rep][0], size + 1, kind if kind != "self" else old[rep][1])
        for new_id, (old_id, kind) in old.items():
            if new_id not in chosen:
                chosen[new_id] = (old_id, 2, kind)
    if not chosen:
        return
    table = pa.table(
        {
            "doc_id": list(chosen),
            "rep": [v[0] for v in chosen.values()],
            "size": [v[1] for v in chosen.values()],
            "kind": [v[2] for v in chosen.values()],
        }
    )
    con.register("dedup_result", table)
    con.execute(
        """
        UPDATE documents SET dup_cluster_id = r.rep, dup_cluster_size = r.size,
               dup_kind = CASE WHEN r.kind = 'self' THEN NULL ELSE r.kind END
        FROM dedup_result r WHERE documents.doc_id = r.doc_id
        """
    )
    con.execute(
        f"""
        UPDATE documents SET status = '{Status.DROPPED.value}', reason = '{Reason.DUPLICATE_OF.value}',
               reason_detail = r.rep
        FROM dedup_result r
        WHERE documents.doc_id = r.doc_id AND r.kind <> 'self' AND documents.status = '{Status.KEPT.value}'
        """
    )
    con.unregister("dedup_result")


def counts(con: Any) -> RunCounts:
    """Counts of the ``documents`` table by status."""
    row = con.execute(
        """SELECT count(*), count(*) FILTER (status = 'kept'), count(*) FILTER (status = 'dropped'),
                  count(*) FILTER (status = 'quarantined') FROM documents"""
    ).fetchone()
    reasons = con.execute(
        "SELECT status, reason, count(*) AS n FROM documents WHERE reason IS NOT NULL GROUP BY ALL ORDER BY n DESC, reason"
    ).fetchall()
    read, kept, dropped, quarantined = row
    return RunCounts(read, kept, dropped, quarantined, by_reason=tuple((s, r, n) for s, r, n in reasons))


def _inventory(work: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    folder = work / "inputs"
    for name in sorted(os.listdir(folder)) if folder.exists() else []:
        out.extend(json.loads((folder / name).read_text(encoding="utf-8")))
    return sorted(out, key=lambda e: str(e["path"]))


def build_store(
    work: Path, store_path: Path, recipe: Recipe, *, run_id: str, versions: dict[str, str], started_at: dt.datetime
) -> RunCounts:
    """Load the shards under ``work`` into a new store at ``store_path`` and return the run's counts.

    Raises:
        CurateError: the counts do not reconcile (a bug, never expected).
    """

    from curate.errors import CurateError

    tmp = store_path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb_connect(tmp, memory_limit=recipe.executor.duckdb_memory, spill_dir=work / "duckdb-tmp")
    try:
        _create_tables(con)
        _load_shards(con, work)
        _resolve_revisits(con)
        _attest(con)
        mgt_rule = _apply_mgt_rule(con, recipe)
        _apply_domain_reviews(con, recipe)
        _apply_policy(con, recipe)
        _dedup(con, work, recipe)
        save_signatures(con, work)
        c = counts(con)
        if c.read != c.kept + c.dropped + c.quarantined:
            raise CurateError(f"store does not reconcile: read={c.read} != kept+dropped+quarantined")
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                SCHEMA_VERSION,
                started_at,
                dt.datetime.now(dt.UTC),
                recipe.name,
                recipe.version,
                recipe.source,
                json.dumps(versions, sort_keys=True),
                json.dumps(_inventory(work), sort_keys=True),
                c.read,
                c.kept,
                c.dropped,
                c.quarantined,
                mgt_rule,
            ],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, store_path)
    return c
