"""Shared fixtures: paths to ../shared, and one run of the whole pipeline on the bundled sample crawl."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.resources import REPO_ROOT, SAMPLE_DIR

SHARED = REPO_ROOT.parent / "shared"
WARC_DIR = SHARED / "data" / "warc"
HTML_DIR = SHARED / "data" / "html"
MGT_DATA = SHARED / "data" / "mgt" / "train.jsonl.gz"


def _binary_junk(encoding: str, n: int = 12_000) -> str:
    """Reproducible random bytes decoded as ``encoding`` (what a mis-decoded binary body looks like)."""
    import random

    rng = random.Random(7)
    return bytes(rng.randrange(256) for _ in range(n)).decode(encoding, errors="replace")


ENGLISH = "The council met on Tuesday to discuss the new budget for the library and the parks. " * 8
# (text, language the caller passes (None: let the scorer detect it), expected NULL reason, or "scored")
BAD_MGT_INPUTS = [
    ("", "en", "too_short_to_score"),
    ("a" * 10_000_000, "en", "too_short_to_score"),
    ("\x00\x01\x02\x03 " * 2000, "en", "not_text"),
    ("0 1 2 3 4 5 6 7 8 9 % $ | - + = " * 300, None, "not_text"),
    (_binary_junk("latin-1"), "en", "not_text"),
    (_binary_junk("utf-8"), None, "not_text"),
    ("Der schnelle braune Fuchs springt über den faulen Hund. " * 30, "de", "language_out_of_scope"),
    ("Der schnelle braune Fuchs springt über den faulen Hund. " * 30, None, "language_out_of_scope"),
    (
        "Le comité a examiné le budget de la bibliothèque et l'a approuvé mardi soir. " * 10,
        None,
        "language_out_of_scope",
    ),
    (ENGLISH, None, "scored"),
    ("sentence " * 1_000_000, "en", "scored"),
]


def all_fixture_warcs() -> list[Path]:
    """Every WARC/WET/WAT/ARC fixture in ../shared/data/warc."""
    return sorted(
        p
        for p in WARC_DIR.rglob("*")
        if p.is_file() and (".warc" in p.name or ".arc" in p.name) and "paths" not in p.name
    )


def run_sample(out: Path, paths: list[str] | None = None, recipe: Path | None = None, **kw):
    """``curate run`` (the library call) on ``paths`` (the bundled sample crawl when None) into ``out``."""
    from curate.recipe import load_recipe
    from curate.run.commands import run

    return run(paths or [str(SAMPLE_DIR)], out, load_recipe(recipe), quiet=True, **kw)


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory):
    """The pipeline run on the bundled sample crawl (shared by many tests: it takes a few seconds)."""
    return run_sample(tmp_path_factory.mktemp("run1"))


@pytest.fixture(scope="session")
def sample_con(sample_run):
    from curate.store import open_store

    con = open_store(sample_run.store)
    yield con
    con.close()


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    from curate.read.inputs import resolve_inputs

    return [Path(p) for p in resolve_inputs([str(SAMPLE_DIR)])]
