"""Regenerate the reference parts of README.md and docs/*.md from the code, so they cannot drift from it.

A page marks each generated part with two HTML comments::

    <!-- generated: NAME -->
    ...rewritten by this script...
    <!-- end generated -->

and everything outside the markers is prose that people write. The parts and where their content comes from:

- ``commands``, ``commands-table``: the Typer app of :mod:`curate.cli` (every command, argument and option with its
  help text, default and the ``Example:`` lines of the command's docstring);
- ``enum:Reason``: :class:`curate.schema.Reason` with its status (:func:`curate.schema.status_for`), the command that
  sets it (``INGEST_REASONS``) and ``REASON_HELP``; ``enum:NAME`` for every other ``StrEnum`` of :mod:`curate.schema`
  (tiers, statuses, the NULL reasons of dates and scores, licence scopes), meanings from ``NAME_HELP`` in the schema
  when it has one, else from :data:`FALLBACK_HELP` below;
- ``store-tables``, ``versions``: every tuple of ``Column`` and every ``CREATE TABLE`` constant of :mod:`curate.schema`,
  and the versioned component names;
- ``recipe-keys``: ``pipelines/default.toml``, keys, defaults and comments, with the commands that read each key;
- ``license-policies``: ``licenses/policies.toml``;
- ``layout``: the first sentence of each module's docstring under ``curate/``;
- ``module:DOTTED.NAME``: a module's docstring after its first line (``module:curate.decide``: the keep rules' order);
- ``run-output`` (README): the summary ``make run`` prints, only refreshed with ``--run-output`` (it runs the
  pipeline on the bundled sample, about a minute).

Run it after changing the CLI, the schema, the default recipe or the package layout::

    python docs/build.py                # rewrite the generated parts
    python docs/build.py --check        # exit 1 if a page is out of date (what tests/test_docs.py checks)
    python docs/build.py --run-output   # also re-run `curate run` for the README's example output

Anything the code cannot say yet (a meaning, the commands that read a recipe key) lives in the tables below, and
the script stops with a :class:`DocsError` naming what is missing rather than writing a page that leaves it out.
"""

from __future__ import annotations

import argparse
import ast
import enum
import inspect
import itertools
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PACKAGE = ROOT / "curate"
DEFAULT_RECIPE = ROOT / "pipelines" / "default.toml"

