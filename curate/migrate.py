"""Upgrading a store written by an older curate, in place and all or nothing.

``store-v3`` → ``store-v4`` (site-level MGT evidence; the shipped MGT reference and the pre-cutoff extreme-score
rule):

- ``site_scores`` is created empty: the next ``curate decide`` fills it from the store.
- The recipes recorded with every ingest and decision gain the v4 ``[score]`` keys at the default recipe's values
  (``reference``, ``pre_cutoff_extreme``, ``pre_cutoff_drop``, ``site_*``), so they load again; what those
  decisions did is in their ``mgt_rule`` text, unchanged.

``store-v2`` → ``store-v3`` (the reader records the damage it found in ``flags`` and ``flag_detail``; dates
read as intervals; attestation tables):

- ``documents`` is rebuilt in the v3 column order with ``flags`` and ``flag_detail`` NULL: the older reader did
  not examine records for that damage, and nothing is invented for it. Re-ingest the WARCs into a new store
  to have them examined. ``date_rule``, ``warc_date_from`` and ``warc_date_until`` are NULL too (the older
  reader read no intervals). ``attest_passes`` and ``attestation_evidence`` are created empty.
  ``charset_source`` keeps the older reader's values (``declared``, ``meta``, ``detected``, ``fallback``).
- The recipes recorded with every ingest and decision gain ``read.truncated = "keep"``, which is what those
  passes did with truncated records, and any other key this version added at the default recipe's value, so
  they load again (their ``recipe_digest`` stays the digest of the recipe as applied).
- ``runs`` and ``decisions`` keep the schema version that wrote each row.

``store-v1`` (one sealed run per store) is brought to v2 as follows and then to v3 like a v2 store:

- ``documents`` is rebuilt in the v2 column order. What v1 found while reading (its quarantine and read-time
  drop reasons) becomes ``ingest_reason``; the licence verdict v1 stored becomes the tagger's verdict
  (``tagged_license_*``; v1 had already applied any domain review to it, and its ``domain-review`` evidence
  rows are kept); v1's statuses stand as decision 1 until the next ``curate decide``.
- MinHash signatures and band keys are computed for every text (v1 kept them for kept documents only), with
  the parameters v1 recorded, so the next ``curate dedup`` matches the whole store.
- The v1 run becomes the store's first ingest (``runs`` is unchanged) and its first decision.

The upgrade works on a copy and renames it over the original when complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

from curate.dedup.minhash import MinHasher, band_keys
from curate.errors import StoreError
from curate.recipe import ingest_settings, recipe_from_source
from curate.resources import DEFAULT_RECIPE
from curate.schema import DOCUMENT_COLUMNS, INGEST_REASONS, OPTOUT_COLUMNS, SCHEMA_VERSION, STORE_TABLES_DDL, ddl
from curate.store import STORE_FILE, registered, store_file, store_lock, store_version

V1_PARAMS = re.compile(r"perm=(\d+),ngram=(\d+),bands=(\d+)x(\d+),seed=(\d+)")

# documents columns that store-v1 and store-v2 did not have: NULL in migrated rows (never examined)
V3_COLUMNS = {
    "flags": "NULL::VARCHAR[]",
    "flag_detail": "NULL::VARCHAR",
    # the interval reading of malformed dates is a v3 reader's: re-ingest to have it
    "date_rule": "NULL::VARCHAR",
    "warc_date_from": "NULL::TIMESTAMPTZ",
    "warc_date_until": "NULL::TIMESTAMPTZ",
    "http_last_modified": "NULL::TIMESTAMPTZ",
}
# What stores before v3 did where a key added since is a choice: truncated records were kept; near duplicates
# were word 5-gram shingles of the old normalisation (scheme words-v1).
V3_RECIPE_KEYS = {"read": {"truncated": "keep"}, "dedup": {"scheme": "words-v1", "containment": 0.5}}


def _v1_recipe_source(source: str) -> str:
    """A v1 recipe (JSON) in v2 terms: ``dedup.against`` is gone, ``dedup.seed`` was the top-level seed."""
    data = json.loads(source)
    dedup = data.setdefault("dedup", {})
    dedup.pop("against", None)
    dedup.setdefault("seed", data.get("seed", 1234))
    return _v3_recipe_source(json.dumps(data, sort_keys=True, default=str))


def _fill(data: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Add to ``data`` (in place) the keys of ``defaults`` it lacks, table by table; what it has stays."""
    for key, value in defaults.items():
        if key not in data:
            data[key] = value
        elif isinstance(value, dict) and isinstance(data[key], dict):
            _fill(data[key], value)


