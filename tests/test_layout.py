"""The package's shape: stage folders, no import cycles, first-party imports at module top, a light CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from curate.resources import REPO_ROOT

PACKAGE = REPO_ROOT / "curate"
STAGES = ("read", "licenses", "score", "dedup", "run")


def _module(path: Path) -> str:
    rel = path.relative_to(REPO_ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> tuple[set[str], list[str]]:
    """(first-party modules imported at module level, first-party imports made inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top: set[str] = set()
    nested: list[str] = []
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}

    def targets(node: ast.Import | ast.ImportFrom) -> set[str]:
        if isinstance(node, ast.Import):
            return {a.name for a in node.names if a.name.startswith("curate")}
        if not (node.module or "").startswith("curate"):
            return set()
        out = set()
        for a in node.names:  # `from curate.score import fasttext_model` imports a module
            sub = f"{node.module}.{a.name}"
            out.add(sub if sub in modules else str(node.module))
        return out

    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            top |= targets(node)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom) and targets(inner):
                    nested.append(f"{_module(path)}.{node.name}: {ast.unparse(inner)}")
    return top, nested


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    graph: dict[str, set[str]] = {}
    nested: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        top, inner = _imports(path)
        graph[_module(path)] = {m for m in top if m != _module(path)}
        nested += inner
    return graph, nested


def test_stages_are_folders() -> None:
    for stage in STAGES:
        assert (PACKAGE / stage / "__init__.py").is_file(), stage
    for module in ("extract", "dating", "decide", "store", "mix", "report", "schema", "recipe", "cli"):
        assert (PACKAGE / f"{module}.py").is_file(), module


def test_no_import_cycles() -> None:
    graph, _ = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            nxt_mod = nxt if nxt in graph else nxt.rsplit(".", 1)[0]
            if state.get(nxt_mod) == 1:
                cycle = [*path[path.index(nxt_mod) :], nxt_mod]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt_mod in graph and state.get(nxt_mod) is None:
                visit(nxt_mod)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node)


def test_first_party_imports_are_at_module_top() -> None:
    _, nested = _graph()
    assert nested == [], "first-party imports inside functions:\n" + "\n".join(nested)


def test_store_is_io_only() -> None:
    """store.py talks to DuckDB; the rules that set a status live in decide.py alone."""
    graph, _ = _graph()
    assert graph["curate.store"] <= {"curate.errors", "curate.schema"}
    setters = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "SET status" in text and path.name not in ("decide.py",):
            setters.append(path.name)
    assert setters == [], f"status is set outside decide.py: {setters}"


def test_the_cli_starts_without_heavy_imports() -> None:
    heavy = ("torch", "transformers", "trafilatura", "resiliparse", "fasttext", "sentence_transformers", "jinja2")
    code = f"import sys, curate.cli; print([m for m in sys.modules if m.split('.')[0] in {heavy!r}])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