BLOCK = re.compile(r"(<!-- generated: ([\w:.-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)
RUN_OUTPUT = "run-output"


class DocsError(Exception):
    """The docs cannot be generated: something in the code has no documentation yet. The message says what."""


# ---------------------------------------------------------------------------------------------------------------
# What the code does not say yet. Each entry is used only while curate itself has no such text; move it into the
# code (a ``*_HELP`` dict in curate/schema.py, a comment in pipelines/default.toml) and delete it here.
# ---------------------------------------------------------------------------------------------------------------

FALLBACK_HELP: dict[str, dict[str, str]] = {
    "Status": {
        "kept": "in the store with `reason` NULL; the mix's buckets choose from these",
        "dropped": "readable, but not kept; `reason` says why and `reason_detail` adds the value or the related doc_id",
        "quarantined": "the bytes could not be read as a complete record; `reason_detail` has the error and the "
        "byte range skipped",
    },
    "Tier": {
        "pre_cutoff": "WARC-Date before the recipe's cutoff. Hard evidence: the bytes existed then",
        "attested": "captured after the cutoff, but a capture of the same payload digest (verified) was made before "
        "it; that capture is the evidence",
        "post_cutoff": "captured on or after the cutoff with no earlier capture of its payload; kept or not by the "
        "MGT rule and the recipe",
    },
    "ScoreReason": {
        "not_scored": "the record has no text to score (ruled out before scoring, or a non-text record)",
        "too_short_to_score": "fewer than {MIN_WORDS} words after normalisation",
        "not_text": "among the first {TEXT_CHECK_TOKENS} tokens, under {MIN_LETTER_SHARE:.0%} are words of letters, or "
        "over {MAX_JUNK_SHARE:.0%} are control or U+FFFD characters (symbol or digit soup, tables, binary read "
        "as text)",
        "language_out_of_scope": "the classifier does not cover the record's language (the models cover English)",
    },
    "LicenseScope": {
        "page": "a licence for the page's text: rel=license, a licence meta, RDFa/microdata, the page's own JSON-LD, "
        'or a statement in words ("This work is licensed under …", a footer notice, in any of the CC deed '
        "languages); differently licensed images on the page are media exceptions in the evidence",
        "media": "licences found only on media: figure captions, image/map/audio/theme credits, `ImageObject`s",
        "partial": 'a page licence next to a different licence stated for a part of the text ("this section …")',
        "unknown": "only bare licence links or badges, or page signals that conflict (`license_conflict`; the SPDX id "
        "shown is then the most restrictive candidate, every candidate stays evidence)",
    },
}
"""Meanings of enum values, by enum class name, used where curate.schema has no ``<NAME>_HELP`` dict."""

DDL_HELP: dict[str, dict[str, str]] = {
    "store_meta": {
        "key": "`schema_version` (the store's schema), `ingest_settings` (the ingest-time recipe keys every ingest "
        "into this store uses, as JSON)",
        "value": "the value",
    },
    "runs": {
        "run_id": "id of the ingest",
        "schema_version": "store schema version that wrote the row",
        "started_at": "when it started (UTC)",
        "finished_at": "when it finished (UTC)",
        "recipe_name": "the recipe's `name`",
        "recipe_version": "the recipe's `version`",
        "recipe_toml": "the merged recipe as applied (JSON of every key)",
        "versions_json": "versioned names of every component and library that changes outputs",
        "inputs_json": "every input file with its size and SHA-256",
        "n_read": "records read; always `n_kept + n_dropped + n_quarantined`",
        "n_kept": "records kept",
        "n_dropped": "records dropped",
        "n_quarantined": "records quarantined",
        "mgt_rule": "the MGT rule applied when the row was written",
    },
    "decisions": {
        "decision_id": "number of the pass, 1, 2, …; `documents.decision_id` points here",
        "schema_version": "store schema version that wrote the row",
        "started_at": "when it started (UTC)",
        "finished_at": "when it finished (UTC)",
        "recipe_name": "the recipe's `name`",
        "recipe_version": "the recipe's `version`",
        "recipe_digest": "SHA-256 of the merged recipe",
        "recipe_toml": "the merged recipe as applied (JSON of every key)",
        "cutoff": "the cutoff the tiers were computed against",
        "mgt_rule": "the MGT rule applied: `reference` (with its quantile) or the `probability` fallback",
        "n_read": "records in the store; always `n_kept + n_dropped + n_quarantined`",
        "n_kept": "records kept",
        "n_dropped": "records dropped",
        "n_quarantined": "records quarantined",
        "counts_json": "(status, reason, count) triples, most frequent first",
    },
    "dedup_passes": {
        "pass_id": "number of the pass, 1, 2, …; `documents.dedup_pass` and `dup_edges.pass_id` point here",
        "started_at": "when it started (UTC)",
        "finished_at": "when it finished (UTC)",
        "params": "the versioned MinHash/LSH parameters (permutations, shingle, bands × rows, seed)",
        "verify": "how candidates were confirmed: `signature`, `exact` or `none`",
        "n_new": "documents this pass compared for the first time",
        "n_edges": "verified duplicate pairs it added",
        "n_clustered": "documents in a cluster after the pass",
    },
    "dup_edges": {
        "a": "doc_id of one document of the pair",
        "b": "doc_id of the other",
        "kind": "`exact` or `near`",
        "pass_id": "the dedup pass that found the pair",
    },
    "minhash_signatures": {
        "doc_id": "the document",
        "minhash": "its MinHash signature (32-bit values, `dedup.num_perm` of them)",
    },
    "minhash_bands": {
        "doc_id": "the document",
        "band": "LSH band number",
        "key": "the band's hash key; documents sharing a key are dedup candidates",
    },
}
"""Meanings of the columns of tables that curate.schema defines as SQL text rather than as ``Column`` tuples."""

FOLDER_HELP: dict[str, str] = {
    "read": "reading what the user names: input resolution and the WARC/WET/WAT/ARC reader with coordinates",
    "licenses": "licence, copyright and opt-out evidence, SPDX mapping, site opt-out snapshots, policies and reviews",
    "score": "model-generated-text detection: text rules, classifier kinds, registry, metrics, contamination",
    "dedup": "exact and MinHash-LSH near dedup: parameters, signatures, buckets, clustering",
    "run": "planning and running the datatrove jobs, executors, work folders",
}
"""One line per package folder of curate/ that has no ``__init__.py`` docstring."""

INGEST, DEDUP, DECIDE, MIX, REPORT = "`ingest`", "`dedup`", "`decide`", "`mix`", "`report`"
ALL = "every command (recorded)"
READ_BY: dict[str, tuple[str, ...]] = {
    "name": (ALL,),
    "version": (ALL,),
    "cutoff": (DECIDE, REPORT),
    "seed": (MIX,),
    "executor": (INGEST, DEDUP, MIX),
    "executor.tasks": (INGEST,),
    "executor.gpus_per_task": (INGEST,),
    "executor.workers": (INGEST, DEDUP, MIX),
    "executor.duckdb_memory": (INGEST, DEDUP, DECIDE, MIX),
    "executor.work": (INGEST,),
    "read": (DECIDE,),
    "read.attempts": (INGEST,),
    "read.backoff_s": (INGEST,),
    "extract": (INGEST,),
    "extract.min_chars": (DECIDE,),
    "extract.languages": (DECIDE,),
    "score": (DECIDE,),
    "score.model": (INGEST,),
    "score.device": (INGEST,),
    "score.batch_docs": (INGEST,),
    "optout": (DECIDE,),
    "optout.robots_dir": (INGEST,),
    "optout.tdmrep_dir": (INGEST,),
    "optout.snapshot_date": (INGEST,),
    "license": (DECIDE,),
    "license.policy": (DECIDE, REPORT),
    "dedup": (DEDUP,),
    "dedup.scheme": (INGEST, DEDUP),
    "dedup.threshold": (INGEST, DEDUP),
    "dedup.num_perm": (INGEST, DEDUP),
    "dedup.ngram": (INGEST, DEDUP),
    "dedup.min_recall": (INGEST, DEDUP),
    "dedup.seed": (INGEST, DEDUP),
    "mix": (MIX,),
}
"""Which commands read each recipe key (the longest matching dotted prefix wins); `curate run` reads them all.
Whether a key is fixed at ingest comes from ``curate.recipe.INGEST_KEYS``."""

KEY_HELP: dict[str, str] = {
    "name": "the recipe's name, recorded with every ingest, decision pass and mix",
    "version": "the recipe's version, recorded with its name",
    "seed": "seed of every random choice (MinHash permutations, bucket sampling): same seed, same outputs",
    "score.reference_quantile": "quantile of the pre-cutoff captures' scores above which a post-cutoff record is "
    "dropped (`reference` rule)",
    "score.min_reference": "fewest pre-cutoff English scores for the `reference` rule; below it, `probability`",
    "score.threshold": "calibrated P(model-generated) at or above which a post-cutoff record is dropped "
    "(`probability` rule)",
    "dedup.exact": "drop exact duplicates (normalised-text hash, verified payload digest)",
    "dedup.near": "drop near duplicates (MinHash LSH)",
    "mix.buckets.name": "bucket name: letters, digits, `-` and `_`, unique; the manifest and sidecars name it",
    "mix.buckets.where": "SQL condition over the columns of `documents` (checked before any work)",
    "mix.buckets.weight": "the bucket's share of the mix (weights are normalised to sum to 1, and the manifest says so)",
    "mix.buckets.tokens": "a token target for the bucket, met by seeded sampling within `mix.max_copies`",
}
"""Meanings of recipe keys that have no comment in pipelines/default.toml."""


# ---------------------------------------------------------------------------------------------------------------
# Markdown helpers
# ---------------------------------------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


def prose(text: str, *, cell: bool = False) -> str:
    """Text from a docstring or comment as Markdown: ``rst`` literals become code spans, and outside code spans
    ``<`` and ``*`` are escaped (so ``<host>.txt`` stays visible); in a table cell ``|`` is escaped too."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"``\1``", text)
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    out: list[str] = []
    pos = 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_escape(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_escape(text[pos:]))
    s = "".join(out)
    if cell:
        s = s.replace("|", r"\|").replace("\n", " ")
    return s


def _escape(s: str) -> str:
    return re.sub(r"(?<!\*)\*(?!\*)", r"\*", s.replace("<", "&lt;"))


def code(s: object, *, cell: bool = True) -> str:
    """``s`` as a code span (in a table cell ``|`` is escaped, which GitHub also honours inside code)."""
    text = str(s)
    fence = "``" if "`" in text else "`"
    text = f"{fence}{text}{fence}" if fence == "`" else f"{fence} {text} {fence}"
    return text.replace("|", r"\|") if cell else text


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup removed, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[`*_]|<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def first_sentence(text: str) -> str:
    para = " ".join(text.strip().split("\n\n")[0].split())
    m = re.search(r"(?<=[.!?])\s(?=[A-Z`(])", para)
    return (para[: m.start()] if m else para).rstrip()


# ---------------------------------------------------------------------------------------------------------------
# Commands (the Typer app)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A command of the CLI: its words after ``curate``, the click object, and its context (for usage lines)."""

    path: tuple[str, ...]
    cmd: Any
    ctx: Any

    @property
    def name(self) -> str:
        return " ".join(("curate", *self.path))

    @property
    def is_group(self) -> bool:
        return hasattr(self.cmd, "commands")


def cli_root() -> Command:
    from typer.main import get_command

    from curate.cli import app

    root = get_command(app)
    return Command((), root, root.context_class(root, info_name="curate"))


def commands(parent: Command | None = None) -> Iterator[Command]:
    """Every visible command and group under ``parent`` (the root by default), depth first, in definition order."""
    parent = parent or cli_root()
    for name, cmd in parent.cmd.commands.items():
        if getattr(cmd, "hidden", False):
            continue
        c = Command((*parent.path, name), cmd, cmd.context_class(cmd, info_name=name, parent=parent.ctx))
        yield c
        if c.is_group:
            yield from commands(c)


def leaf_commands() -> list[Command]:
    return [c for c in commands() if not c.is_group]


def params(c: Command) -> list[Any]:
    """The command's visible arguments and options (``--help`` excluded)."""
    return [p for p in c.cmd.params if not getattr(p, "hidden", False)]


def param_names(p: Any) -> list[str]:
    """How a user writes the parameter: ``--out``, ``-o`` for options; ``PATHS`` for arguments."""
    if getattr(p, "param_type_name", "") == "argument":
        return [(p.name or "").upper()]
    return sorted([*p.opts, *p.secondary_opts], key=lambda o: (not o.startswith("--"), o))


def _help_paragraphs(help_text: str | None) -> list[str]:
    text = inspect.cleandoc(help_text or "").replace("\b\n", "")
    paras = re.split(r"\n\s*\n", text)
    return [" ".join(line.strip() for line in p.splitlines() if line.strip()) for p in paras if p.strip()]


def _value(p: Any, ctx: Any) -> str:
    if getattr(p, "is_flag", False):
        return "flag"
    if getattr(p, "param_type_name", "") == "argument":
        if p.nargs == -1:
            return "one or more" if p.required else "zero or more"
        return "one"
    record = p.get_help_record(ctx)
    shown = record[0] if record else ""
    for o in sorted([*p.opts, *p.secondary_opts], key=len, reverse=True):
        shown = shown.replace(o, "")
    shown = shown.strip(" ,/")
    return code(shown) if shown else "value"


def _default(p: Any) -> str:
    if p.required:
        return "required"
    d = p.default
    if getattr(p, "is_flag", False):
        return "on" if d else "off"
    if d is None or d in ((), []):
        return "–"
    return code(d)


def _param_rows(c: Command) -> list[list[str]]:
    rows = []
    for p in params(c):
        names = param_names(p)
        if getattr(p, "param_type_name", "") == "argument" and p.nargs == -1:
            names = [names[0] + "…"]
        rows.append(
            [", ".join(code(n) for n in names), _value(p, c.ctx), _default(p), prose(p.help or "", cell=True) or "–"]
        )
    return rows


def usage(c: Command) -> str:
    return " ".join(c.cmd.get_usage(c.ctx).removeprefix("Usage:").split())


def render_command(c: Command, level: int) -> str:
    out = [f"{'#' * level} {code(c.name, cell=False)}", "", "```text", usage(c), "```", ""]
    for para in _help_paragraphs(c.cmd.help):
        if para.startswith("Example:"):
            out += [_example(para), ""]
        else:
            out += [prose(para), ""]
    if c.is_group:
        subs = [s for s in commands(c) if len(s.path) == len(c.path) + 1]
        out += [f"- [{code(s.name, cell=False)}](#{slug(s.name)}): {prose(_summary(s))}" for s in subs] + [""]
    else:
        rows = _param_rows(c)
        if rows:
            out += [table(["argument / option", "value", "default", "meaning"], rows), ""]
        else:
            out += ["No options besides `--help`.", ""]
    return "\n".join(out).rstrip()


def _summary(c: Command) -> str:
    paras = [p for p in _help_paragraphs(c.cmd.help) if not p.startswith("Example:")]
    return first_sentence(paras[0]) if paras else ""


def render_commands() -> str:
    root = cli_root()
    parts = [prose(p) if not p.startswith("Example:") else _example(p) for p in _help_paragraphs(root.cmd.help)]
    out = ["```text", usage(root), "```", "", *[p + "\n" for p in parts]]
    for c in commands():
        out.append(render_command(c, 3 + (len(c.path) - 1)) + "\n")
    return "\n".join(out).rstrip()


def _example(para: str) -> str:
    """An ``Example: curate …`` paragraph with the command as a code span (a note after two spaces stays prose)."""
    body = para.removeprefix("Example:").strip()
    cmd, _, note = re.sub(r"\s{2,}", "\0", body, count=1).partition("\0")
    return f"Example: {code(cmd.strip(), cell=False)}" + (f" {prose(note.strip())}" if note.strip() else "")


def render_commands_table() -> str:
    rows = [
        [f"[{code(c.name)}](docs/commands.md#{slug(c.name)})", prose(_summary(c), cell=True)] for c in leaf_commands()
    ]
    return table(["command", "what it does"], rows)


# ---------------------------------------------------------------------------------------------------------------
# The vocabulary (curate.schema)
# ---------------------------------------------------------------------------------------------------------------


def schema_enums() -> dict[str, type[enum.Enum]]:
    """Every ``StrEnum`` defined in curate.schema, by class name, in definition order."""
    from curate import schema

    return {
        name: obj
        for name, obj in vars(schema).items()
        if isinstance(obj, type) and issubclass(obj, enum.StrEnum) and obj.__module__ == schema.__name__
    }


def _help_name(enum_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_HELP"


def enum_help(cls: type[enum.Enum]) -> dict[str, str]:
    """Meaning of each value of ``cls``: curate.schema's ``<NAME>_HELP`` if it exists, else :data:`FALLBACK_HELP`."""
    from curate import schema

    given = getattr(schema, _help_name(cls.__name__), None)
    if isinstance(given, dict):
        helps = {str(getattr(k, "value", k)): v for k, v in given.items()}
    else:
        helps = {k: v.format(**_score_constants()) for k, v in FALLBACK_HELP.get(cls.__name__, {}).items()}
    missing = [m.value for m in cls if m.value not in helps]
    if missing:
        raise DocsError(
            f"curate.schema.{cls.__name__} has no meaning for {', '.join(missing)}: add it to "
            f"{_help_name(cls.__name__)} in curate/schema.py (or FALLBACK_HELP in docs/build.py)"
        )
    return helps


def _score_constants() -> dict[str, Any]:
    try:
        from curate.score import text
    except ImportError:  # pragma: no cover - the module moved; the fallback text then names no numbers
        return {}
    return {k: v for k, v in vars(text).items() if k.isupper() and isinstance(v, int | float)}


def render_enum(name: str) -> str:
    enums = schema_enums()
    if name not in enums:
        raise DocsError(f"enum:{name} names no StrEnum of curate.schema (it has {', '.join(enums)})")
    if name == "Reason":
        return render_reasons()
    cls = enums[name]
    helps = enum_help(cls)
    doc = prose(" ".join((cls.__doc__ or "").split()))
    rows = [[code(m.value), prose(helps[m.value], cell=True)] for m in cls]
    return (f"{doc}\n\n" if doc else "") + table(["value", "meaning"], rows)


def render_reasons() -> str:
    from curate import schema

    ingest = {r.value for r in getattr(schema, "INGEST_REASONS", ())}
    missing = [r.value for r in schema.Reason if r not in schema.REASON_HELP]
    if missing:
        raise DocsError(f"curate.schema.REASON_HELP has no meaning for {', '.join(missing)}")
    header = ["reason", "status", "set by" if ingest else None, "meaning"]
    rows = []
    for r in schema.Reason:
        row = [code(r.value), schema.status_for(r).value]
        if ingest:
            row.append("ingest" if r.value in ingest else "decide")
        row.append(prose(schema.REASON_HELP[r], cell=True))
        rows.append(row)
    return table([h for h in header if h], rows)


# ---------------------------------------------------------------------------------------------------------------
# The store (curate.schema's column tuples and CREATE TABLE constants)
# ---------------------------------------------------------------------------------------------------------------


def _attribute_docs(module_file: Path) -> dict[str, str]:
    """Docstrings written under module-level assignments (``X = ...`` then a string), which Python discards."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    docs: dict[str, str] = {}
    for node, nxt in itertools.pairwise(tree.body):
        target = None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target = node.target.id
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
        if target and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[target] = str(nxt.value.value)
    return docs


def _column_tuples() -> dict[str, tuple[Any, ...]]:
    from curate import schema

    return {
        name: value
        for name, value in vars(schema).items()
        if name.isupper() and isinstance(value, tuple) and value and all(isinstance(c, schema.Column) for c in value)
    }


def store_tables() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every table of a new store, as ``curate.store.create_tables`` makes it: (name, [(column, type)])."""
    import duckdb

    from curate import store

    create = getattr(store, "create_tables", None)
    if create is None:
        raise DocsError("curate.store.create_tables is gone: tell docs/build.py how a store's tables are created")
    con = duckdb.connect()
    try:
        create(con)
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY table_oid").fetchall()]
        return [
            (
                t,
                [
                    (str(c), _short_type(str(ty)))
                    for c, ty in con.execute(
                        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                        "ORDER BY ordinal_position",
                        [t],
                    ).fetchall()
                ],
            )
            for t in names
        ]
    finally:
        con.close()


def _is_part(part: tuple[Any, ...], whole: tuple[Any, ...]) -> bool:
    n = len(part)
    return n < len(whole) and any(whole[i : i + n] == part for i in range(len(whole) - n + 1))


def render_store_tables() -> str:
    """A section per table of a new store: its columns, types and meanings. Meanings come from the schema's
    ``Column`` tuples (matched by column names), else from SQL comments or :data:`DDL_HELP`."""
    from curate import schema

    schema_file = Path(schema.__file__)
    tuples = _column_tuples()
    attr_docs = _attribute_docs(schema_file)
    out: list[str] = []

    def columns_table(cols: tuple[Any, ...]) -> str:
        return table(
            ["column", "type", "meaning"], [[code(c.name), c.sql, prose(c.doc, cell=True) or "–"] for c in cols]
        )

    for name, cols in store_tables():
        out += [f"### {code(name, cell=False)}", ""]
        names = [c for c, _ in cols]
        match = next((v for v, t in tuples.items() if [c.name for c in t] == names), None)
        if match is not None:
            whole = tuples[match]
            if attr_docs.get(match):
                out += [prose(" ".join(attr_docs[match].split())), ""]
            out.append(f"Columns defined by `curate.schema.{match}`.\n")
            parts = [(n, t) for n, t in tuples.items() if _is_part(t, whole)]
            if parts and sum((t for _, t in parts), ()) == whole:
                for n, t in parts:
                    note = prose(" ".join(attr_docs.get(n, "").split()))
                    out += [f"`{n}`" + (f": {note}" if note else ""), "", columns_table(t), ""]
            else:
                out += [columns_table(whole), ""]
            continue
        stmt = next(
            (s for s in _ddl_constants() if re.match(rf"\s*CREATE TABLE\s+(?:IF NOT EXISTS\s+)?{name}\b", s)), ""
        )
        helps = DDL_HELP.get(name, {})
        missing = [c for c in names if c not in helps and not _sql_comment(stmt, c)]
        if missing:
            raise DocsError(
                f"store table {name!r} has no meaning for column(s) {', '.join(missing)}: define its columns as a "
                f"tuple of Column in curate/schema.py, or add them to DDL_HELP[{name!r}] in docs/build.py"
            )
        note = _table_comment(schema_file, name)
        if note:
            out += [prose(note[0].upper() + note[1:]) + ("" if note.endswith(".") else "."), ""]
        rows = [[code(c), t, prose(_sql_comment(stmt, c) or helps[c], cell=True)] for c, t in cols]
        out += [table(["column", "type", "meaning"], rows), ""]
    return "\n".join(out).rstrip()


def _ddl_constants() -> list[str]:
    """The CREATE TABLE statements written as text in curate.schema (module-level strings and tuples of them)."""
    from curate import schema

    stmts: list[str] = []
    for name, value in vars(schema).items():
        if not name.isupper():
            continue
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, str) and re.match(r"\s*CREATE TABLE", v):
                stmts.append(v)
    return stmts


def _short_type(sql_type: str) -> str:
    """DuckDB's name of a type as the schema writes it (``TIMESTAMPTZ``, not ``TIMESTAMP WITH TIME ZONE``)."""
    return sql_type.replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")


def _table_comment(module_file: Path, table_name: str) -> str:
    """The ``#`` comment lines right above the line of curate/schema.py that creates ``table_name``."""
    lines = module_file.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.search(rf"CREATE TABLE\s+(?:IF NOT EXISTS\s+)?{re.escape(table_name)}\b", line):
            above: list[str] = []
            j = i - 1
            while j >= 0 and lines[j].strip().startswith("#"):
                above.insert(0, lines[j].strip().lstrip("#").strip())
                j -= 1
            return " ".join(above)
    return ""


def _sql_comment(stmt: str, column: str) -> str:
    m = re.search(rf"^\s*{re.escape(column)}\s[^\n]*?--\s*(.+)$", stmt, re.M)
    return m.group(1).strip() if m else ""


def render_versions() -> str:
    from curate import schema

    rows = []
    for name, value in vars(schema).items():
        if (
            name.isupper()
            and isinstance(value, str)
            and (name.endswith(("_NAME", "_MODEL")) or name == "SCHEMA_VERSION")
        ):
            rows.append([code(name), code(value)])
    versions = getattr(schema, "STORE_VERSIONS", None)
    if versions:
        rows.append([code("STORE_VERSIONS"), ", ".join(code(v) for v in versions)])
    return table(["curate.schema", "value"], rows)


# ---------------------------------------------------------------------------------------------------------------
# Recipe keys (pipelines/default.toml)
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class RecipeKey:
    """A key of the default recipe: dotted name, default as written, and the comment that explains it."""

    key: str
    default: str
    comment: str
    note: str = ""  # a comment block written above the key


@dataclass
class RecipeTable:
    """A ``[table]`` (or ``[[array]]``) of the default recipe and its keys."""

    name: str
    array: bool
    note: str
    keys: list[RecipeKey]
    lines: list[str]


def _split_comment(line: str) -> tuple[str, str]:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def parse_recipe(path: Path = DEFAULT_RECIPE) -> tuple[str, list[RecipeTable]]:
    """The default recipe's intro comment and its tables with their keys, defaults and comments, in file order.

    The comment lines before the first key are the recipe's intro; a comment block right above a key or a table
    header belongs to it; a comment at the end of a line belongs to that line's key. Of an ``[[array]]`` given
    more than once, the first entry's keys are listed and every entry is kept verbatim (``RecipeTable.lines``).
    """
    text = path.read_text(encoding="utf-8")
    tomllib.loads(text)  # a broken default recipe fails here, with TOML's own message
    intro = ""
    tables = [RecipeTable("", False, "", [], [])]
    pending: list[str] = []
    started = repeat = False
    statement: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if statement:  # a value written over several lines
            statement.append(raw)
            if _complete("\n".join(statement)):
                _add_key(tables[-1], statement, pending, repeat)
                statement, pending = [], []
            continue
        if not line:
            if not started and pending and not intro:
                intro = " ".join(pending)
            pending = []
            continue
        if line.startswith("#"):
            pending.append(line.lstrip("#").strip())
            continue
        if not started and pending and not intro:
            intro, pending = " ".join(pending), []
        started = True
        body, comment = _split_comment(line)
        if body.startswith("["):
            array = body.startswith("[[")
            name = body.strip("[]").strip()
            repeat = array and any(t.array and t.name == name for t in tables)
            if repeat:
                tables[-1].lines += ["", raw]
            else:
                tables.append(RecipeTable(name, array, " ".join([*pending, comment]).strip(), [], [raw]))
            pending = []
            continue
        statement = [raw]
        if _complete(raw):
            _add_key(tables[-1], statement, pending, repeat)
            statement, pending = [], []
    return intro, tables


def _complete(statement: str) -> bool:
    try:
        tomllib.loads(statement)
    except tomllib.TOMLDecodeError:
        return False
    return True


def _add_key(t: RecipeTable, statement: list[str], pending: list[str], repeat: bool) -> None:
    t.lines += statement
    if repeat:
        return
    first, comment = _split_comment(statement[0].strip())
    key, _, value = first.partition("=")
    rest = [_split_comment(s.strip())[0] for s in statement[1:]]
    default = " ".join([value.strip(), *rest]).strip()
    prefix = f"{t.name}." if t.name else ""
    t.keys.append(RecipeKey(prefix + key.strip(), default, comment, " ".join(pending)))


def recipe_keys() -> list[str]:
    """Every dotted key of the default recipe; keys inside ``[[arrays]]`` as ``array.key``."""
    return [k.key for _, tables in [parse_recipe()] for t in tables for k in t.keys]


def _read_by(key: str) -> str:
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in READ_BY:
            return ", ".join(READ_BY[prefix])
    raise DocsError(
        f"recipe key {key!r} (pipelines/default.toml) has no entry in READ_BY (docs/build.py): say which commands read it"
    )


def ingest_keys() -> frozenset[str]:
    """Recipe keys that act while the WARCs are read (``curate.recipe.INGEST_KEYS``)."""
    from curate import recipe

    return frozenset(getattr(recipe, "INGEST_KEYS", ()))


def render_recipe_keys() -> str:
    intro, tables = parse_recipe()
    ingest_only = ingest_keys()
    out = [prose(intro), ""] if intro else []
    for t in tables:
        if not t.keys:
            continue
        title = f"`[[{t.name}]]`" if t.array else (f"`[{t.name}]`" if t.name else "Top level")
        out += [f"### {title}", ""]
        if t.note:
            out += [prose(t.note), ""]
        rows = []
        for k in t.keys:
            meaning = " ".join(s for s in (k.note, k.comment) if s) or KEY_HELP.get(k.key, "")
            if not meaning:
                raise DocsError(
                    f"recipe key {k.key!r} has no comment in pipelines/default.toml and no KEY_HELP entry in docs/build.py"
                )
            read_by = _read_by(k.key)
            if k.key in ingest_only:
                read_by += "; fixed at ingest"
            rows.append([code(k.key), code(k.default), read_by, prose(meaning, cell=True)])
        out += [table(["key", "default", "read by", "meaning"], rows), ""]
        if t.array:
            out += ["The default recipe's entries:", "", "```toml", *t.lines, "```", ""]
    return "\n".join(out).rstrip()


# ---------------------------------------------------------------------------------------------------------------
# Package layout (module docstrings)
# ---------------------------------------------------------------------------------------------------------------


def render_layout() -> str:
    rows = []
    seen_folders: set[Path] = set()
    for f in sorted(PACKAGE.rglob("*.py"), key=lambda p: (p.parent != PACKAGE, p.relative_to(PACKAGE).parts)):
        if "__pycache__" in f.parts:
            continue
        rel = f.relative_to(ROOT).as_posix()
        folder = f.parent
        if folder != PACKAGE and folder not in seen_folders:
            seen_folders.add(folder)
            init = folder / "__init__.py"
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) if init.exists() else None
            summary = first_sentence(doc) if doc else FOLDER_HELP.get(folder.name, "")
            if not summary:
                raise DocsError(
                    f"package folder curate/{folder.name}/ has no __init__.py docstring and no FOLDER_HELP entry"
                )
            rows.append(
                [
                    f"[{code(folder.relative_to(ROOT).as_posix() + '/')}](../{folder.relative_to(ROOT).as_posix()}/)",
                    prose(summary, cell=True),
                ]
            )
        if f.name == "__init__.py" and folder != PACKAGE:
            continue
        doc = ast.get_docstring(ast.parse(f.read_text(encoding="utf-8")))
        if not doc:
            raise DocsError(f"{rel} has no module docstring: its first sentence is its line in docs/layout.md")
        indent = "&nbsp;&nbsp;" if folder != PACKAGE else ""
        rows.append(
            [f"{indent}[{code(f.name if folder != PACKAGE else rel)}](../{rel})", prose(first_sentence(doc), cell=True)]
        )
    return table(["module", "what it holds"], rows)


