"""A stage-1 step that raises on one input file: that file becomes one quarantined ``file_failed`` row naming it
and the exception, the task goes on with its other files and the other tasks with theirs, every record is
accounted for, ``--strict`` exits non-zero listing the file, and ``--retry-quarantined`` reads it again alone.

The failure is driven by a test step (:class:`Explode`, a stand-in for a bug in a step) put into the real stage-1
pipeline, so the library's ``ingest`` and the CLI run exactly as in production around it. Real inputs that used to
fail a file this way (a JSON escape of a lone surrogate: a string Parquet cannot hold) must not: see the last test.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from typer.testing import CliRunner

import curate.run.ingest as ingest_module
from curate.cli import app
from curate.read.warc import ProvenanceWarcReader
from curate.recipe import Recipe, load_recipe
from curate.run.ingest import ingest, quarantined_inputs
from curate.run.shards import ShardWriter
from curate.schema import Flag, Meta, Reason

from conftest import store_query, warc_fixture

GOOD = "example.warc.gz"
BODY = "Ordinary words about gardening, rain in the valley and the price of bread at the market. " * 30


def write_warc(path: Path, heads: list[str]) -> None:
    """A gzipped WARC with one HTML response per entry of ``heads`` (extra markup for its <head>)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for i, head in enumerate(heads):
            html = (
                f"<html><head><title>page {i}</title>{head}</head><body><article><p>{BODY}</p></article></body></html>"
            )
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            record = writer.create_warc_record(
                f"http://example.org/{i}",
                "response",
                payload=io.BytesIO(html.encode()),
                http_headers=http,
                warc_headers_dict={"WARC-Date": f"2020-01-0{i + 1}T00:00:00Z"},
            )
            writer.write_record(record)


def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """(the file a step will raise on: three ordinary pages, a real fixture that reads cleanly)."""
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    bad = folder / "failing.warc.gz"
    write_warc(bad, ["", "", ""])
    good = folder / GOOD
    shutil.copy(warc_fixture(GOOD), good)
    return bad, good


def by_file(store: Path) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for name, reason, detail in store_query(
        store, "SELECT warc_file_name, ingest_reason, ingest_detail FROM documents ORDER BY warc_file_name, doc_id"
    ):
        out.setdefault(name, []).append((reason, detail))
    return out


class Explode(PipelineStep):
    """A step that raises on the second record of one file (a stand-in for a bug in a step)."""

    name = "explode"
    type = "TEST"

    def __init__(self, file_name: str) -> None:
        super().__init__()
        self.file_name = file_name

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        seen = 0
        for doc in data or ():
            if doc.metadata[Meta.WARC_FILE_NAME] == self.file_name and doc.metadata.get(Meta.RECORD_TYPE):
                seen += 1
                if seen == 2:
                    raise RuntimeError("boom")
            yield doc


ONE_WORKER = "[executor]\nworkers = 1\n"  # the tasks run in this process, where the test step is defined


def one_worker(recipe: Recipe) -> Recipe:
    return dataclasses.replace(recipe, executor=dataclasses.replace(recipe.executor, workers=1))


