"""Shared fixtures: the test data (in the repo, or the full sets in ../shared), and one run of the whole pipeline
on the bundled sample crawl.

Every test runs on a clone with no ../shared beside it: the WARC fixtures are in ``sample/fixtures/`` and
``tests/data/warc/``, the licence pages in ``tests/data/html/`` (the ones cut from the WARC fixtures are cut again
here, byte for byte), a labelled MGT subset in ``tests/data/mgt/``. Only the gates on the full MGT data need
../shared; they skip, saying so, when it is absent. ``CURATE_SHARED=DIR`` points at another shared folder
(``CURATE_SHARED=/nonexistent`` runs the suite as a clone without one would).
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
import os
from pathlib import Path

import pytest

from curate.resources import REPO_ROOT, SAMPLE_DIR

SHARED = Path(os.environ["CURATE_SHARED"]) if os.environ.get("CURATE_SHARED") else REPO_ROOT.parent / "shared"
WARC_DIR = SHARED / "data" / "warc"  # the full sets: read them only behind a skip when they are absent
HTML_DIR = SHARED / "data" / "html"
MGT_DATA = SHARED / "data" / "mgt" / "train.jsonl.gz"

TEST_DATA = Path(__file__).resolve().parent / "data"
FIXTURE_WARC_DIRS = (SAMPLE_DIR / "fixtures", TEST_DATA / "warc")  # every WARC fixture of ../shared, in the repo
HTML_DATA = TEST_DATA / "html"
MGT_SUBSET_DIR = TEST_DATA / "mgt"
MGT_SUBSET = MGT_SUBSET_DIR / "subset.jsonl.gz"

needs_full_mgt = pytest.mark.skipif(
    not MGT_DATA.is_file(),
    reason=f"needs the full MGT data: no {MGT_DATA} (put ../shared beside the repo, or set CURATE_SHARED)",
)


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
    """Every WARC/WET/WAT/ARC fixture (the in-repo copies of ../shared/data/warc), sorted by file name."""
    return sorted(
        (
            p
            for d in FIXTURE_WARC_DIRS
            for p in d.rglob("*")
            if p.is_file() and (".warc" in p.name or ".arc" in p.name) and "paths" not in p.name
        ),
        key=lambda p: p.name,
    )


def warc_fixture(name: str) -> Path:
    """The in-repo WARC fixture (or paths listing) called ``name``, e.g. ``sample-0001.warc.gz``."""
    (path,) = [p for d in FIXTURE_WARC_DIRS for p in d.rglob(name) if p.is_file()]
    return path


@functools.cache
def html_pages() -> dict[str, bytes]:
    """The licence-test pages of ../shared/data/html, by their path there, from the repo's copies.

    ``html-dclm-enricher/…``: gzipped copies in ``tests/data/html/``. ``html-license-from-warc/…``: the HTTP body
    of the response record that ``index.tsv`` names, cut again from the in-repo WARC fixture with warcio (as
    shared/data/html/SOURCE.md says they were made). tests/test_license.py checks both against SHA256SUMS.
    """
    from warcio.archiveiterator import ArchiveIterator

    dclm = "html-dclm-enricher/tests/baselines/mappers/enrichers/enricher_test_files/"
    pages = {
        dclm + p.name.removesuffix(".gz"): gzip.decompress(p.read_bytes())
        for p in (HTML_DATA / "html-dclm-enricher").glob("*.html.gz")
    }
    wanted: dict[str, dict[str, str]] = {}
    for row in license_index():
        wanted.setdefault(Path(row["warc_file"]).name, {})[row["warc_record_id"]] = row["file"]
    for warc, files in wanted.items():
        with warc_fixture(warc).open("rb") as fh:
            for rec in ArchiveIterator(fh):
                rid = rec.rec_headers.get_header("WARC-Record-ID")
                if rec.rec_type == "response" and rid in files:
                    pages["html-license-from-warc/" + files[rid]] = rec.content_stream().read()
    return pages


def license_index() -> list[dict[str, str]]:
    """Rows of ``html-license-from-warc/index.tsv`` (in-repo copy): file, source WARC and record, signal."""
    with (HTML_DATA / "html-license-from-warc" / "index.tsv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def html_page(rel: str) -> bytes:
    """One page of ../shared/data/html by its path there (``html-license-from-warc/soldaini_net.html``)."""
    return html_pages()[rel]


@functools.cache
def mgt_subset() -> tuple[dict, ...]:
    """The in-repo labelled MGT subset (tests/data/mgt/SOURCE.md): every test that needs some labelled texts."""
    from curate.score.labelled import read_labelled

    return tuple(read_labelled(MGT_SUBSET))


def mgt_rows() -> list[dict]:
    """A fresh list of the subset's rows (callers may slice or mutate it)."""
    return [dict(r) for r in mgt_subset()]


def sample_page_labels() -> dict[str, str]:
    """``human``/``machine`` of each page planted in the sample crawl, by the 10-hex name in its URL."""
    return json.loads((MGT_SUBSET_DIR / "sample-crawl-labels.json").read_text())


def subset_gate(name: str) -> dict:
    """Classifier ``name``'s eval gate on the MGT subset (tests/data/mgt/gate.json, measured by build.py)."""
    return json.loads((MGT_SUBSET_DIR / "gate.json").read_text())["models"][name]


def assert_gate(name: str, metrics: dict, gate: dict) -> None:
    """``metrics`` clear every floor and ceiling of ``gate`` (a classifiers/*/gate.json or a subset gate)."""
    for key, floor in gate["floors"].items():
        assert metrics[key] >= floor, f"{name}: {key} {metrics[key]} fell below its floor {floor}"
    for key, ceiling in gate["ceilings"].items():
        assert metrics[key] <= ceiling, f"{name}: {key} {metrics[key]} rose above {ceiling}"


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


STORE_TABLES = (
    "documents",
    "texts",
    "license_evidence",
    "optout_evidence",
    "minhash_signatures",
    "minhash_bands",
    "dup_edges",
)
WALL_CLOCK = frozenset({"started_at", "finished_at"})


def store_rows(store: Path, table: str, skip: frozenset[str] = WALL_CLOCK) -> list[tuple]:
    """A store table's rows in a stable order, without the columns in ``skip`` (wall-clock times by default)."""
    from curate.store import open_store

    con = open_store(store)
    try:
        cols = [c[0] for c in con.execute(f"SELECT * FROM {table} LIMIT 0").description if c[0] not in skip]
        return con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL").fetchall()
    finally:
        con.close()


# columns two runs of the same input and recipe may differ in: wall-clock times and ids of runs and passes
NOT_COMPARED = WALL_CLOCK | {"run_id", "dedup_pass", "decision_id", "pass_id"}


def store_query(store: Path, sql: str, params: list | None = None) -> list[tuple]:
    """The rows of one query on a store (opened for this query and closed)."""
    from curate.store import open_store

    con = open_store(store)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a server a test starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def curate_process(*args: str):
    """``curate ARGS`` as a real process in its own session (so a test can signal its whole group)."""
    import subprocess
    import sys

    from curate.resources import REPO_ROOT

    return subprocess.Popen(
        [sys.executable, "-m", "curate.cli", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