def _v3_recipe_source(source: str) -> str:
    """A recorded recipe (JSON) with the keys store-v3 added: set to what older curates did where that is a
    choice (:data:`V3_RECIPE_KEYS`), else to the default recipe's values (settings that change nothing the
    store records, such as batch sizes), so the recorded recipe loads again."""
    data = json.loads(source)
    _fill(data, V3_RECIPE_KEYS)
    _fill(data, tomllib.loads(DEFAULT_RECIPE.read_text(encoding="utf-8")))
    return json.dumps(data, sort_keys=True, default=str)


def _documents_v2(con: Any) -> None:
    ingest = ", ".join(f"'{r}'" for r in INGEST_REASONS)
    mapping = {
        "ingest_reason": f"CASE WHEN reason IN ({ingest}) THEN reason END",
        "ingest_detail": f"CASE WHEN reason IN ({ingest}) THEN reason_detail END",
        "tagged_license_spdx": "license_spdx",
        "tagged_license_scope": "license_scope",
        "tagged_license_confidence": "license_confidence",
        "tagged_license_conflict": "license_conflict",
        "decision_id": "1",
        "dedup_pass": "NULL",
        **V3_COLUMNS,
    }
    _rebuild_documents(con, mapping, "v1")


def _rebuild_documents(con: Any, fill: dict[str, str], was: str) -> None:
    """Rebuild ``documents`` with this version's columns (:data:`DOCUMENT_COLUMNS`, in order): a column named in
    ``fill`` takes that SQL expression, any other is copied from the old table, which must have it.

    Raises:
        StoreError: the old table lacks a column that ``fill`` does not provide.
    """
    have = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'documents'"
        ).fetchall()
    }
    select = []
    for c in DOCUMENT_COLUMNS:
        if c.name in fill:
            select.append(f"{fill[c.name]} AS {c.name}")
        elif c.name in have:
            select.append(c.name)
        else:
            raise StoreError(f"cannot migrate: the {was} documents table has no column {c.name}")
    con.execute(ddl("documents_new", DOCUMENT_COLUMNS, primary_key="doc_id"))
    con.execute(f"INSERT INTO documents_new SELECT {', '.join(select)} FROM documents ORDER BY doc_id")
    con.execute("DROP TABLE documents")
    con.execute("ALTER TABLE documents_new RENAME TO documents")


def _optouts_v2(con: Any) -> None:
    """v2 says what an opt-out reserves (``applies_to``): v1 treated every signal as a text opt-out, except
    ``noimageai`` alone, which v2 reads as an image-only reservation."""
    names = ", ".join(c.name for c in OPTOUT_COLUMNS)
    select = ", ".join(
        "CASE WHEN lower(raw_value) LIKE '%noimageai%' AND NOT regexp_matches(lower(raw_value), '\\bno(ai|ml)\\b') "
        "THEN 'images' ELSE 'text' END"
        if c.name == "applies_to"
        else c.name
        for c in OPTOUT_COLUMNS
    )
    con.execute(ddl("optout_evidence_v2", OPTOUT_COLUMNS))
    con.execute(f"INSERT INTO optout_evidence_v2 ({names}) SELECT {select} FROM optout_evidence ORDER BY ALL")
    con.execute("DROP TABLE optout_evidence")
    con.execute("ALTER TABLE optout_evidence_v2 RENAME TO optout_evidence")


def _from_v2(con: Any) -> None:
    """store-v2 → store-v3: ``documents`` gains ``flags``/``flag_detail`` (NULL: not examined), recorded recipes
    gain the v3 keys."""
    _rebuild_documents(con, V3_COLUMNS, "v2")  # the v3 columns are new: no v2 store has them
    _add_tables_and_recipe_keys(con)  # tables v3 added (attestation): empty until their command runs


def _from_v3(con: Any) -> None:
    """store-v3 → store-v4: ``site_scores`` is created (empty until the next ``curate decide``); recorded recipes
    gain the v4 keys at their defaults."""
    _add_tables_and_recipe_keys(con)


