"""What curate promises under concurrent use, interruption, full disks, hostile input and hostile recipes
(docs/guarantees.md): each case as it was reported, reproduced with real processes, files and filesystems."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from curate.errors import ConfigError, InputError, OutputError
from curate.recipe import load_recipe
from curate.resources import REPO_ROOT, SAMPLE_DIR
from curate.run.commands import decide, dedup, mix, report
from curate.run.ingest import ingest

from conftest import curate_process
from conftest import store_query as q

WARCIO = SAMPLE_DIR / "fixtures" / "warc-warcio"
DOLMA = SAMPLE_DIR / "fixtures" / "warc-dolma"
TEXT = "The committee met on Tuesday to review the budget for the new library and the parks. " * 12


def warc(path: Path, pages: list[tuple[str, str, str]], *, compress: bool = False) -> Path:
    """A WARC of HTML responses: (url, WARC-Date, html) each."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=compress)
        for url, date, html in pages:
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            record = writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(html.encode("utf-8")),
                http_headers=headers,
                warc_headers_dict={"WARC-Date": date},
            )
            writer.write_record(record)
    return path


def page(title: str, body: str = TEXT, head: str = "") -> str:
    return f"<html><head><title>{title}</title>{head}</head><body><article><p>{body}</p></article></body></html>"