def render_license_policies() -> str:
    """The licence policies of ``licenses/policies.toml``: name, description and settings."""
    from curate.resources import LICENSES_DIR

    data = tomllib.loads((LICENSES_DIR / "policies.toml").read_text(encoding="utf-8"))
    rows = []
    for name, p in data.get("policies", {}).items():
        settings = ", ".join(f"{code(f'{k} = {_toml_value(v)}')}" for k, v in p.items() if k != "description")
        if not p.get("description"):
            raise DocsError(f"licence policy {name!r} in licenses/policies.toml has no description")
        rows.append([code(name), prose(p["description"], cell=True), settings or "–"])
    return table(["`license.policy`", "what it keeps", "settings"], rows)


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


def render_module_doc(dotted: str) -> str:
    """A module's docstring (read from its source, not imported) as Markdown, its first line left out."""
    f = ROOT / (dotted.replace(".", "/") + ".py")
    if not f.exists():
        raise DocsError(f"module:{dotted}: there is no {f.relative_to(ROOT)}")
    doc = ast.get_docstring(ast.parse(f.read_text(encoding="utf-8"))) or ""
    body = doc.partition("\n\n")[2].strip()
    if not body:
        raise DocsError(f"module:{dotted}: its docstring has nothing after the first line")
    return prose(body) + f"\n\n(From the docstring of [`{dotted}`](../{f.relative_to(ROOT).as_posix()}).)"