@pytest.fixture
def exploding(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``exploding(name)``: from now on every stage-1 pipeline built has :class:`Explode` for the file ``name``
    as its last step before the writer (the real pipeline otherwise)."""

    def arm(file_name: str) -> None:
        real = ingest_module.stage1_pipeline

        def pipeline(recipe: Recipe, files: list[str], run_id: str, work: Path | str) -> list[object]:
            *steps, writer = real(recipe, files, run_id, work)
            assert isinstance(writer, ShardWriter)
            explode = Explode(file_name)
            writer.steps.append(explode)
            return [*steps, explode, writer]

        monkeypatch.setattr(ingest_module, "stage1_pipeline", pipeline)

    return arm


def test_a_file_a_step_raises_on_is_quarantined_alone_and_the_other_tasks_go_on(
    tmp_path: Path, exploding: Callable[[str], None]
) -> None:
    bad, good = inputs(tmp_path)
    recipe = one_worker(load_recipe(None))
    store = tmp_path / "store"
    exploding(bad.name)
    result = ingest([str(bad), str(good)], store, recipe)  # two tasks, one per file
    rows = by_file(store)
    assert [r[0] for r in rows[bad.name]] == [Reason.FILE_FAILED.value]  # one row stands for the whole file
    detail = rows[bad.name][0][1]
    assert detail == (
        "RuntimeError: boom (raised in step 'explode', after 1 records of the file; "
        "the last record handled was at offset 0 (http://example.org/0))"
    )
    assert result.unread == [f"{bad}: {Reason.FILE_FAILED.value}: {detail}"]
    assert result.quarantined >= 1
    # the other task's file is whole: the same rows as an ingest of that file alone
    alone = tmp_path / "alone"
    ingest([str(good)], alone, recipe)
    assert rows[good.name] == by_file(alone)[good.name]
    # every record accounted for: the runs row reconciles with the documents, and the file can be retried
    ((n_read, n_docs),) = store_query(store, "SELECT (SELECT sum(n_read) FROM runs), (SELECT count(*) FROM documents)")
    assert n_read == n_docs == len(rows[good.name]) + 1
    assert quarantined_inputs(store) == [str(bad)]


def test_strict_exits_non_zero_naming_the_file_and_retry_quarantined_reads_it_again(
    tmp_path: Path, exploding: Callable[[str], None]
) -> None:
    bad, good = inputs(tmp_path)
    store = tmp_path / "store"
    recipe = tmp_path / "one-worker.toml"
    recipe.write_text(ONE_WORKER, encoding="utf-8")
    exploding(bad.name)  # the CLI runs in this process (typer's runner), with the test step in its pipeline
    done = CliRunner().invoke(
        app, ["ingest", str(bad), str(good), "--store", str(store), "--recipe", str(recipe), "--strict", "-q"]
    )
    assert done.exit_code != 0
    assert f"{bad}: file_failed: RuntimeError: boom" in done.output
    assert "--retry-quarantined" in done.output
    n_good = len(by_file(store)[good.name])
    # the step is mended: a new process, whose pipeline is the real one, reads the file again, alone
    again = subprocess.run(
        [sys.executable, "-m", "curate.cli", "ingest", "--retry-quarantined", "--store", str(store), "--strict", "-q"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    rows = by_file(store)
    assert len(rows[bad.name]) == 3 and Reason.FILE_FAILED.value not in {r[0] for r in rows[bad.name]}
    assert len(rows[good.name]) == n_good  # not read again
    assert quarantined_inputs(store) == []


def test_a_step_raising_midway_drops_the_files_earlier_rows_and_the_task_reads_its_next_file(tmp_path: Path) -> None:
    _, good = inputs(tmp_path)
    other = tmp_path / "in" / "sample-0000.warc.gz"
    shutil.copy(warc_fixture("sample-0000.warc.gz"), other)
    files = [str(good), str(other)]
    reader = ProvenanceWarcReader(files, "run", str(tmp_path / "work" / "inputs"))
    explode = Explode(good.name)
    writer = ShardWriter(str(tmp_path / "work"), reader, [explode])
    chain = None
    for step in (reader, explode, writer):  # as datatrove's executor chains stage1_pipeline's list
        chain = step(chain, 0, 1)
    assert list(chain or ()) == []
    table = pq.read_table(tmp_path / "work" / "documents" / "00000.parquet").to_pylist()
    mine = [r for r in table if r["warc_file_name"] == good.name]
    assert [r["ingest_reason"] for r in mine] == [Reason.FILE_FAILED.value]
    assert "RuntimeError: boom (raised in step 'explode', after 1 records" in mine[0]["ingest_detail"]
    expected = sum(1 for _ in reader.read_file(str(other), []))
    assert len([r for r in table if r["warc_file_name"] == other.name]) == expected > 0
    assert writer.stats["files_failed"].total == 1
    written = json.loads((tmp_path / "work" / "inputs" / "00000.json").read_text(encoding="utf-8"))
    inventory = {e["path"]: e for e in written}
    assert inventory[str(good)]["sha256"] is None and inventory[str(other)]["sha256"]  # retried by --retry-quarantined


def test_a_value_parquet_cannot_hold_no_longer_fails_its_file(tmp_path: Path) -> None:
    """A WAT record whose JSON escapes a lone surrogate in a licence link (the reader parses it, no tagger cleans
    it): the shard writer makes the string valid, the record keeps its row and its evidence, flagged."""
    from warcio.warcwriter import WARCWriter

    url = "https://creativecommons.org/licenses/by-sa/4.0/"
    links = [{"path": "LINK@/href", "url": url + "\ud800", "rel": "license"}]
    wat = {"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {"Head": {"Link": links}}}}}}
    body = json.dumps(wat).encode()  # ASCII: the surrogate is written as the escape \ud800
    assert b"\\ud800" in body
    path = tmp_path / "surrogate.warc.wat.gz"
    with path.open("wb") as fh:
        w = WARCWriter(fh, gzip=True)
        w.write_record(
            w.create_warc_record(
                "https://an.wikipedia.org/wiki/Escopete",
                "metadata",
                payload=io.BytesIO(body),
                warc_content_type="application/json",
            )
        )
    store = tmp_path / "store"
    result = ingest([str(path), str(warc_fixture(GOOD))], store, load_recipe(None))
    assert result.unread == []
    rows = store_query(
        store,
        """SELECT d.ingest_reason, d.flags, d.flag_detail, e.raw_value, e.spdx_id
           FROM documents d JOIN license_evidence e USING (doc_id) WHERE d.warc_file_name = ?""",
        [path.name],
    )
    ((reason, flags, flag_detail, raw_value, spdx_id),) = rows
    assert (reason, flags, raw_value, spdx_id) == (
        Reason.WAT_METADATA.value,
        [Flag.DECODE_ERRORS.value],
        url + "\ufffd",
        "CC-BY-SA-4.0",
    )
    assert json.loads(flag_detail)[Flag.DECODE_ERRORS.value].endswith(": 2")  # the link's value and its snippet
