"""The sample run on real clusters: a local Ray cluster (a head and a worker process on this machine, through
datatrove's ``RayPipelineExecutor``) and a one-node Slurm cluster (``.ci/slurm-up.sh``: slurmctld and slurmd on
localhost, through datatrove's ``SlurmPipelineExecutor`` and the job dependencies it builds). Each run's store
rows and mix bytes must equal the local executor's run of the same inputs, also when Ray's worker node is
killed in the middle of stage 1.

The Ray test skips when ``ray`` is not installed (``pip install curate[ray]``); the Slurm test skips, with the
reason, when no Slurm controller answers and ``.ci/slurm-up.sh`` cannot start one here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from curate.mix import MANIFEST
from curate.recipe import load_recipe
from curate.resources import REPO_ROOT
from curate.run.progress import Snapshot

from conftest import STORE_TABLES, WALL_CLOCK, free_port, run_sample, store_query, store_rows

CLUSTER_TASKS = 4  # stage-1 tasks of a cluster run (the local run has one per file: the outputs must not care)
BUCKET_TASKS = 3  # dedup bucket tasks of a cluster run (the local run has one: the outputs must not care)
SLURM_WAIT_S = 600
STALL_S = 400  # a run with no progress for this long is hung (stages run minutes apart on a loaded machine)


def cluster_recipe(path: Path, executor: str) -> Path:
    path.write_text(
        f"[executor]\n{executor}tasks = {CLUSTER_TASKS}\nworkers = 2\nmem_per_cpu_gb = 1\n"
        f"[dedup]\ntasks = {BUCKET_TASKS}\n"
    )
    return path


class StageLog:
    """A progress reporter that records each stage's task count and end (run's ``reporter``), and when the run
    last moved (a stage began or ended, or a snapshot's records, bytes or finished tasks changed)."""

    def __init__(self) -> None:
        self.tasks: dict[str, int] = {}
        self.ended: dict[str, str] = {}
        self.moved = time.monotonic()
        self._last: tuple = ()

    def stage(self, name: str, tasks: int, total_bytes: int | None) -> None:
        self.tasks[name] = tasks
        self.moved = time.monotonic()

    def update(self, snapshot: Snapshot) -> None:
        now = (snapshot.stage, snapshot.records, snapshot.bytes, snapshot.tasks_done)
        if now != self._last:
            self._last, self.moved = now, time.monotonic()

    def end(self, name: str, summary: str) -> None:
        self.ended[name] = summary
        self.moved = time.monotonic()

    def wait(self, run: threading.Thread, stall_s: float, most_s: float) -> None:
        """Wait for ``run`` to end; fail when it makes no progress for ``stall_s`` seconds (a hang), or runs past
        ``most_s`` (a slow machine is not a hang: under load the sample run takes many times longer)."""
        deadline = time.monotonic() + most_s
        while run.is_alive():
            run.join(timeout=2)
            stalled = time.monotonic() - self.moved
            assert stalled < stall_s, f"no progress for {stalled:.0f} s; stages ended: {self.ended}"
            assert time.monotonic() < deadline, f"still running after {most_s:.0f} s; stages ended: {self.ended}"


def mix_digests(mix: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(mix.iterdir()) if p.name != MANIFEST}


def manifest(mix: Path) -> dict:
    return json.loads((mix / MANIFEST).read_text())


def row_differences(store: Path, table: str, ours: list[tuple], theirs: list[tuple], most: int = 5) -> str:
    """The rows only one side has, each as {column: value} of the columns where it differs from the other side's
    row with the same first column (the table's key), so a failure says what differed, not just where."""
    cols = [c for (c,) in store_query(store, f"SELECT column_name FROM (DESCRIBE {table})") if c not in WALL_CLOCK]
    a, b = {repr(r): r for r in ours}, {repr(r): r for r in theirs}  # (rows may hold lists: not hashable)
    mine, other = [a[k] for k in sorted(a.keys() - b.keys())], [b[k] for k in sorted(b.keys() - a.keys())]
    by_key = {repr(row[0]): row for row in other}
    lines = [f"{len(mine)} rows only in the local run, {len(other)} only in the other"]
    for row in mine[:most]:
        twin = by_key.get(repr(row[0]))
        if twin is None:
            lines.append(f"local only: {dict(zip(cols, row, strict=True))}")
        else:
            lines.append(
                f"{cols[0]}={row[0]!r}: "
                + ", ".join(f"{c}: {a!r} != {b!r}" for c, a, b in zip(cols, row, twin, strict=True) if a != b)
            )
    return "; ".join(lines)


def has_child_process(pid: int) -> bool:
    """Process ``pid`` has a live child (read from /proc; False when it is gone)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # the fields after the command name, which is in parentheses and may hold spaces: state, ppid, ...
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                return True
    return False


def ignore_missing(remove: Callable[[int], None], handler: int) -> None:
    with contextlib.suppress(ValueError):
        remove(handler)


def assert_same_outputs(local: Path, other: Path, recipe: Path) -> None:
    """The store rows (wall-clock times aside) and every mix file's bytes of two runs' folders are equal; the
    manifests differ only in the recipe's digest (the cluster run's recipe has another [executor])."""
    for table in STORE_TABLES:
        ours, theirs = store_rows(local / "provenance.duckdb", table), store_rows(other / "provenance.duckdb", table)
        assert ours == theirs, f"{table}: {row_differences(local / 'provenance.duckdb', table, ours, theirs)}"
    assert mix_digests(local / "mix") == mix_digests(other / "mix")
    a, b = manifest(local / "mix"), manifest(other / "mix")
    assert b["recipe"].pop("sha256") == load_recipe(recipe).digest
    a["recipe"].pop("sha256")
    assert a == b
    assert (other / "COMPLETE.json").is_file()


@dataclass(frozen=True)
class RayCluster:
    address: str  # host:port of the head's GCS (RAY_ADDRESS)
    worker_port: int  # the worker node's raylet (node manager) port

    def kill_worker_node(self) -> int:
        """SIGKILL the worker node's raylet (its worker processes die with it); returns its pid."""
        for proc in Path("/proc").iterdir():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"raylet") and f"--node_manager_port={self.worker_port}".encode() in cmd:
                os.kill(int(proc.name), signal.SIGKILL)
                return int(proc.name)
        raise AssertionError(f"no raylet with node manager port {self.worker_port}")


