"""Resume after kill -9: a real run killed (its whole process group) in stage 1 and again in a later stage, then
resumed, gives exactly the store rows and mix bytes of an uninterrupted run; a resumed finished run never loses
its outputs; a shard loaded twice adds nothing; a resume with another task count is refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from curate.errors import ConfigError
from curate.recipe import load_recipe
from curate.resources import SAMPLE_DIR
from curate.run.ingest import component_versions, load_ingest, plan_ingest, run_stages
from curate.run.progress import NullReporter

from conftest import NOT_COMPARED, STORE_TABLES, curate_process, store_query, store_rows, warc_fixture

LATER_STAGES = ("work/dedup-*", ".mix.work-*", ".mix.tmp-*", ".report.html.tmp")  # dedup, mix, report at work


def rows(store: Path, table: str) -> list[tuple]:
    return store_rows(store, table, NOT_COMPARED)


def kill_when(p, out: Path, patterns: tuple[str, ...], timeout: float = 300) -> str:
    """SIGKILL ``p``'s process group as soon as one of ``patterns`` exists under ``out``; returns the pattern."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pattern in patterns:
            if any(out.glob(pattern)):
                assert p.poll() is None, f"the run ended before it could be killed: {p.stderr.read()}"
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                return pattern
        if p.poll() is not None:
            raise AssertionError(f"the run ended (rc {p.returncode}) before any of {patterns}: {p.stderr.read()}")
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGKILL)
    raise AssertionError(f"none of {patterns} appeared under {out}")


def finish(*args: str) -> str:
    p = curate_process(*args)
    _, err = p.communicate(timeout=900)
    assert p.returncode == 0, err
    return err


def assert_same_outputs(out: Path, reference: Path) -> None:
    for table in STORE_TABLES:
        assert rows(out, table) == rows(reference, table), table
    # a resumed run decides again: the same decision, recorded once more
    assert set(rows(out, "decisions")) == set(rows(reference, "decisions"))
    ours = sorted(p.name for p in (out / "mix").iterdir())
    assert ours == sorted(p.name for p in (reference / "mix").iterdir())
    for name in ours:
        assert (out / "mix" / name).read_bytes() == (reference / "mix" / name).read_bytes(), name
    assert (out / "COMPLETE.json").exists() and (out / "report.html").exists()


@pytest.mark.slow
def test_kill_9_in_stage_1_and_in_a_later_stage_then_resume_equals_an_uninterrupted_run(
    sample_run, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    p = curate_process("run", str(SAMPLE_DIR), "--out", str(out), "-q")
    kill_when(p, out, ("work/ingest-*/progress/*.json",))
    assert not (out / "COMPLETE.json").exists()
    p = curate_process("run", str(SAMPLE_DIR), "--out", str(out), "--resume", "-q")
    kill_when(p, out, LATER_STAGES)
    assert (out / "provenance.duckdb").exists()  # the ingest was loaded before the later stage started
    assert not (out / "COMPLETE.json").exists()
    finish("run", str(SAMPLE_DIR), "--out", str(out), "--resume", "-q")
    assert_same_outputs(out, sample_run.store.parent)


@pytest.mark.slow
def test_resume_on_a_finished_run_keeps_its_outputs_until_they_are_replaced(sample_run, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(sample_run.store.parent, out)
    p = curate_process("run", str(SAMPLE_DIR), "--out", str(out), "--resume", "-q")
    kill_when(p, out, (".mix.work-*", ".mix.tmp-*", ".report.html.tmp"))
    # killed while rebuilding: the store, the mix and the report of the finished run are all still there
    assert (out / "mix" / "manifest.json").exists() and (out / "report.html").exists()
    for table in STORE_TABLES:
        assert rows(out, table) == rows(sample_run.store.parent, table), table
    err = finish("run", str(SAMPLE_DIR), "--out", str(out), "--resume", "--force", "-q")
    assert "--force" not in err
    assert_same_outputs(out, sample_run.store.parent)


def test_loading_a_shard_twice_adds_nothing(tmp_path: Path) -> None:
    recipe = load_recipe(None)
    store, started = tmp_path / "s", dt.datetime.now(dt.UTC)
    plan = plan_ingest(store, recipe, [str(warc_fixture("example.warc.gz"))], resume=False, started=started)
    run_stages(plan.stages[:1], plan.work, NullReporter(), total_bytes=None, quiet=True)
    versions = component_versions(recipe)
    kw = {"run_id": plan.run_id, "versions": versions, "started": started, "lock": True}
    first = load_ingest(store, plan.work, recipe, **kw)
    before = {t: rows(store, t) for t in (*STORE_TABLES, "runs")}
    second = load_ingest(store, plan.work, recipe, **kw)  # a load task run again (killed before its marker)
    assert first > 0 and second == 0
    assert {t: rows(store, t) for t in (*STORE_TABLES, "runs")} == before


def test_resuming_with_another_task_count_is_refused(tmp_path: Path) -> None:
    recipe = load_recipe(None)
    files = [str(warc_fixture("example.warc.gz")), str(warc_fixture("sample-0000.warc.gz"))]
    store, started = tmp_path / "s", dt.datetime.now(dt.UTC)

    def with_tasks(n: int):
        return dataclasses.replace(recipe, executor=dataclasses.replace(recipe.executor, tasks=n))

    plan = plan_ingest(store, with_tasks(2), files, resume=False, started=started)
    run_stages(plan.stages[:1], plan.work, NullReporter(), total_bytes=None, quiet=True)
    with pytest.raises(ConfigError, match=r"split into 2 tasks and this one into 1 .*executor.tasks = 2"):
        plan_ingest(store, with_tasks(1), files, resume=True, started=started)
    assert plan_ingest(store, with_tasks(2), files, resume=True, started=started).stages  # the same count resumes
    assert plan_ingest(store, with_tasks(1), files, resume=False, started=started).stages  # or start over


@pytest.mark.slow
def test_a_worker_killed_midway_has_its_task_run_again_and_nothing_duplicated(sample_run, tmp_path: Path) -> None:
    import psutil

    store = tmp_path / "s"
    p = curate_process("ingest", str(SAMPLE_DIR), "--store", str(store), "-q")
    deadline = time.monotonic() + 300
    workers: list = []
    while not workers and time.monotonic() < deadline and p.poll() is None:
        if any(store.glob("work/ingest-*/progress/*.json")):
            pools = [c for c in psutil.Process(p.pid).children() if "forkserver" in " ".join(c.cmdline())]
            workers = [w for pool in pools for w in pool.children()]
        time.sleep(0.05)
    assert workers, "no pool worker to kill"
    workers[0].kill()  # SIGKILL one worker only: the pool would wait for its task forever
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    reference = sample_run.store.parent
    for table in STORE_TABLES:
        if table not in ("documents", "dup_edges"):  # the reference is deduplicated and decided: compare ingest's
            assert rows(store, table) == rows(reference, table), table
    ingest_cols = "doc_id, warc_file, record_offset, ingest_reason, ingest_detail"
    assert store_rows_sql(store, ingest_cols) == store_rows_sql(reference, ingest_cols)


def store_rows_sql(store: Path, cols: str) -> list[tuple]:
    return store_query(store, f"SELECT {cols} FROM documents ORDER BY doc_id")
