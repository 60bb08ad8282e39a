"""Every notebook in notebooks/ runs top to bottom against the sample run's store, and the assertions in its cells
check what it computes; notebooks are committed without outputs and ask the store only through curate.audit."""

from __future__ import annotations

import re

import pytest

from curate.resources import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
# what a notebook may not do itself: query the store (it goes through curate.audit, which opens it read-only)
DIRECT_ACCESS = re.compile(r"import duckdb|duckdb\.connect|open_store|\.execute\(|read_parquet|\bsandboxed\b")


def _code(path) -> list[str]:
    import nbformat

    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_the_notebooks_are_there() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"corpus_audit.ipynb", "classifier_audit.ipynb", "legal_review.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code), "clear the outputs"
    assert not [s for s in _code(path) if DIRECT_ACCESS.search(s)], "query the store through curate.audit"
    assert any("assert " in s for s in _code(path)), "a notebook checks what it computes"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, sample_run, monkeypatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("CURATE_STORE", str(sample_run.store.parent))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    if any("audit.plot_" in s for s in _code(path)):  # figures render (Agg canvas, inline backend)
        assert any("image/png" in o.get("data", {}) for o in outputs)