@pytest.fixture
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A Ray cluster on 127.0.0.1: a head (one CPU) and one worker node (one CPU) as separate ``ray start``
    processes, temp files under the test's temp dir; stopped (``ray stop --force``) however the test ends."""
    pytest.importorskip("ray", reason="ray is not installed: pip install curate[ray]")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp = tmp_path_factory.mktemp("ray")  # short: Ray's socket paths live under it (108-byte limit)
    port = free_port()
    address = f"127.0.0.1:{port}"
    small = ["--object-store-memory=100000000", "--num-gpus=0", "--disable-usage-stats"]
    head = [ray_bin, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=1"]
    head += ["--include-dashboard=false", f"--temp-dir={temp}"]
    worker_port = free_port()
    worker = [ray_bin, "start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1"]
    worker += [f"--node-manager-port={worker_port}"]
    env = {**os.environ, "RAY_ADDRESS": ""}
    try:
        for cmd, agent in ((head, free_port()), (worker, free_port())):
            cmd += [*small, f"--dashboard-agent-listen-port={agent}", f"--metrics-export-port={free_port()}"]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
            assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
        yield RayCluster(address, worker_port)
    finally:
        try:
            import ray

            ray.shutdown()
        finally:
            subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120, check=False)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:placement_group:DeprecationWarning")  # datatrove's call into Ray
def test_ray_run_equals_local(
    sample_run, ray_cluster: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.address)
    recipe = cluster_recipe(tmp_path / "ray.toml", 'kind = "ray"\n')
    stages = StageLog()
    got = run_sample(tmp_path / "out", recipe=recipe, reporter=stages)
    # the dedup buckets ran as BUCKET_TASKS Ray tasks (each opening the store read-only), all finished
    assert stages.tasks["dedup buckets"] == BUCKET_TASKS
    assert stages.ended["dedup buckets"] == f"{BUCKET_TASKS}/{BUCKET_TASKS} tasks done"
    alive = [n for n in ray.nodes() if n["Alive"]]
    from ray._private.state import actors  # the GCS actor table (Ray's state API needs the dashboard, off here)

    ran_on = {a["Address"]["NodeID"] for a in actors().values() if a["ActorClassName"].endswith("RankWorker")}
    assert ran_on == {n["NodeID"] for n in alive}  # datatrove's task actors ran on the head and on the worker
    assert len(alive) == 2 and ray.get_runtime_context().gcs_address.endswith(f":{ray_cluster.address.split(':')[1]}")
    assert_same_outputs(sample_run.store.parent, got.store.parent, recipe)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:placement_group:DeprecationWarning")
def test_ray_worker_node_death_reruns_its_tasks(
    sample_run, ray_cluster: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The worker node dies (raylet SIGKILLed) while a stage-1 task runs on it: Ray reports the task lost,
    datatrove submits its rank again on the head, and the outputs are still exactly the local run's."""
    import ray
    from loguru import logger
    from ray._private.state import actors

    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.address)
    ray.init(address=ray_cluster.address)
    (worker,) = [n["NodeID"] for n in ray.nodes() if n["NodeManagerPort"] == ray_cluster.worker_port]
    recipe = cluster_recipe(tmp_path / "ray.toml", 'kind = "ray"\n')
    out = tmp_path / "out"
    result: list[object] = []
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")  # datatrove logs through loguru
    request.addfinalizer(lambda: ignore_missing(logger.remove, sink))  # (a local task resets loguru's handlers)
    stages = StageLog()
    run = threading.Thread(target=lambda: result.append(run_sample(out, recipe=recipe, reporter=stages)), daemon=True)
    run.start()
    deadline = time.monotonic() + 600
    # kill the node once its rank is inside its task: the actor runs the rank in a process pool, so it has a child.
    # Killed earlier, while datatrove's submission thread still waits for the new actor's address, the error stays
    # in that thread and the executor waits for the rank forever (datatrove 0.10's RayTaskManager.submit_task)
    while not any(
        a["ActorClassName"].endswith("RankWorker")
        and a["State"] == "ALIVE"
        and a["Address"]["NodeID"] == worker
        and has_child_process(a["Pid"])
        for a in actors().values()
    ):
        assert run.is_alive() and time.monotonic() < deadline, "no task started on the worker node"
        time.sleep(0.2)
    ray_cluster.kill_worker_node()
    stages.wait(run, stall_s=STALL_S, most_s=1800)
    assert result, "the run did not finish after its worker node died"
    lost = [m for m in warnings if "failed with RayActorError" in m or "failed with retriable error" in m]
    assert lost, warnings  # datatrove saw the task lost with the node (and so resubmitted its rank)
    assert_same_outputs(sample_run.store.parent, out, recipe)


