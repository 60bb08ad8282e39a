"""Remote inputs against real local servers: WARCs read from an S3-compatible server (moto in server mode) give
the store a local ingest gives; an unreachable URL is retried with backoff, then quarantined as unreachable (not as
a missing file); ``--strict`` exits non-zero naming it, and ``--retry-quarantined`` reads it alone later."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from curate.errors import ConfigError, InputError
from curate.read.inputs import UnreachableInput, open_input, resolve_inputs
from curate.recipe import load_recipe
from curate.run.ingest import ingest, plan_ingest, quarantined_inputs, run_stages
from curate.run.progress import NullReporter

from conftest import STORE_TABLES, free_port, store_rows, warc_fixture
from conftest import store_query as q

NOT_COMPARED = frozenset({"started_at", "finished_at", "run_id", "warc_file"})  # warc_file: the URL vs the path
FILES = ("example.warc.gz", "sample-0000.warc.gz")
CLI = (sys.executable, "-m", "curate.cli")


def same_stores(a: Path, b: Path) -> None:
    for table in STORE_TABLES:
        assert store_rows(a, table, NOT_COMPARED) == store_rows(b, table, NOT_COMPARED), table


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, dict[str, bool]]]:
    """A real HTTP server on 127.0.0.1 serving copies of FILES; ``state["down"]`` makes it answer 503 to all."""
    root = tmp_path / "www"
    root.mkdir()
    for name in FILES:
        shutil.copy(warc_fixture(name), root / name)
    state = {"down": False}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, directory=str(root), **kw)

        def send_head(self):  # http.server's hook: 503 while down
            if state["down"]:
                self.send_error(503, "down for maintenance")
                return None
            return super().send_head()

        def log_message(self, *a) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def test_a_refused_connection_is_retried_with_backoff_then_unreachable_and_a_404_is_missing(web) -> None:
    url, _ = web
    dead = f"http://127.0.0.1:{free_port()}/gone.warc.gz"
    started = time.monotonic()
    with pytest.raises(UnreachableInput, match="after 3 tries"):
        open_input(dead, attempts=3, backoff_s=0.2)
    assert time.monotonic() - started >= 0.2 + 0.4  # waited between the tries, doubling
    with pytest.raises(FileNotFoundError):
        open_input(f"{url}/no-such.warc.gz", attempts=3, backoff_s=5)  # not retried: it would take 15 s
    with open_input(f"{url}/example.warc.gz") as fh:
        assert fh.read(2) == b"\x1f\x8b"


@pytest.mark.slow
def test_strict_names_unreachable_inputs_and_retry_quarantined_reads_them_alone(web, tmp_path: Path) -> None:
    url, state = web
    store, clean = tmp_path / "s", tmp_path / "clean"
    local, remote = str(warc_fixture(FILES[1])), f"{url}/{FILES[0]}"
    state["down"] = True
    p = subprocess.run(
        [sys.executable, "-m", "curate.cli", "ingest", local, remote, "--store", str(store), "--strict", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert p.returncode != 0
    assert remote in p.stderr and "unreachable_input" in p.stderr and "--retry-quarantined" in p.stderr
    # the readable input was loaded; the unreachable one is one quarantined row saying so, not a missing file
    assert q(
        store, "SELECT ingest_reason, ingest_detail LIKE '%503%' FROM documents WHERE warc_file = ?", [remote]
    ) == [("unreachable_input", True)]
    assert q(store, "SELECT count(*) > 10 FROM documents WHERE warc_file = ?", [local]) == [(True,)]
    assert quarantined_inputs(store) == [remote]

    state["down"] = False
    p = subprocess.run(
        [sys.executable, "-m", "curate.cli", "ingest", "--retry-quarantined", "--store", str(store), "--strict", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    assert quarantined_inputs(store) == []
    recipe = load_recipe(None)
    ingest([local, remote], clean, recipe)
    same_stores(store, clean)
    again = ingest([local, remote], store, recipe)  # both are known now: nothing is read twice
    assert again.added == 0 and again.unread == []


def test_retries_and_backoff_are_recipe_keys_and_bad_values_are_refused(web, tmp_path: Path) -> None:
    url, state = web
    state["down"] = True
    recipe_file = tmp_path / "r.toml"
    recipe_file.write_text("[read]\nattempts = 2\nbackoff_s = 0.1\n", encoding="utf-8")
    recipe = load_recipe(recipe_file)
    assert (recipe.read.attempts, recipe.read.backoff_s) == (2, 0.1)
    remote = f"{url}/{FILES[0]}"
    result = ingest([str(warc_fixture(FILES[1])), remote], tmp_path / "s", recipe)
    assert result.unread == [
        f"{remote}: unreachable_input: {q(tmp_path / 's', 'SELECT ingest_detail FROM documents WHERE warc_file = ?', [remote])[0][0]}"
    ]
    assert "unreachable after 2 tries" in result.unread[0] and "503" in result.unread[0]
    default = load_recipe(None)
    assert (default.read.attempts, default.read.backoff_s) == (5, 0.5)  # pipelines/default.toml
    for body, message in (
        ("attempts = 0", r"read\.attempts must be within \[1, 20\]"),
        ("attempts = 50", r"read\.attempts must be within"),
        ("attempts = 2.5", r"'read\.attempts' must be an integer"),
        ("backoff_s = -1", r"read\.backoff_s must be within \[0, 600\] seconds"),
        ("backoff_s = 1e9", r"read\.backoff_s must be within"),
        ('backoff_s = "1s"', r"'read\.backoff_s' must be a number"),
    ):
        recipe_file.write_text(f"[read]\n{body}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            load_recipe(recipe_file)


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A moto S3 server on 127.0.0.1 (its own process), with the environment that points boto3/s3fs at it."""
    pytest.importorskip("moto.server", reason="needs moto[server] (requirements-dev.txt)")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "moto_server did not start"
                time.sleep(0.2)
        client = boto3.client("s3")
        client.create_bucket(Bucket="crawl")
        for name in FILES:
            client.upload_file(str(warc_fixture(name)), "crawl", f"CC-MAIN-TEST/segments/{name}")
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.slow
def test_inputs_read_from_s3_give_the_store_a_local_ingest_gives(s3, tmp_path: Path) -> None:
    recipe = load_recipe(None)
    urls = resolve_inputs(["s3://crawl/CC-MAIN-TEST/segments/*.warc.gz"])
    assert urls == [f"s3://crawl/CC-MAIN-TEST/segments/{n}" for n in sorted(FILES)]
    assert resolve_inputs(["s3://crawl/CC-MAIN-TEST/"]) == urls  # a remote folder: every WARC below it
    # the command, as a user runs it: the S3 endpoint and keys come from the environment (boto3's AWS_* variables)
    p = subprocess.run(
        [*CLI, "ingest", "s3://crawl/CC-MAIN-TEST/segments/*.warc.gz", "--store", str(tmp_path / "remote"), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **s3},
    )
    assert p.returncode == 0, p.stderr
    remote = json.loads(p.stdout)
    local = ingest([str(warc_fixture(n)) for n in FILES], tmp_path / "local", recipe)
    assert remote["added"] == local.added > 0 and remote["unread"] == [] and remote["read"] == urls
    same_stores(tmp_path / "remote", tmp_path / "local")
    sha = "SELECT inputs_json::JSON->'$[*].sha256' FROM runs"
    assert sorted(q(tmp_path / "remote", sha)[0][0]) == sorted(q(tmp_path / "local", sha)[0][0])  # the same bytes
    with pytest.raises(InputError, match=r"nope\.warc\.gz"):  # nothing at all could be read
        ingest(["s3://crawl/CC-MAIN-TEST/segments/nope.warc.gz"], tmp_path / "missing", recipe)
    assert q(tmp_path / "missing", "SELECT ingest_reason FROM documents") == [("unreadable_file",)]  # not unreachable