def _add_tables_and_recipe_keys(con: Any) -> None:
    """The last step of every upgrade: create the store tables the store lacks (empty until their command runs),
    give the recorded recipes the keys they lack (at their defaults) and stamp the current schema version."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    for stmt in STORE_TABLES_DDL:
        if stmt.split()[2] not in tables:
            con.execute(stmt)
    for table, key in (("runs", "run_id"), ("decisions", "decision_id")):
        rows = con.execute(f"SELECT {key}, recipe_toml FROM {table} WHERE recipe_toml IS NOT NULL").fetchall()
        con.executemany(
            f"UPDATE {table} SET recipe_toml = ? WHERE {key} = ?", [(_v3_recipe_source(src), k) for k, src in rows]
        )
    con.execute("UPDATE store_meta SET value = ? WHERE key = 'schema_version'", [SCHEMA_VERSION])


def _signatures(con: Any, params_name: str) -> None:
    import pyarrow as pa

    m = V1_PARAMS.search(params_name)
    if m is None:
        raise StoreError(f"cannot migrate: unreadable dedup parameters {params_name!r} in the v1 run")
    num_perm, ngram, bands, rows, seed = map(int, m.groups())
    hasher = MinHasher(num_perm, ngram, seed)
    con.execute("DELETE FROM minhash_signatures")
    con.execute("DELETE FROM minhash_bands")
    ids, sigs, band_rows = [], [], []
    for doc_id, text in con.execute("SELECT doc_id, text FROM texts ORDER BY doc_id").fetchall():
        sig = hasher.signature(text or "")
        if sig is None:
            continue
        ids.append(doc_id)
        sigs.append(sig.tolist())
        band_rows += [(doc_id, i + 1, k) for i, k in enumerate(band_keys(sig, bands, rows))]
    with registered(con, "sigs", {"doc_id": ids, "minhash": pa.array(sigs, type=pa.list_(pa.uint32()))}):
        con.execute("INSERT INTO minhash_signatures SELECT * FROM sigs")
    bnds = {
        "doc_id": [r[0] for r in band_rows],
        "band": pa.array([r[1] for r in band_rows], type=pa.int32()),
        "key": pa.array([r[2] for r in band_rows], type=pa.uint64()),
    }
    with registered(con, "bnds", bnds):
        con.execute("INSERT INTO minhash_bands SELECT * FROM bnds")


def _from_v1(con: Any) -> None:
    run = con.execute(
        """SELECT run_id, started_at, finished_at, recipe_name, recipe_version, recipe_toml, versions_json,
                  n_read, n_kept, n_dropped, n_quarantined, mgt_rule FROM runs ORDER BY started_at LIMIT 1"""
    ).fetchone()
    if run is None:
        raise StoreError("cannot migrate: the v1 store has no run")
    for stmt in STORE_TABLES_DDL:
        table = stmt.split()[2]
        if table not in ("runs", "minhash_signatures", "minhash_bands"):
            con.execute(stmt)
    source = _v1_recipe_source(run[5])
    con.execute("UPDATE runs SET recipe_toml = ?, schema_version = ?", [source, SCHEMA_VERSION])
    con.execute("ALTER TABLE runs DROP COLUMN mgt_rule")  # a decision's, in v2: moved to decisions
    recipe = recipe_from_source(source)
    _documents_v2(con)
    _optouts_v2(con)
    _signatures(con, json.loads(run[6]).get("dedup_params", ""))
    reasons = con.execute(
        "SELECT status, reason, count(*) AS n FROM documents WHERE reason IS NOT NULL GROUP BY ALL ORDER BY n DESC, reason"
    ).fetchall()
    con.execute(
        "INSERT INTO decisions VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            SCHEMA_VERSION,
            run[1],
            run[2],
            run[3],
            run[4],
            recipe.digest,
            source,
            recipe.cutoff,
            run[11],
            run[7],
            run[8],
            run[9],
            run[10],
            json.dumps([list(r) for r in reasons]),
        ],
    )
    con.execute("INSERT INTO store_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
    con.execute(
        "INSERT INTO store_meta VALUES ('ingest_settings', ?)",
        [json.dumps(ingest_settings(recipe), sort_keys=True, default=str)],
    )


def migrate(store: Path) -> tuple[str, str]:
    """Upgrade the store in folder ``store`` to the current schema; returns (version before, version after).

    Raises:
        StoreError: not a curate store, locked by another process, or a version this code cannot upgrade.
    """
    import duckdb

    path = store_file(store)
    folder = path.parent
    if not path.is_file():
        raise StoreError(f"{folder} is not a curate store: {path} is missing")
    with store_lock(folder, "curate migrate"):
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as e:
            raise StoreError(f"{path} is not a curate store ({e})") from None
        try:
            before = store_version(con)
        finally:
            con.close()
        if before == SCHEMA_VERSION:
            return before, before
        if before not in ("store-v1", "store-v2", "store-v3"):
            raise StoreError(
                f"{folder} has schema {before}; this curate can upgrade store-v1, store-v2 and store-v3 to "
                f"{SCHEMA_VERSION} only"
            )
        tmp = folder / f".{STORE_FILE}.migrating"
        tmp.unlink(missing_ok=True)
        shutil.copyfile(path, tmp)
        con = duckdb.connect(str(tmp))
        try:
            con.execute("BEGIN")
            if before == "store-v1":
                _from_v1(con)  # straight to the current documents layout
            elif before == "store-v2":
                _from_v2(con)  # the v3 documents layout, and every table v3 and v4 added
            else:
                _from_v3(con)
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        except BaseException:
            con.close()
            tmp.unlink(missing_ok=True)
            raise
        con.close()
        os.replace(tmp, path)
    return before, SCHEMA_VERSION