def slurm_reason() -> tuple[str | None, bool]:
    """(None when a Slurm controller answers with an idle node, starting one with .ci/slurm-up.sh when none does
    and this process may (root), else why not, with the script's output (the daemons' logs); whether this call
    started the daemons)."""
    if shutil.which("sinfo"):
        done = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and "idle" in done.stdout.split():
            return None, False
    if os.geteuid() != 0:
        return "no Slurm controller answers and starting one (.ci/slurm-up.sh) needs root", False
    script = REPO_ROOT / ".ci" / "slurm-up.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        return f".ci/slurm-up.sh could not start Slurm here:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}", True
    return None, True


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[None]:
    """A Slurm cluster for the session: the one that answers, or one started here and stopped at the end."""
    reason, started = slurm_reason()
    try:
        if reason:
            pytest.skip(reason)
        yield
    finally:
        if started:
            subprocess.run(["bash", str(REPO_ROOT / ".ci" / "slurm-down.sh")], capture_output=True, check=False)


def wait_for_jobs(job_ids: list[str], timeout_s: float) -> None:
    """Until none of ``job_ids`` is pending or running in squeue (or ``timeout_s`` has passed: fail)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["squeue", "-h", "-o", "%i %T", "-j", ",".join(job_ids)], capture_output=True, text=True, check=False
        )
        if done.returncode == 0 and not done.stdout.strip():
            return
        time.sleep(3)
    pytest.fail(f"Slurm jobs {job_ids} still queued after {timeout_s} s")


@pytest.mark.slow
def test_slurm_run_equals_local(sample_run, slurm_cluster: None, tmp_path: Path) -> None:
    env_command = f"export PATH={Path(sys.executable).parent}:$PATH"  # this Python and its launch_pickled_pipeline
    recipe = cluster_recipe(
        tmp_path / "slurm.toml",
        f'kind = "slurm"\npartition = "debug"\ntime = "00:20:00"\nenv_command = "{env_command}"\n',
    )
    out = tmp_path / "out"
    submitted = run_sample(out, recipe=recipe)
    ids = [i for i in submitted.submitted if i not in ("", "-1")]
    assert len(ids) == 3  # stage 1 (an array of CLUSTER_TASKS), the load, the finish (dedup, decide, mix, report)
    wait_for_jobs(ids, SLURM_WAIT_S)
    slurm_logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(out.rglob("slurm/*.out")))
    assert (out / "COMPLETE.json").is_file(), f"the submitted run did not finish; its Slurm logs:\n{slurm_logs}"
    # the folders the run listed as its logs hold what the jobs wrote (stage 1's task logs are gone with its
    # work folder once loaded; the load's and the finish job's stay)
    assert any(list(Path(folder).glob("*.out")) for folder in submitted.logs if Path(folder).is_dir()), submitted.logs
    assert_same_outputs(sample_run.store.parent, out, recipe)
    names = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%j"], capture_output=True, text=True, check=True)
    assert {"curate-tokenize", "curate-merge"} <= set(names.stdout.split())  # the mix ran as Slurm jobs too
    # the dedup buckets too, submitted by the finish job: an array of BUCKET_TASKS tasks, each opening the store
    jobs = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%j %F %K %T"], capture_output=True, text=True, check=True
    )
    arrays: dict[str, list[tuple[str, str]]] = {}  # array job id -> (array task id, state)
    for line in jobs.stdout.splitlines():
        job, array, task, state = line.split()
        if job == "curate-buckets" and int(array) > max(map(int, ids)):
            arrays.setdefault(array, []).append((task, state))
    done = [(str(i), "COMPLETED") for i in range(BUCKET_TASKS)]
    assert any(sorted(tasks) == done for tasks in arrays.values()), jobs.stdout
    # every job of the run ended well, datatrove's stats-merge jobs included (they read a stage's logs, so each
    # stage waits for its own before its work folder goes)
    first = min(map(int, ids))
    states = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%F %j %T"], capture_output=True, text=True, check=True)
    ours = [line.split() for line in states.stdout.splitlines() if int(line.split()[0]) >= first]
    assert ours and all(state == "COMPLETED" for _, _, state in ours), states.stdout
    assert not list(out.glob("work/dedup-*"))  # the pass was recorded and its edges removed