@pytest.mark.slow
def test_the_work_folder_on_s3_survives_an_interrupted_ingest_and_resumes_to_the_store_a_local_run_gives(
    s3, tmp_path: Path
) -> None:
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket="work")
    for name in FILES:  # inputs of this test only: they are deleted before the resume
        client.upload_file(str(warc_fixture(name)), "crawl", f"resume/{name}")
    urls = [f"s3://crawl/resume/{n}" for n in sorted(FILES)]
    recipe_file = tmp_path / "r.toml"
    # one worker: the tasks run in this process, which has the moto endpoint in its environment
    recipe_file.write_text('[executor]\nworkers = 1\nwork = "s3://work/curate/"\n', encoding="utf-8")
    recipe = load_recipe(recipe_file)
    store = tmp_path / "store"
    plan = plan_ingest(store, recipe, urls, resume=False, started=dt.datetime.now(dt.UTC))
    assert plan.shards.startswith(f"s3://work/curate/ingest-{plan.run_id}-")  # and the store's hash
    run_stages(plan.stages[:1], plan.work, NullReporter(), total_bytes=None, quiet=True)  # killed before the load
    prefix = plan.shards.removeprefix("s3://work/") + "/"
    keys = {o["Key"][len(prefix) :] for o in client.list_objects_v2(Bucket="work", Prefix=prefix)["Contents"]}
    assert {"tasks.json", "documents/00000.parquet", "documents/00001.parquet", "inputs/00000.json"} <= keys
    assert {"logs/completions/00000", "logs/completions/00001", "logs/logs/task_00000.log"} <= keys
    assert not any(k.endswith(".tmp") for k in keys)
    assert not (plan.work / "documents").exists() and not store.joinpath("provenance.duckdb").exists()
    for name in FILES:  # a resume that read the inputs again would find them gone (unreadable_file rows)
        client.delete_object(Bucket="crawl", Key=f"resume/{name}")
    result = ingest(urls, store, recipe, resume=True)  # the finished tasks are not run again: only the load
    assert result.unread == [] and result.added > 0
    local = tmp_path / "local"
    ingest([str(warc_fixture(n)) for n in FILES], local, load_recipe(None))
    same_stores(store, local)
    left = {o["Key"][len(prefix) :] for o in client.list_objects_v2(Bucket="work", Prefix=prefix)["Contents"]}
    assert not any(k.startswith(("documents/", "evidence/", "optout/")) for k in left)  # loaded: removed from S3
    assert "logs/completions/00000" in left  # the markers stay: a later --resume finds the tasks done
    # another task count on resume is refused, reading the count stage 1 wrote to S3
    two = load_recipe(recipe_file)
    with pytest.raises(ConfigError, match="split into 2 tasks"):
        plan_ingest(
            store,
            dataclasses.replace(two, executor=dataclasses.replace(two.executor, tasks=1)),
            urls,
            resume=True,
            started=dt.datetime.now(dt.UTC),
        )