@contextlib.contextmanager
def small_filesystem(where: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``where`` (root and mount rights needed: CI has both)."""
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture(scope="module")
def recipe():
    return load_recipe(None)


# 1. two writers, one output
@pytest.mark.slow
def test_a_second_writer_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    out = tmp_path / "X"
    first = curate_process("run", str(SAMPLE_DIR), "--out", str(out), "-q")
    deadline = time.monotonic() + 120
    while not list(out.glob("work/ingest-*/progress/*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = curate_process(
        "run",
        str(DOLMA / "sample-0000.warc.gz"),
        str(DOLMA / "sample-0001.warc.gz"),
        "--out",
        str(out),
        "--force",
        "-q",
    )
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2 and "locked by another curate process" in err and "curate run" in err
    assert first.wait(timeout=600) == 0, first.stderr.read()
    names = {r[0] for r in q(out, "SELECT DISTINCT warc_file_name FROM documents")}
    assert "sample-crawl.warc.gz" in names and len(q(out, "SELECT * FROM runs")) == 1  # only its own shards


# 2. a recipe's SQL can only read the store
def test_hostile_bucket_sql_is_refused_before_any_work(tmp_path: Path, sample_run) -> None:
    victim = tmp_path / "victim"
    shutil.copytree(sample_run.store.parent, victim, ignore=shutil.ignore_patterns("work", "mix"))
    before = q(victim, "SELECT count(*) FROM documents")
    pwned = tmp_path / "pwned.csv"
    hostile = {
        "copy": f"1=1); COPY (SELECT 1) TO '{pwned}'; SELECT doc_id FROM documents WHERE status='kept' AND (1=1",
        "attach": f"1=1); ATTACH '{victim / 'provenance.duckdb'}' AS v; DELETE FROM v.documents; SELECT 1 WHERE (1=1",
        "read": "tier = (SELECT column0 FROM read_csv('/etc/passwd', header=false) LIMIT 1)::INTEGER",
        "function": "tier = (SELECT * FROM read_text('/etc/passwd'))",
    }
    for name, where in hostile.items():
        r = tmp_path / f"{name}.toml"
        r.write_text(f"[[mix.buckets]]\nname = 'b'\nwhere = '''{where}'''\n")
        with pytest.raises(ConfigError) as e:
            load_recipe(r)
        assert "root:" not in str(e.value), name
    assert not pwned.exists()
    assert q(victim, "SELECT count(*) FROM documents") == before
    # even a predicate that got past the checks runs where files and other databases are out of reach
    from curate.predicate import sandboxed

    con = sandboxed(victim / "provenance.duckdb")
    try:
        for sql in ("SELECT * FROM read_csv('/etc/passwd')", f"ATTACH '{tmp_path / 'x.duckdb'}' AS x"):
            with pytest.raises(Exception, match="disabled by configuration"):
                con.execute(sql)
    finally:
        con.close()
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[[mix.buckets]]\nname = 'b'\nwhere = 'nosuch > 1'\n")
    with pytest.raises(ConfigError, match="columns: doc_id, run_id"):
        load_recipe(unknown)


# 3. path traversal in listings
def test_listing_entries_must_stay_under_the_base(tmp_path: Path, recipe) -> None:
    base = tmp_path / "base"
    base.mkdir()
    shutil.copy(WARCIO / "example.warc.gz", base / "ok.warc.gz")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "credentials.txt").write_text("root:*:20228:0:99999:7:::\n")
    for entry in ("../secret/credentials.txt", "/etc/passwd", "file:///etc/passwd", "a/../../secret/credentials.txt"):
        listing = tmp_path / "warc.paths"
        listing.write_text(f"ok.warc.gz\n{entry}\n")
        with pytest.raises(InputError, match="nothing was read"):
            ingest([str(listing)], tmp_path / "store", recipe, base_url=str(base))
        assert not (tmp_path / "store" / "provenance.duckdb").exists()
    (base / "link").symlink_to(secret)
    listing.write_text("link/credentials.txt\n")
    with pytest.raises(InputError, match="outside"):
        ingest([str(listing)], tmp_path / "store", recipe, base_url=str(base))


# 4. records after an overrunning Content-Length in an uncompressed WARC
@pytest.mark.parametrize("declared", [10 * 2**20, 2**31])
def test_uncompressed_overrun_loses_no_record(tmp_path: Path, recipe, declared: int) -> None:
    src = warc(
        tmp_path / "seven.warc", [(f"https://e.example/{i}", "2019-05-01T00:00:00Z", page(f"p{i}")) for i in range(7)]
    )
    data = src.read_bytes()
    fourth = [i for i in range(len(data)) if data.startswith(b"WARC/1.", i)][3]
    start = data.index(b"Content-Length: ", fourth)
    end = data.index(b"\r\n", start)
    src.write_bytes(data[:start] + f"Content-Length: {declared}".encode() + data[end:])
    store = tmp_path / "s"
    ingest([str(src)], store, recipe)
    rows = q(store, "SELECT url, ingest_reason FROM documents ORDER BY record_offset")
    assert [r[0] for r in rows] == [f"https://e.example/{i}" for i in range(7)]
    assert [r[1] for r in rows].count("truncated_record") == 1 and rows[3][1] == "truncated_record"


# 5. resume trusts stale work
def test_resume_refuses_an_input_that_changed(tmp_path: Path, recipe) -> None:
    from curate.run.commands import run

    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(WARCIO / "example.warc.gz", inputs / "a.warc.gz")
    run([str(inputs)], tmp_path / "out", recipe)
    shutil.copy(DOLMA / "sample-0000.warc.gz", inputs / "a.warc.gz")  # another WARC under the same name
    with pytest.raises(InputError, match=r"a\.warc\.gz.*different file"):
        run([str(inputs)], tmp_path / "out", recipe, resume=True)


# 6. outputs are published whole
def test_a_full_disk_leaves_no_half_mix_or_report(tmp_path: Path, recipe, sample_run) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    with small_filesystem(tmp_path / "tiny", "64k") as tiny:
        with pytest.raises(OutputError, match="No space left"):
            mix(sample_run.store.parent, tiny / "mix", recipe)
        assert not (tiny / "mix").exists() and list(tiny.iterdir()) == []
        result = CliRunner().invoke(
            app, ["report", "--store", str(sample_run.store.parent), "--out", str(tiny / "r.html")]
        )
        assert result.exit_code == 2 and "No space left" in result.output and "Traceback" not in result.output
        assert list(tiny.iterdir()) == []
    # a finished run says so last; a mix that exists is whole: manifest, sidecar, every shard with index and metadata
    from curate.run.commands import COMPLETE_FILE, run_is_complete

    assert run_is_complete(sample_run.store.parent)
    partial = tmp_path / "partial"
    shutil.copytree(sample_run.store.parent, partial, ignore=shutil.ignore_patterns("work"))
    shutil.rmtree(partial / "mix")  # stopped between the store and the mix
    assert not run_is_complete(partial)
    (partial / COMPLETE_FILE).unlink()
    assert not run_is_complete(partial)
    manifest = sample_run.mix / "manifest.json"
    shards = [p for p in sample_run.mix.glob("*.ds")]
    assert manifest.exists() and shards
    assert all((p.parent / f"{p.name}.index").exists() and (p.parent / f"{p.name}.metadata").exists() for p in shards)


# 7. impossible capture dates
def test_impossible_capture_dates_prove_nothing(tmp_path: Path, recipe) -> None:
    src = warc(
        tmp_path / "dates.warc",
        [
            ("https://e.example/epoch", "1970-01-01T00:00:00Z", page("epoch")),
            ("https://e.example/year-one", "0001-01-01T00:00:00Z", page("year one", TEXT + " one")),
            ("https://e.example/future", "2999-01-01T00:00:00Z", page("future", TEXT + " two")),
            ("https://e.example/real", "2019-05-01T00:00:00Z", page("real", TEXT + " three")),
        ],
    )
    store = tmp_path / "s"
    ingest([str(src)], store, recipe)
    dedup(store, recipe)
    decide(store, recipe)
    rows = dict(
        (r[0].rsplit("/", 1)[1], r[1:])
        for r in q(store, "SELECT url, tier, date_reason, status, reason FROM documents")
    )
    for name in ("epoch", "year-one", "future"):
        assert rows[name] == (None, "warc_date_implausible", "dropped", "date_unknown"), name
    assert rows["real"][0] == "pre_cutoff"


# 8. crawled strings in ATTRIBUTION.md and CSV exports
def test_crawled_strings_are_escaped_in_attribution_and_csv(tmp_path: Path, recipe) -> None:
    evil_author = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
    evil_title = "=cmd|' /C calc'!A0"
    head = (
        f'<meta name="author" content="{evil_author.replace(chr(34), "&quot;")}">'
        '<link rel="license" href="https://creativecommons.org/licenses/by/4.0/">'
    )
    src = warc(
        tmp_path / "evil.warc", [("https://e.example/evil", "2019-05-01T00:00:00Z", page(evil_title, head=head))]
    )
    store = tmp_path / "s"
    ingest([str(src)], store, recipe)
    dedup(store, recipe)
    decide(store, recipe)
    mix(store, tmp_path / "mix", recipe)
    report(store, tmp_path / "report.html", mix_dir=tmp_path / "mix")
    attribution = (tmp_path / "mix" / "ATTRIBUTION.md").read_text()
    assert "e.example/evil" in attribution and "<script" not in attribution and "<img" not in attribution
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark", {"html": True}).render(attribution)
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html
    rendered = tmp_path / "attribution.html"
    rendered.write_text(f"<html><head><title>ok</title></head><body>{html}</body></html>")
    from test_report_browser import render

    dom, console = render(rendered, tmp_path)
    assert "<title>ok</title>" in dom and "<script" not in dom.lower() and console == []
    with (tmp_path / "provenance" / "kept_documents.csv").open(newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["title"] == "'" + evil_title


# 9. failures that bypass the promised message
def test_read_only_output_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    with small_filesystem(tmp_path / "ro", "1m", read_only=True) as ro:
        result = CliRunner().invoke(app, ["run", str(WARCIO / "example.warc.gz"), "--out", str(ro / "out")])
        assert result.exit_code == 2, result.output
        assert "Read-only file system" in result.output and "Traceback" not in result.output


class FillTheDisk:
    """A datatrove step that writes to ``folder`` until the disk is full (what a tokenize or merge task does when
    the mix's folder fills up)."""

    name = "fill"

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __call__(self, data: object, rank: int = 0, world_size: int = 1) -> object:
        with open(f"{self.folder}/task-{rank}", "wb") as fh:
            while True:
                fh.write(b"x" * 65536)
                fh.flush()


def test_tasks_stopped_by_a_full_disk_say_so_not_where_logs_were(tmp_path: Path) -> None:
    """Several local workers on a full disk: however the stage ends (the worker's OSError reaching the driver, or
    the dead-worker alarm seeing the pool end first), the failure names the disk, from the tasks' own logs."""
    from curate.errors import TasksFailed
    from curate.run.commands import _keep_task_logs, _raise_if_disk
    from curate.run.executors import Stage, check_completed, make_executor, run_to_end

    recipe = load_recipe(None)
    with small_filesystem(tmp_path / "tiny", "256k") as tiny:
        executor = make_executor(recipe, [FillTheDisk(str(tiny))], tasks=2, logs=tmp_path / "logs", name="fill")
        stage = Stage("mix merge", executor, 2)
        with pytest.raises(OSError, match="No space left"):
            run_to_end(executor)
        with pytest.raises(TasksFailed) as failed:
            check_completed(stage, tmp_path / "logs")
    assert failed.value.disk_error() == "No space left on device"
    assert "OSError: [Errno 28] No space left on device" in str(failed.value), failed.value
    assert _keep_task_logs(failed.value, tmp_path, tmp_path / "store") is None  # a full disk: nothing to keep
    with pytest.raises(OutputError, match=r"cannot write .*mix: No space left on device; nothing half-written"):
        _raise_if_disk(failed.value, tmp_path / "mix")
    # another cause is no disk error: the logs are copied out of the mix's work folder before it goes
    other = TasksFailed("1 mix tokenize task(s) failed", {0: "ValueError: bad"})
    assert other.disk_error() is None
    (tmp_path / "work" / "logs-tokenize" / "logs").mkdir(parents=True)
    (tmp_path / "work" / "logs-tokenize" / "logs" / "task_00000.log").write_text("ValueError: bad\n")
    kept = _keep_task_logs(other, tmp_path / "work", tmp_path / "store")
    assert kept is not None and (kept / "logs-tokenize" / "logs" / "task_00000.log").read_text() == "ValueError: bad\n"


@pytest.mark.slow
def test_a_full_disk_during_a_run_is_a_message_and_leaves_no_store(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "full", "1m") as full:
        p = curate_process("run", str(SAMPLE_DIR), "--out", str(full / "out"), "-q")
        _, err = p.communicate(timeout=600)
        assert p.returncode == 2, err
        assert "Traceback" not in err and err.startswith("error:")
        leftovers = [x.name for x in (full / "out").iterdir()] if (full / "out").exists() else []
        assert "provenance.duckdb" not in leftovers or q(full / "out", "SELECT count(*) FROM runs") == [(0,)]
        assert "mix" not in leftovers and "report.html" not in leftovers


def test_a_domain_review_without_its_header_is_refused(tmp_path: Path) -> None:
    review = tmp_path / "review.csv"
    review.write_text("kyleclo.com,accept,CC-BY-4.0,jd,2025-01-02,note\n")
    r = tmp_path / "r.toml"
    r.write_text(f'[license]\ndomain_review = "{review}"\n')
    with pytest.raises(ConfigError, match="first line must name the columns"):
        load_recipe(r)


# and: URLs keep their bytes; deep pages say why they have no text
def test_non_utf8_urls_keep_their_bytes_and_deep_pages_give_a_reason(tmp_path: Path, recipe) -> None:
    deep = "<html><body>" + "<div>" * 100_000 + "<p>" + TEXT + "</p>" + "</div>" * 100_000 + "</body></html>"
    src = warc(tmp_path / "odd.warc", [("https://e.example/PLACEHOLDER", "2019-05-01T00:00:00Z", deep)])
    src.write_bytes(src.read_bytes().replace(b"PLACEHOLDER", b"caf\xe9-\xff"))
    store = tmp_path / "s"
    ingest([str(src)], store, recipe)
    decide(store, recipe)
    ((url, reason, detail),) = q(store, "SELECT url, reason, reason_detail FROM documents")
    assert url == "https://e.example/caf%E9-%FF"
    assert reason == "no_text" and "nested 100003 deep" in detail


# and: damaged records say what is wrong with them (issue 14's gate)
def test_every_kind_of_damaged_record_gets_its_reason_or_flag(tmp_path: Path, recipe) -> None:
    from damaged import write_damaged_warc

    src = tmp_path / "damaged.warc.gz"
    kinds, corrupt_at = write_damaged_warc(src)
    assert len(kinds) + 1 >= 19  # the held-out crawl plants 19 kinds
    store = tmp_path / "s"
    ingest([str(src)], store, recipe)
    decide(store, recipe)
    rows = {
        r[0]: r[1:]
        for r in q(
            store, "SELECT coalesce(url, record_offset::VARCHAR), status, reason, flags, flag_detail FROM documents"
        )
    }
    assert len(rows) == len(kinds) + 1  # every record has a row, the unreadable stretch included
    assert rows[str(corrupt_at)][:2] == ("quarantined", "read_error")
    missed = []
    for k in kinds:
        status, reason, flags, detail = rows[k.url]
        if k.reason is not None:
            ok = reason == k.reason and status in ("dropped", "quarantined")
        else:  # kept despite the damage, which the row names (and details)
            ok = status == "kept" and set(k.flags) <= set(flags) and all(f in detail for f in k.flags)
        if not ok:
            missed.append((k.name, status, reason, flags))
    assert not missed, missed
    # keeping truncated pages is the recipe's choice, applied by decide without reading the WARC again
    truncated = {k.url for k in kinds if {"http_truncated", "warc_truncated"} & set(k.flags)}
    drop = tmp_path / "drop.toml"
    drop.write_text('[read]\ntruncated = "drop"\n')
    decide(store, load_recipe(drop))
    dropped = {
        r[0]: r[1] for r in q(store, "SELECT url, reason_detail FROM documents WHERE reason = 'truncated_payload'")
    }
    assert set(dropped) == truncated and all("truncated" in d for d in dropped.values())
    decide(store, recipe)
    assert q(store, "SELECT count(*) FROM documents WHERE reason = 'truncated_payload'") == [(0,)]


def test_every_guarantee_is_documented() -> None:
    doc = (REPO_ROOT / "docs" / "guarantees.md").read_text(encoding="utf-8")
    tests = [n for n in globals() if n.startswith("test_") and n != "test_every_guarantee_is_documented"]
    missing = [n for n in tests if n not in doc]
    assert not missing, f"docs/guarantees.md does not cite {missing}"
    assert os.path.basename(__file__) in doc
