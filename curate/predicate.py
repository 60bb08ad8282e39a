"""SQL that users write (a mix bucket's ``where``), checked and run so it can only read the store.

A predicate must be one boolean expression over the columns of ``documents``: it is parsed by DuckDB's own
parser, and refused when it is more than one statement, holds a subquery or a table function, or names a
column the store does not have. It is then evaluated on a connection opened read-only with external access
disabled (no files, no other databases, no ``ATTACH``, no ``COPY``), so even a predicate the checks missed
cannot reach anything but the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.schema import DOCUMENT_COLUMNS, ddl

FORBIDDEN = {"SUBQUERY": "a subquery", "TABLE_FUNCTION": "a table function", "BASE_TABLE": "a table"}


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def sandboxed(store_file: Path | None = None) -> Any:
    """A DuckDB connection that cannot touch files or other databases: an in-memory database that attaches the
    store read-only (when ``store_file`` is given) as its default schema, then disables external access and
    locks its configuration. It is an instance of its own, so it coexists with other open connections to the
    store in the same process."""
    import duckdb

    con = duckdb.connect()
    if store_file is not None:
        path = str(store_file).replace("'", "''")
        con.execute(f"ATTACH '{path}' AS store (READ_ONLY)")
        con.execute("USE store")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def check_predicate(where: str, what: str) -> None:
    """Refuse ``where`` unless it is one boolean expression over the columns of ``documents``.

    Raises:
        ConfigError: naming ``what`` (e.g. ``mix bucket 'x'``), the problem, and the columns when one is unknown.
    """
    con = sandboxed()
    try:
        sql = f"SELECT doc_id FROM documents WHERE ({where})"
        try:
            statements = con.extract_statements(sql)
        except Exception as e:  # noqa: BLE001 - the parser's own error, reported as a recipe error
            raise ConfigError(f"{what}: its where clause is not valid SQL: {e}") from None
        if len(statements) != 1:
            raise ConfigError(f"{what}: its where clause must be one expression, not {len(statements)} statements")
        parsed = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
        if parsed.get("error"):
            raise ConfigError(f"{what}: its where clause is not a plain expression: {parsed.get('error_message')}")
        clause = parsed["statements"][0]["node"].get("where_clause")
        for node in _nodes(clause):
            kinds = [k for k in (node.get("class"), node.get("type")) if k in FORBIDDEN]
            if kinds:
                found = FORBIDDEN[str(kinds[0])]
                raise ConfigError(f"{what}: its where clause may only compare the store's columns; it holds {found}")
        con.execute(ddl("documents", DOCUMENT_COLUMNS))
        try:
            con.execute(f"{sql} LIMIT 0").fetchall()
        except Exception as e:  # noqa: BLE001 - DuckDB's binder error, e.g. an unknown column
            names = ", ".join(c.name for c in DOCUMENT_COLUMNS)
            raise ConfigError(f"{what}: its where clause does not run on the store ({e}); columns: {names}") from None
    finally:
        con.close()
