"""The docs stay true: README.md and docs/*.md against the code.

- the generated parts (commands, reason codes, tiers, store columns, recipe keys, layout) are what
  ``python docs/build.py`` gives now;
- every CLI command and option, reason code, tier, NULL reason and recipe key is documented, each command with an
  ``Example:`` line;
- every relative link and anchor resolves; the SQL examples run on an empty store and the TOML examples load as
  recipes.

Nothing here runs the pipeline (the README's example output is checked against a real run elsewhere).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
import tomllib
import typing
from pathlib import Path

import pytest

from curate.resources import REPO_ROOT

DOCS = REPO_ROOT / "docs"
README = REPO_ROOT / "README.md"
FIX = "run `python docs/build.py` and commit what it changes"


def _load_build():
    spec = importlib.util.spec_from_file_location("docs_build", DOCS / "build.py")
    assert spec and spec.loader, "docs/build.py is missing"
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_build"] = module
    spec.loader.exec_module(module)
    return module


build = _load_build()


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


PAGES = {p: _read(p) for p in build.pages()}
DOCS_TEXT = "\n".join(PAGES.values())
COMMANDS_MD = _read(DOCS / "commands.md")


def _without_code(text: str) -> str:
    """``text`` with fenced code blocks and inline code spans removed (links and headings there are not real)."""
    text = re.sub(r"^```.*?^```[ \t]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```[ \t]*$", "", text, flags=re.S | re.M)


# --- generated parts are current ------------------------------------------------------------------------------


def test_generated_parts_are_current() -> None:
    built = build.build()
    stale = []
    for page, new in built.items():
        old = PAGES[page]
        if old != new:
            old_blocks, new_blocks = dict(build.blocks(old)), dict(build.blocks(new))
            names = [n for n in new_blocks if old_blocks.get(n) != new_blocks[n]]
            stale.append(f"{page.relative_to(REPO_ROOT)} (generated parts: {', '.join(names) or '?'})")
    assert not stale, f"docs out of date: {'; '.join(stale)}; {FIX}"


def test_every_page_is_linked_from_the_readme() -> None:
    readme = PAGES[README]
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if f"(docs/{p.name})" not in readme]
    assert not missing, f"README.md links to no docs/{', docs/'.join(missing)}"


def test_readme_is_an_entry_point() -> None:
    readme = PAGES[README]
    assert "make run" in readme and "make test" in readme
    blocks = dict(build.blocks(readme))
    assert blocks.get(build.RUN_OUTPUT, "").strip(), "README.md needs a non-empty <!-- generated: run-output --> block"
    assert "## Data and attribution" in readme


# --- every command, option, reason, tier and recipe key is documented -------------------------------------------


def _command_sections(text: str) -> dict[str, str]:
    """``curate …`` → its section of docs/commands.md (from its heading to the next heading of its level or above)."""
    lines = _without_fences_keep_lines(text).splitlines()
    raw = text.splitlines()
    heads = [
        (i, len(m.group(1)), m.group(2)) for i, line in enumerate(lines) if (m := re.match(r"^(#{1,6}) (.*)$", line))
    ]
    sections = {}
    for k, (i, level, title) in enumerate(heads):
        m = re.fullmatch(r"`(curate(?: [\w-]+)*)`", title.strip())
        if not m:
            continue
        end = next((j for j, lv, _ in heads[k + 1 :] if lv <= level), len(raw))
        sections[m.group(1)] = "\n".join(raw[i:end])
    return sections


def _without_fences_keep_lines(text: str) -> str:
    return re.sub(r"^```.*?^```[ \t]*$", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)


SECTIONS = _command_sections(COMMANDS_MD)
LEAVES = build.leaf_commands()


@pytest.mark.parametrize("command", LEAVES, ids=lambda c: c.name)
def test_every_command_and_option_is_documented(command) -> None:
    assert command.name in SECTIONS, f"docs/commands.md has no section for {command.name}; {FIX}"
    section = SECTIONS[command.name]
    missing = [n for p in build.params(command) for n in build.param_names(p) if f"`{n}" not in section]
    assert not missing, f"docs/commands.md, section {command.name}, does not document {', '.join(missing)}; {FIX}"
    assert f"`{command.name}`" in PAGES[README], f"README.md's commands table lacks {command.name}; {FIX}"


@pytest.mark.parametrize("command", LEAVES, ids=lambda c: c.name)
def test_every_command_has_an_example(command) -> None:
    section = SECTIONS.get(command.name, "")
    examples = re.findall(r"^Example: `(curate [^`]+)`", section, flags=re.M)
    assert examples, (
        f"docs/commands.md, section {command.name}, has no 'Example: `curate …`' line: add 'Example: curate …' "
        f"to the command's docstring in curate/cli.py, then {FIX}"
    )
    assert all(e.startswith(command.name) for e in examples), f"{command.name}: an example runs another command"


def test_every_enum_value_is_documented() -> None:
    """Statuses, reason codes, tiers, the NULL reasons of dates and scores, licence scopes: every StrEnum of the
    schema, each value with its meaning."""
    from curate.schema import REASON_HELP, Reason

    assert not [r for r in Reason if r not in REASON_HELP], "curate.schema.REASON_HELP lacks a reason"
    missing = [
        f"{name}.{m.name} ({m.value})"
        for name, cls in build.schema_enums().items()
        for m in cls
        if not re.search(rf"^\| `{re.escape(m.value)}` \|", DOCS_TEXT, flags=re.M)
    ]
    assert not missing, f"no table row documents {', '.join(missing)}; {FIX}"


def test_reasons_page_has_every_reason_with_its_status() -> None:
    from curate.schema import Reason, status_for

    reasons = _read(DOCS / "reasons.md")
    for r in Reason:
        assert re.search(rf"^\| `{r.value}` \| {status_for(r).value} \|", reasons, flags=re.M), (
            f"docs/reasons.md: no row for {r.value} with status {status_for(r).value}; {FIX}"
        )


def _toml_keys(data: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in data.items():
        if isinstance(v, dict):
            keys += _toml_keys(v, f"{prefix}{k}.")
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            keys.append(f"{prefix}{k}")
            keys += sorted({f"{prefix}{k}.{kk}" for x in v for kk in x})
        else:
            keys.append(f"{prefix}{k}")
    return keys


DEFAULT_KEYS = _toml_keys(tomllib.loads(_read(REPO_ROOT / "pipelines" / "default.toml")))


def test_every_recipe_key_is_documented() -> None:
    recipes = _read(DOCS / "recipes.md")
    missing = [k for k in DEFAULT_KEYS if f"`{k}`" not in recipes and f"`[[{k}]]`" not in recipes]
    assert not missing, f"docs/recipes.md does not document {', '.join(missing)}; {FIX}"


def test_every_recipe_field_has_a_default_in_the_default_recipe() -> None:
    """A key that curate.recipe accepts but pipelines/default.toml lacks would have no documented default."""
    from curate.recipe import Recipe

    def fields(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if f.name == "source":
                continue
            if isinstance(tp, type) and dataclasses.is_dataclass(tp):
                yield from fields(tp, f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}"

    missing = [k for k in fields(Recipe) if k not in DEFAULT_KEYS]
    assert not missing, f"recipe keys without a default in pipelines/default.toml: {', '.join(missing)}"


def test_every_store_table_is_documented() -> None:
    import duckdb

    from curate.store import create_tables

    con = duckdb.connect()
    try:
        create_tables(con)
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        store = _read(DOCS / "store.md")
        missing = [t for t in tables if f"### `{t}`" not in store]
        assert not missing, f"docs/store.md has no section for table(s) {', '.join(missing)}; {FIX}"
        for t in tables:
            cols = [r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()]
            section = store.split(f"### `{t}`", 1)[1].split("\n### ", 1)[0]
            absent = [c for c in cols if f"| `{c}` |" not in section]
            assert not absent, f"docs/store.md, table {t}, lacks column(s) {', '.join(absent)}; {FIX}"
    finally:
        con.close()


# --- examples and links work -------------------------------------------------------------------------------------


def _fenced(lang: str) -> list[tuple[Path, str]]:
    return [
        (page, m.group(1))
        for page, text in PAGES.items()
        for m in re.finditer(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)
    ]


def test_sql_examples_run_on_an_empty_store() -> None:
    import duckdb

    from curate.store import create_tables

    con = duckdb.connect()
    try:
        create_tables(con)
        for page, sql in _fenced("sql"):
            for stmt in filter(str.strip, sql.split(";")):
                try:
                    con.execute(stmt).fetchall()
                except duckdb.Error as e:
                    pytest.fail(
                        f"{page.relative_to(REPO_ROOT)}: this query fails on an empty store: {stmt.strip()}\n{e}"
                    )
    finally:
        con.close()


def test_toml_examples_load_as_recipes(tmp_path: Path) -> None:
    from curate.errors import ConfigError
    from curate.recipe import load_recipe

    for i, (page, text) in enumerate(_fenced("toml")):
        f = tmp_path / f"example{i}.toml"
        f.write_text(text, encoding="utf-8")
        try:
            load_recipe(f)
        except ConfigError as e:
            pytest.fail(f"{page.relative_to(REPO_ROOT)}: this TOML example is not a valid recipe ({e}):\n{text}")


def _anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6} (.+)$", _without_fences(text), flags=re.M):
        s = build.slug(m.group(1))
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


def test_relative_links_resolve() -> None:
    broken = []
    for page, text in PAGES.items():
        for target in re.findall(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)", _without_code(text)):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(REPO_ROOT)} → {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(_read(dest)):
                broken.append(f"{where} (no such heading)")
    assert not broken, "broken links: " + "; ".join(broken)
