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
