"""The Ray backend: the same rows as the local pool; a killed driver takes its workers and session with it;
a sweep over a two-node cluster loses no run and duplicates none when a node dies."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from bptt.store import Database
from bptt.sweeps import expand_spec, load_spec, run_sweep

BASE = {
    "task": "adding",
    "seq_len": 8,
    "hidden_size": 8,
    "batch_size": 8,
    "steps": 10,
    "eval_size": 16,
    "eval_every": 5,
    "checkpoint_every": 5,
    "lr": 0.01,
}


@pytest.mark.slow
def test_ray_backend_gives_the_same_rows_as_the_local_pool(tmp_path):
    pytest.importorskip("ray")
    data = {"base": BASE, "grid": {"cell": ["rnn", "lstm"]}, "seeds": [0, 1]}
    local = run_sweep(expand_spec({"name": "local", **data}), tmp_path / "r.db", workers=2, threads=1, progress=False)
    on_ray = run_sweep(
        expand_spec({"name": "ray", **data}), tmp_path / "r.db", backend="ray", workers=2, threads=1, progress=False
    )
    assert local.statuses == on_ray.statuses == {"finished": 4}
    with Database(tmp_path / "r.db") as db:
        rows = {name: {r.identity: r for r in db.runs(sweep=name)} for name in ("local", "ray")}
        assert rows["local"].keys() == rows["ray"].keys()
        for identity, row in rows["local"].items():
            other = rows["ray"][identity]

            def keep(final):
                return {
                    k: v
                    for k, v in final.to_dict().items()
                    if k not in ("run_id", "train_seconds", "cpu_seconds", "steps_per_second")
                }

            assert keep(row.final) == keep(other.final)
            assert db.steps(row.id) == db.steps(other.id)
            assert db.evals(row.id) == db.evals(other.id)
    again = run_sweep(expand_spec({"name": "ray", **data}), tmp_path / "r.db", backend="ray", progress=False)
    assert again.ran == 0 and again.skipped == 4  # nothing to run: Ray is not even started


# -- a driver killed, a node lost --------------------------------------------------------------------
LONG = {
    **BASE,
    "seq_len": 50,
    "hidden_size": 16,
    "batch_size": 16,
    "steps": 1500,
    "eval_every": 500,
    "checkpoint_every": 50,
}


def _wait_for(condition, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _processes_mentioning(text):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if text.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def _check_every_run_once(db_path, spec_path, steps):
    spec = load_spec(spec_path)
    with Database(db_path) as db:
        rows = db.runs(sweep=spec.name)
        assert sorted(r.identity for r in rows) == sorted(r.identity for r in spec.runs)  # one row per run
        for row in rows:
            assert row.status == "finished" and row.steps_done == steps, (row.status, row.reason)
            assert [s.step for s in db.steps(row.id)] == list(range(1, steps + 1))
        return rows


@pytest.mark.slow
def test_ray_workers_end_with_a_killed_driver_and_its_session_folder_goes(tmp_path, run_states):
    pytest.importorskip("ray")
    spec_path = tmp_path / "killed.yaml"
    spec_path.write_text(yaml.safe_dump({"name": "killed", "base": LONG, "grid": {"cell": ["rnn", "gru"]}}))
    db_path = tmp_path / "r.db"
    command = [
        sys.executable,
        "-m",
        "bptt.cli.main",
        "sweep",
        str(spec_path),
        "--db",
        str(db_path),
        "--backend",
        "ray",
        "--workers",
        "2",
    ]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for(
        lambda: driver.poll() is not None or any(s == "running" and 100 <= d <= 700 for s, d in run_states(db_path)),
        240,
        "a run past two checkpoints",
    )
    assert driver.poll() is None, driver.stderr.read().decode()
    folder = f"/tmp/bptt-ray-{driver.pid}-"
    assert _processes_mentioning(folder), "the local Ray instance keeps its session in its own folder"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(0.5)  # the workers notice within 0.1 s
    checkpoints = {p: p.stat().st_mtime_ns for p in tmp_path.glob("r-sweeps/killed/*/checkpoint.pt")}
    time.sleep(2.0)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("r-sweeps/killed/*/checkpoint.pt")} == checkpoints
    _wait_for(lambda: not _processes_mentioning(folder), 30, "the Ray processes of the killed driver to end")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert not list(Path("/tmp").glob(f"bptt-ray-{driver.pid}-*"))  # removed by the next sweep
    assert not list(Path("/tmp").glob(f"bptt-ray-{os.getpid()}-*"))
    rows = _check_every_run_once(db_path, spec_path, LONG["steps"])
    assert any(r.final.resumed_from > 0 for r in rows)


@pytest.fixture
def two_nodes(tmp_path):
    """A Ray cluster of two nodes on this machine: a head of 1 CPU and a second node of 1 CPU, each
    started in its own session so that it can be killed alone. Yields (address, env, kill_second)."""
    pytest.importorskip("ray")
    ray_command = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        # Notice a dead node within about 2 s instead of Ray's default 15 s.
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_failure_threshold": "4",
        "RAY_health_check_initial_delay_ms": "0",
    }
    session = Path(tempfile.mkdtemp(prefix="bptt-ray-nodes-", dir="/tmp"))
    common = ["--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats", "--block"]
    head = subprocess.Popen(
        [ray_command, "start", "--head", f"--port={port}", f"--temp-dir={session}", '--resources={"head": 1}', *common],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = [head]
    try:
        address = f"127.0.0.1:{port}"
        probe = [
            sys.executable,
            "-c",
            f"import ray; ray.init(address='{address}', logging_level='ERROR'); "
            "print(sum(n['Alive'] for n in ray.nodes()))",
        ]
        _wait_for(
            lambda: subprocess.run(probe, env=env, capture_output=True, text=True).stdout.strip() == "1",
            120,
            "the head node",
        )
        second = subprocess.Popen(
            [
                ray_command,
                "start",
                f"--address={address}",
                '--resources={"second": 1}',
                *[c for c in common if "dashboard" not in c],
            ],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(second)
        _wait_for(
            lambda: subprocess.run(probe, env=env, capture_output=True, text=True).stdout.strip() == "2",
            120,
            "the second node",
        )
        yield address, env, lambda: _kill_session(second.pid)
    finally:
        for process in reversed(started):
            _kill_session(process.pid)
            process.wait()
        shutil.rmtree(session, ignore_errors=True)


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _kill_session(session_id):
    """SIGKILL every process of one session this test started (a node's raylet, its workers, its agents)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == session_id:
                    os.kill(int(entry), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.mark.slow
def test_a_sweep_over_two_nodes_survives_losing_one(tmp_path, two_nodes, run_states):
    address, env, kill_second = two_nodes
    spec_path = tmp_path / "nodes.yaml"
    spec_path.write_text(yaml.safe_dump({"name": "nodes", "base": LONG, "seeds": [0, 1, 2]}))
    db_path = tmp_path / "r.db"
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bptt.cli.main",
            "sweep",
            str(spec_path),
            "--db",
            str(db_path),
            "--backend",
            "ray",
            "--address",
            address,
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Two runs in flight, one per node (each has one CPU), both past a checkpoint: then the second node dies.
    _wait_for(
        lambda: driver.poll() is not None or sum(s == "running" and d >= 100 for s, d in run_states(db_path)) == 2,
        240,
        "a run on each node",
    )
    assert driver.poll() is None, driver.stderr.read()
    kill_second()
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, err
    assert "3 runs (3 finished)" in out
    rows = _check_every_run_once(db_path, spec_path, LONG["steps"])
    lost = [r for r in rows if r.final.resumed_from > 0]
    assert lost, "the run of the lost node did not continue from its checkpoint"
    assert all(r.final.resumed_from % LONG["checkpoint_every"] == 0 for r in lost)