# ---------------------------------------------------------------------------------------------------------------
# The README's example output
# ---------------------------------------------------------------------------------------------------------------


def render_run_output(timeout_s: int = 900) -> str:
    """What ``make run`` prints: ``curate run --out out --force`` on the bundled sample, in a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="curate-docs-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "curate.cli", "run", "--out", "out", "--force"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    if proc.returncode != 0:
        raise DocsError(f"curate run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return "```\n" + proc.stdout.rstrip() + "\n```"


# ---------------------------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------------------------


def renderers() -> dict[str, Callable[[], str]]:
    """Every generated part by block name (``run-output`` aside, which only ``--run-output`` refreshes)."""
    out: dict[str, Callable[[], str]] = {
        "commands": render_commands,
        "commands-table": render_commands_table,
        "store-tables": render_store_tables,
        "versions": render_versions,
        "recipe-keys": render_recipe_keys,
        "layout": render_layout,
        "license-policies": render_license_policies,
    }
    for name in schema_enums():
        out[f"enum:{name}"] = lambda name=name: render_enum(name)
    return out


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def blocks(text: str) -> list[tuple[str, str]]:
    """The (name, content) of each generated block of a page."""
    return [(m.group(2), m.group(3)) for m in BLOCK.finditer(text)]


def build(run_output: str | None = None) -> dict[Path, str]:
    """The new text of every page with generated blocks. Raises :class:`DocsError` when a block is unknown, a
    generated part is on no page, or the code lacks a meaning the docs need."""
    makers = renderers()
    cache: dict[str, str] = {}
    used: set[str] = set()
    result: dict[Path, str] = {}
    for page in pages():
        text = page.read_text(encoding="utf-8")

        def fill(m: re.Match[str], page: Path = page) -> str:
            name = m.group(2)
            used.add(name)
            if name == RUN_OUTPUT:
                body = run_output if run_output is not None else m.group(3).rstrip("\n")
            elif name in makers:
                body = cache[name] if name in cache else cache.setdefault(name, makers[name]())
            elif name.startswith("module:"):
                body = render_module_doc(name.removeprefix("module:"))
            else:
                known = ", ".join(sorted(makers))
                raise DocsError(f"{page.relative_to(ROOT)}: unknown generated block {name!r} (known: {known})")
            return f"{m.group(1)}{body.strip()}\n{m.group(4)}"

        new = BLOCK.sub(fill, text)
        if new != text or BLOCK.search(text):
            result[page] = new
    missing = sorted(set(makers) - used)
    if missing:
        raise DocsError(
            "generated parts on no page: "
            + ", ".join(missing)
            + " (add '<!-- generated: NAME -->' … '<!-- end generated -->' to a page of docs/)"
        )
    return result


def stale_pages(run_output: str | None = None) -> list[Path]:
    """Pages whose generated parts differ from what the code gives now."""
    return [p for p, text in build(run_output).items() if p.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is out of date")
    ap.add_argument("--run-output", action="store_true", help="also run `curate run` for the README's example output")
    args = ap.parse_args(argv)
    try:
        run_output = render_run_output() if args.run_output else None
        if args.check:
            stale = stale_pages(run_output)
            for p in stale:
                print(f"out of date: {p.relative_to(ROOT)} (run: python docs/build.py)")  # noqa: T201
            return 1 if stale else 0
        for page, text in build(run_output).items():
            if page.read_text(encoding="utf-8") != text:
                page.write_text(text, encoding="utf-8")
                print(f"wrote {page.relative_to(ROOT)}")  # noqa: T201
    except DocsError as e:
        print(f"error: {e}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
