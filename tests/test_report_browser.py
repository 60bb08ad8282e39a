"""The provenance report in a real headless Chromium: it renders, logs nothing to the console, runs no
crawled script, and a screenshot is kept in test-artifacts/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from curate.resources import REPO_ROOT

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CURATE_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (CURATE_REQUIRE_BROWSER is set): run `make browser`")
        pytest.skip("chromium not installed (run `make browser`)")
    return exe


def render(page: Path, tmp_path: Path, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """(DOM after load, console lines) of ``page`` in headless Chromium."""
    exe = chromium()
    args = [exe, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True)
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [*args, "--window-size=1200,3000", f"--screenshot={screenshot}", page.as_uri()],
            capture_output=True,
            timeout=120,
            check=True,
        )
    return dom.stdout, console


def test_the_console_check_catches_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom')</script></body></html>")
    _, console = render(bad, tmp_path)
    assert any("boom" in line for line in console)


@pytest.mark.slow
def test_report_renders_without_console_errors_or_scripts(sample_run, sample_con, tmp_path: Path) -> None:
    shot = REPO_ROOT / "test-artifacts" / "report.png"
    dom, console = render(sample_run.report, tmp_path, shot)
    assert console == []
    assert "<script" not in dom.lower()
    n_read = sample_con.execute("SELECT n_read FROM decisions").fetchone()[0]
    assert re.search(rf'id="n-read">{n_read}<', dom)
    # a planted header value carrying markup is shown as text, never as an element
    raw = sample_con.execute(
        "SELECT raw_value FROM optout_evidence o JOIN documents d USING (doc_id) WHERE d.url LIKE '%xss.html'"
    ).fetchone()[0]
    assert "<img src=x onerror=alert(1)>" in raw
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom
    assert "<img" not in dom.lower()
    assert shot.exists() and shot.stat().st_size > 10_000
    # every sampled row links to its document's page, which renders the same way (escaped, no script)
    links = sorted(set(re.findall(r'href="(provenance/doc/[^"]+\.html)"', dom)))
    assert links
    xss = sample_con.execute("SELECT doc_id FROM documents WHERE url LIKE '%xss.html'").fetchone()[0]
    for link in [links[0], f"provenance/doc/{xss}.html"]:
        doc_dom, doc_console = render(sample_run.report.parent / link, tmp_path)
        assert doc_console == [] and "<script" not in doc_dom.lower() and "<img" not in doc_dom.lower()
        assert link.rsplit("/", 1)[1].removesuffix(".html") in doc_dom


@pytest.mark.slow
def test_report_of_a_100k_document_store_stays_usable(tmp_path: Path) -> None:
    """A store of 100,000 documents: the page stays small (aggregates and capped samples, the rest in the
    exports) and loads in Chromium in seconds; both figures are printed for the docs."""
    import time

    from curate.recipe import load_recipe
    from curate.run.commands import report
    from curate.store import writing

    store = tmp_path / "big"
    recipe = load_recipe(None)
    with writing(store, "test", create=True) as con:
        con.execute(
            """INSERT INTO documents (doc_id, run_id, warc_file, warc_file_name, record_offset, record_length, record_type,
                 url, domain, warc_date, tier, mgt_score, mgt_model, language, text_chars, tagged_license_spdx,
                 tagged_license_scope, license_spdx, license_scope, crawl_id, status, reason, decision_id)
               SELECT printf('%020d', i), 'r1', 'f.warc.gz', 'f.warc.gz', i * 1000, 1000, 'response',
                 'https://site' || (i % 5000) || '.example/' || i, 'site' || (i % 5000) || '.example',
                 TIMESTAMPTZ '2019-01-01 00:00:00+00' + to_days((i % 2000)::INTEGER),
                 CASE WHEN i % 2000 < 1430 THEN 'pre_cutoff' ELSE 'post_cutoff' END, (i * 7919 % 1000) / 1000.0,
                 'mgt-fasttext-v1', 'en', 1000,
                 CASE WHEN i % 10 = 0 THEN 'CC-BY-4.0' END, CASE WHEN i % 10 = 0 THEN 'page' END,
                 CASE WHEN i % 10 = 0 THEN 'CC-BY-4.0' END, CASE WHEN i % 10 = 0 THEN 'page' END,
                 'CC-MAIN-2020-10', CASE WHEN i % 3 = 0 THEN 'dropped' ELSE 'kept' END,
                 CASE WHEN i % 3 = 0 THEN 'too_short' END, 1
               FROM range(100000) t(i)"""
        )
        con.execute(
            """INSERT INTO license_evidence SELECT doc_id, 'rel-license-link', 'https://creativecommons.org/licenses/by/4.0/',
                 'CC-BY-4.0', 'head', 'page', '<a rel=license>', 'license-tagger-v1' FROM documents WHERE license_spdx IS NOT NULL"""
        )
        con.execute(
            """INSERT INTO optout_evidence SELECT doc_id, 'x-robots-tag', 'noai', NULL, 'text', warc_date, 'record', 'license-tagger-v1'
               FROM documents WHERE record_offset % 97000 = 0"""
        )
        con.execute(
            "INSERT INTO runs VALUES ('r1', 'store-v2', now(), now(), 'default', '1', ?, '{}', '[]', 100000, 100000, 0, 0)",
            [recipe.source],
        )
        con.execute(
            "INSERT INTO decisions VALUES (1, 'store-v2', now(), now(), 'default', '1', 'x', ?, DATE '2022-11-30', 'reference', 100000, 66666, 33334, 0, '[]')",
            [recipe.source],
        )
    started = time.monotonic()
    page = report(store, tmp_path / "report.html")
    render_s = time.monotonic() - started
    size = page.stat().st_size
    started = time.monotonic()
    dom, console = render(page, tmp_path)
    load_s = time.monotonic() - started
    print(
        f"100k-document report: {size / 1e6:.2f} MB, written in {render_s:.1f} s, loaded in Chromium in {load_s:.1f} s"
    )
    assert console == [] and 'id="n-read">100000<' in dom
    assert size < 2_000_000 and load_s < 30
    assert (tmp_path / "provenance" / "documents.csv").stat().st_size > 100_000 * 50  # every row, not a sample
