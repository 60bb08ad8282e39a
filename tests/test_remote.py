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


# --- mixes and reports on S3: `curate mix --out s3://…`, `curate trace s3://…`, `curate report --mix/--out s3://…`

S3_MIX = """
name = "s3-mix"
version = "1"
seed = 11

[mix]
formats = {formats}
max_tokens_per_shard = 20000

[[mix.buckets]]
name = "all"
where = "status = 'kept'"
"""


def mix_file(tmp: Path, formats: tuple[str, ...] = ("datatrove", "megatron", "jsonl", "parquet")) -> Path:
    path = tmp / f"mix-{len(formats)}.toml"
    path.write_text(S3_MIX.format(formats=json.dumps(list(formats))), encoding="utf-8")
    return path


def bucket_files(client, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix/`` of ``bucket``, by name below the prefix, with its bytes."""
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        for o in page.get("Contents", [])
    ]
    return {k[len(prefix) + 1 :]: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def s3_mixes(s3, sample_run, tmp_path_factory) -> Iterator[dict]:
    """A copy of the sample run's folder (so the mixes recorded here touch no other test's store), a mix of it in
    every format written locally and, by the command as a user runs it, to s3://mixes/v1."""
    import boto3

    root = tmp_path_factory.mktemp("s3mix")
    store = root / "run"
    shutil.copytree(sample_run.store.parent, store)
    recipe = mix_file(root)
    client = boto3.client("s3")
    client.create_bucket(Bucket="mixes")
    from curate.run.commands import mix

    local = root / "local"
    mix(store, local, mix_recipe=recipe)
    p = subprocess.run(
        [*CLI, "mix", "--store", str(store), "--out", "s3://mixes/v1/", "--mix", str(recipe), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    yield {
        "store": store,
        "local": local,
        "recipe": recipe,
        "client": client,
        "root": root,
        "cli": json.loads(p.stdout),
    }


@pytest.mark.slow
def test_a_mix_written_to_s3_is_the_local_mix_byte_for_byte_and_the_store_names_the_url(s3_mixes) -> None:
    client, local = s3_mixes["client"], s3_mixes["local"]
    remote = bucket_files(client, "mixes", "v1")
    assert {n for n in remote if n.endswith((".ds", ".bin", ".jsonl"))} >= {"mix_00000.ds", "mix_00001.ds"}
    assert remote == folder_files(local)  # every file, the manifest and ATTRIBUTION.md included; no upload marker
    assert s3_mixes["cli"]["shards"] >= 2 and s3_mixes["cli"]["out"] == "s3://mixes/v1/"
    where = [str(local.resolve()), "s3://mixes/v1"]
    mixes = q(s3_mixes["store"], "SELECT out, documents, tokens FROM mixes WHERE out IN (?, ?) ORDER BY mix_id", where)
    assert [m[0] for m in mixes] == where and mixes[0][1:] == mixes[1][1:]  # the local mix, then the URL
    per_doc = """SELECT m.out, list((d.doc_id, d.entries, d.tokens) ORDER BY d.doc_id) FROM mix_documents d
                 JOIN mixes m USING (mix_id) WHERE m.out IN (?, ?) GROUP BY m.out ORDER BY m.out"""
    (_, a), (_, b) = q(s3_mixes["store"], per_doc, where)
    assert a == b and a  # the same documents recorded, read from the staged sidecar
    assert not [p for p in (s3_mixes["store"] / "work").iterdir() if "upload" in p.name]  # the staging is gone


@pytest.mark.slow
def test_a_token_traced_from_the_s3_shard_gives_what_the_local_shard_gives(s3_mixes) -> None:
    from typer.testing import CliRunner

    from curate.cli import app
    from curate.trace import trace

    store, local = s3_mixes["store"], s3_mixes["local"]
    manifest = json.loads((local / "manifest.json").read_text(encoding="utf-8"))
    for shard in manifest["shards"]:
        for fmt in ("datatrove", "megatron"):
            name = shard["files"][fmt]["shard"]
            for index in (0, shard["tokens"] // 2, -1):
                here = trace(local / name, index, store, read_warc=False).as_dict()
                there = trace(f"s3://mixes/v1/{name}", index, store, read_warc=False).as_dict()
                assert there["shard"] == f"s3://mixes/v1/{name}" and there["token"] is not None
                assert there["text"] is not None  # the tokens were read and decoded from the bucket
                for key in ("shard", "sidecar", "notes"):
                    here.pop(key), there.pop(key)
                assert there == here, (name, index)
    first = manifest["shards"][0]["files"]["datatrove"]["shard"]
    t = trace(f"s3://mixes/v1/{first}", 3, store, read_warc=False)
    assert any("records this mix folder as mix" in n for n in t.notes)  # the store's record of the URL is found
    with pytest.raises(InputError, match=r"nothing at s3://mixes/none: no such bucket or prefix"):
        trace(f"s3://mixes/none/{first}", 3, store)
    r = CliRunner().invoke(app, ["trace", f"s3://mixes/v1/{first}", "3", "--store", str(store), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["entry"]["doc_id"] == t.doc_id and out["record"]["verified"]  # and the WARC record re-read, checked


@pytest.mark.slow
def test_a_report_reads_a_mix_on_s3_and_is_uploaded_to_s3(s3_mixes, tmp_path: Path) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from curate.errors import InputError
    from curate.run.commands import report

    store, local, client = s3_mixes["store"], s3_mixes["local"], s3_mixes["client"]
    here = report(store, tmp_path / "r" / "report.html", mix_dir=local)
    # an earlier report's page of a document this store no longer has, and a file of the user's beside the report
    client.put_object(Bucket="mixes", Key="reports/one/provenance/doc/gone.html", Body=b"old")
    client.put_object(Bucket="mixes", Key="reports/one/notes.txt", Body=b"mine")
    there = report(store, "s3://mixes/reports/one/report.html", mix_dir="s3://mixes/v1")
    assert there == "s3://mixes/reports/one/report.html"
    uploaded = bucket_files(client, "mixes", "reports/one")
    assert uploaded.pop("notes.txt") == b"mine" and "provenance/doc/gone.html" not in uploaded
    html = uploaded.pop("report.html").decode("utf-8")
    assert 'href="s3://mixes/v1/ATTRIBUTION.md"' in html  # the remote mix's attribution list, at its URL
    assert 'href="../../local/ATTRIBUTION.md"' not in html and "provenance" in html
    exports = folder_files(Path(here).parent / "provenance")
    assert set(uploaded) == {f"provenance/{n}" for n in exports}
    for name in ("kept_documents.csv", "documents.csv", "certificates.csv"):  # mix tokens from the remote sidecar
        assert uploaded[f"provenance/{name}"] == exports[name], name
    kept = pq.read_table(Path(here).parent / "provenance" / "kept_documents.parquet", columns=["mix_tokens"])
    assert q(store, "SELECT tokens FROM mixes WHERE out = 's3://mixes/v1'") == [(pc.sum(kept["mix_tokens"]).as_py(),)]
    with pytest.raises(InputError, match=r"holds no manifest\.json"):
        report(store, tmp_path / "r2" / "report.html", mix_dir="s3://mixes/reports")


@pytest.mark.slow
def test_a_mix_on_s3_is_replaced_only_with_overwrite_and_never_over_other_files(s3_mixes) -> None:
    from curate.run.commands import mix

    store, local, client, root = s3_mixes["store"], s3_mixes["local"], s3_mixes["client"], s3_mixes["root"]
    one = mix_file(root, ("datatrove",))
    mix(store, "s3://mixes/ow", mix_recipe=s3_mixes["recipe"])
    before = bucket_files(client, "mixes", "ow")
    with pytest.raises(ConfigError, match="already holds another mix; pass --overwrite"):
        mix(store, "s3://mixes/ow", mix_recipe=one)
    assert bucket_files(client, "mixes", "ow") == before
    mix(store, "s3://mixes/ow", mix_recipe=one, overwrite=True)
    after = bucket_files(client, "mixes", "ow")
    assert not any(n.endswith((".bin", ".idx", ".jsonl")) for n in after)  # the old mix's other formats are gone
    ds = {n for n in after if ".ds" in n}
    assert ds and all(after[n] == before[n] for n in ds)  # the same tokens, whichever formats are written
    assert json.loads(after["manifest.json"])["format"] == ["datatrove"]
    client.put_object(Bucket="mixes", Key="mine/notes.txt", Body=b"mine")
    with pytest.raises(ConfigError, match="not a mix"):
        mix(store, "s3://mixes/mine", mix_recipe=one, overwrite=True)
    assert bucket_files(client, "mixes", "mine") == {"notes.txt": b"mine"}
    n_mixes = q(store, "SELECT count(*) FROM mixes")
    with pytest.raises(ConfigError, match="bucket 'no-such-bucket' does not exist"):
        mix(store, "s3://no-such-bucket/v1", mix_recipe=one)
    assert q(store, "SELECT count(*) FROM mixes") == n_mixes  # nothing recorded
    assert folder_files(local)  # untouched


@pytest.mark.slow
def test_an_upload_stopped_midway_leaves_no_manifest_and_a_rerun_replaces_it(s3_mixes, tmp_path: Path) -> None:
    from curate.errors import OutputError
    from curate.mix import MANIFEST
    from curate.remote import UPLOAD_MARKER, check_mix_prefix, publish
    from curate.run.commands import mix
    from curate.trace import trace

    store, local, client = s3_mixes["store"], s3_mixes["local"], s3_mixes["client"]
    staged = tmp_path / "staged"
    shutil.copytree(local, staged)
    done: list[str] = []

    def stop_after_three(name: str) -> None:  # the process is interrupted (Ctrl-C) in the middle of the upload
        done.append(name)
        if len(done) == 3:
            raise KeyboardInterrupt

    mix(store, "s3://mixes/cut", mix_recipe=s3_mixes["recipe"])  # an older mix there: it stops looking complete
    with pytest.raises(KeyboardInterrupt):
        publish(staged, "s3://mixes/cut", last=MANIFEST, progress=stop_after_three)
    partial = bucket_files(client, "mixes", "cut")
    assert MANIFEST not in partial and UPLOAD_MARKER in partial and all(n in partial for n in done)
    check_mix_prefix("s3://mixes/cut", MANIFEST, overwrite=False)  # an unfinished upload is not another mix
    mix(store, "s3://mixes/cut", mix_recipe=s3_mixes["recipe"])  # the rerun, without --overwrite
    assert bucket_files(client, "mixes", "cut") == folder_files(local)

    # the endpoint goes away: a clear error, and the store records no mix
    import s3fs

    n_mixes = q(store, "SELECT count(*) FROM mixes")
    saved = os.environ["AWS_ENDPOINT_URL"]
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        with pytest.raises(OutputError, match=r"cannot reach s3://mixes/gone"):
            mix(store, "s3://mixes/gone", mix_recipe=s3_mixes["recipe"])
        with pytest.raises(InputError, match=r"cannot read s3://mixes/cut: .*(Connect|connect)"):
            trace("s3://mixes/cut/mix_00000.ds", 0, read_warc=False)
    finally:
        os.environ["AWS_ENDPOINT_URL"] = saved
        s3fs.S3FileSystem.clear_instance_cache()
    assert q(store, "SELECT count(*) FROM mixes") == n_mixes


def s3_keys(client, bucket: str, prefix: str = "") -> list[str]:
    """Every key under ``prefix`` in ``bucket`` (all pages)."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.mark.slow
def test_kill_9_in_stage_1_with_the_work_folder_on_s3_then_resume_equals_an_uninterrupted_run(
    s3, sample_run, tmp_path: Path
) -> None:
    """A real `curate run` of the sample with ``executor.work`` on S3 (moto server), its process group SIGKILLed
    in stage 1 once a task has finished (its completion marker is in the bucket) and others have not, then rerun
    with --resume: the store rows and mix bytes of the uninterrupted local run."""
    import signal

    import boto3

    from curate.mix import MANIFEST
    from curate.resources import SAMPLE_DIR

    from conftest import NOT_COMPARED as RUN_IDS
    from conftest import curate_process

    client = boto3.client("s3")
    client.create_bucket(Bucket="killed")
    recipe = tmp_path / "r.toml"
    recipe.write_text('[executor]\nwork = "s3://killed/runs/"\n', encoding="utf-8")
    out = tmp_path / "out"
    args = ("run", str(SAMPLE_DIR), "--out", str(out), "--recipe", str(recipe), "-q")
    p = curate_process(*args)  # inherits the moto endpoint and keys (the fixture put them in os.environ)
    deadline = time.monotonic() + 600

    def markers() -> list[str]:
        return [k for k in s3_keys(client, "killed", "runs/") if "/logs/completions/" in k]

    while not markers():
        assert p.poll() is None, f"the run ended (rc {p.returncode}) before it could be killed: {p.stderr.read()}"
        assert time.monotonic() < deadline, "no stage-1 task finished"
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    done = markers()
    tasks = json.loads(
        client.get_object(Bucket="killed", Key=done[0].split("/logs/")[0] + "/tasks.json")["Body"].read()
    )
    assert 1 <= len(done) < tasks["tasks"], done  # killed in stage 1: some tasks finished, some not
    assert not (out / "COMPLETE.json").exists()
    p = curate_process(*args[:-1], "--resume", "-q")
    _, err = p.communicate(timeout=900)
    assert p.returncode == 0, err
    assert len(markers()) == tasks["tasks"]
    reference = sample_run.store.parent
    for table in STORE_TABLES:
        assert store_rows(out, table, RUN_IDS) == store_rows(reference, table, RUN_IDS), table
    names = sorted(p.name for p in (out / "mix").iterdir())
    assert names == sorted(p.name for p in (reference / "mix").iterdir())
    for name in names:
        if name != MANIFEST:  # the manifest names the recipe, whose [executor] differs
            assert (out / "mix" / name).read_bytes() == (reference / "mix" / name).read_bytes(), name
    assert (out / "COMPLETE.json").exists()


def test_dedup_with_the_work_folder_on_s3_keeps_its_edges_beside_the_store(s3, tmp_path: Path) -> None:
    """``executor.work`` on S3 is stage 1's; a dedup pass's bucket tasks write their edges under the store's own
    ``work/`` (they open the store, a local file, anyway): nothing goes to the bucket, and the pass split into
    bucket tasks gives the edges and clusters of a single-task local pass."""
    import boto3
    from test_dedup import _clusters, _near_dup_docs, _store

    from curate.run.commands import dedup

    client = boto3.client("s3")
    client.create_bucket(Bucket="dedupwork")
    recipe_file = tmp_path / "r.toml"
    recipe_file.write_text('[executor]\nwork = "s3://dedupwork/w/"\n[dedup]\ntasks = 2\n', encoding="utf-8")
    remote = load_recipe(recipe_file)
    local = load_recipe(None)
    docs = _near_dup_docs()
    a, b = _store(tmp_path / "a", docs, local), _store(tmp_path / "b", docs, local)
    assert dedup(a, remote).clusters == dedup(b, local).clusters == 12
    assert _clusters(a) == _clusters(b)
    assert store_rows(a, "dup_edges", frozenset({"dedup_pass"})) == store_rows(
        b, "dup_edges", frozenset({"dedup_pass"})
    )
    assert s3_keys(client, "dedupwork") == []


@pytest.mark.slow
def mixes_recorded(store: Path) -> str:
    """The store's count of mixes, read in a process of its own: reopening in the test's process a store that a
    failed command left behind has hung in DuckDB's instance cache (``DBInstanceCache::GetInstanceInternal``)."""
    code = (
        "import sys, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.sql('SELECT count(*) FROM mixes').fetchall())"
    )
    args = [sys.executable, "-c", code, str(store / "provenance.duckdb")]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout


def test_a_full_local_disk_while_staging_a_mix_for_s3_is_a_clear_error_and_uploads_nothing(
    s3_mixes, tmp_path: Path
) -> None:
    from test_guarantees import small_filesystem

    store = tmp_path / "store"
    store.mkdir()
    shutil.copy(s3_mixes["store"] / "provenance.duckdb", store)
    n_mixes = mixes_recorded(store)
    recipe = tmp_path / "one-worker.toml"  # its tasks run in the command's process, so the OSError reaches it
    recipe.write_text(s3_mixes["recipe"].read_text(encoding="utf-8") + "\n[executor]\nworkers = 1\n", encoding="utf-8")
    with small_filesystem(store / "work", "64k"):  # the staging folder is under the store's work/
        p = subprocess.run(
            [*CLI, "mix", "--store", str(store), "--out", "s3://mixes/full", "--mix", str(recipe)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert p.returncode == 2 and "No space left" in p.stderr and "Traceback" not in p.stderr, p.stderr
        assert not [x for x in (store / "work").iterdir() if "mix-upload" in x.name]
    assert bucket_files(s3_mixes["client"], "mixes", "full") == {}
    assert mixes_recorded(store) == n_mixes  # nothing recorded


def test_inputs_and_outputs_agree_on_what_is_remote() -> None:
    """The reader and the outputs use one predicate: fsspec's protocol, with file:// and local:// local."""
    from curate.read.inputs import is_remote
    from curate.remote import is_url

    cases = {
        "s3://bucket/a.warc.gz": True,
        "https://data.commoncrawl.org/x": True,
        "memory://bucket/x": True,
        "file:///tmp/a.warc.gz": False,
        "local:///tmp/a.warc.gz": False,
        "/tmp/a.warc.gz": False,
        "crawl/a.warc.gz": False,
    }
    assert {u: is_remote(u) for u in cases} == cases
    assert {u: is_url(u) for u in cases} == cases
    assert not is_url(Path("s3:/bucket"))  # a Path is never a URL
