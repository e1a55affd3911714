"""kill -9 of a sweep driver mid-run, then the same command again: nothing lost, nothing twice."""

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch
import yaml

from bptt.store import Database
from bptt.sweeps import load_spec
from bptt.training import train

# Runs long enough (seconds each on a fast machine) that the driver is reliably caught mid-run.
STEPS, EVERY = 1000, 20
SPEC = {
    "name": "killed",
    "base": {
        "task": "adding",
        "seq_len": 100,
        "hidden_size": 32,
        "batch_size": 32,
        "eval_size": 32,
        "steps": STEPS,
        "eval_every": 50,
        "checkpoint_every": EVERY,
        "lr": 0.01,
    },
    "grid": {"cell": ["rnn", "gru"]},
    "seeds": [0, 1],
}


def progress(db_path):
    """(status, steps_done) of every run, read without writing to the database."""
    if not db_path.exists():
        return []
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as connection:
        try:
            return connection.execute("SELECT status, steps_done FROM runs").fetchall()
        except sqlite3.OperationalError:
            return []


@pytest.mark.slow
def test_kill_9_mid_sweep_then_rerun_finishes_every_run_exactly_once_from_checkpoints(tmp_path):
    spec_path = tmp_path / "killed.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    db_path = tmp_path / "r.db"
    command = [
        sys.executable,
        "-m",
        "bptt.cli.main",
        "sweep",
        str(spec_path),
        "--db",
        str(db_path),
        "--workers",
        "2",
        "--threads",
        "1",
    ]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    # Wait until a run is past its second checkpoint and far from its end, then kill the driver.
    while time.time() < deadline and driver.poll() is None:
        if any(status == "running" and 2 * EVERY <= done <= STEPS // 2 for status, done in progress(db_path)):
            break
        time.sleep(0.02)
    assert driver.poll() is None, driver.stderr.read().decode()
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    killed_at = progress(db_path)
    assert any(0 < done < STEPS for _, done in killed_at), killed_at

    # The workers died with the driver: no checkpoint moves afterwards.
    time.sleep(1.0)
    checkpoints = {p: p.stat().st_mtime_ns for p in tmp_path.glob("r-sweeps/killed/*/checkpoint.pt")}
    assert checkpoints
    time.sleep(1.5)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("r-sweeps/killed/*/checkpoint.pt")} == checkpoints

    with Database(db_path) as db:  # opening it marks the dead driver's runs interrupted
        assert "running" not in {r.status for r in db.runs()}
        assert "interrupted" in {r.status for r in db.runs()}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    spec = load_spec(spec_path)
    with Database(db_path) as db:
        rows = db.runs(sweep="killed")
        assert sorted(r.identity for r in rows) == sorted(r.identity for r in spec.runs)  # one row per run
        assert all(r.status == "finished" and r.steps_done == STEPS for r in rows)
        for row in rows:
            assert [s.step for s in db.steps(row.id)] == list(range(1, STEPS + 1))  # no gap, no duplicate
            assert [e.step for e in db.evals(row.id, "val")] == list(range(50, STEPS + 1, 50))
        resumed = [r for r in rows if r.final.resumed_from > 0]
        assert resumed, "no run continued from a checkpoint"
        assert all(r.final.resumed_from % EVERY == 0 for r in resumed)
    # A resumed run ends exactly where the same run trained without interruption ends.
    row = resumed[0]
    config = next(r.config for r in spec.runs if r.identity == row.identity)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole = train(config)
    finally:
        torch.set_num_threads(threads)
    assert whole.final.test_loss == row.final.test_loss


LADDER = {
    **{key: value for key, value in SPEC.items() if key != "grid"},
    "name": "ladder-killed",
    "base": {key: value for key, value in SPEC["base"].items() if key != "seq_len"} | {"eval_every": STEPS},
    "include": [{"cell": "rnn"}],
    # a loss of 10 is always solved: every rung runs, each run to its last step (its first evaluation)
    "ladder": {"rungs": {"adding": {"seq_len": [20, 40], "solved_below": 10.0}}},
}


def rung_progress(db_path):
    """(status, steps_done, seq_len) of every run, read without writing to the database."""
    if not db_path.exists():
        return []
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as connection:
        try:
            rows = connection.execute("SELECT status, steps_done, config FROM runs").fetchall()
        except sqlite3.OperationalError:
            return []
    return [(status, done, json.loads(config)["seq_len"]) for status, done, config in rows]


@pytest.mark.slow
def test_kill_9_on_the_second_rung_then_rerun_finishes_the_ladder_once(tmp_path):
    spec_path = tmp_path / "ladder.yaml"
    spec_path.write_text(yaml.safe_dump(LADDER))
    db_path = tmp_path / "r.db"
    command = [sys.executable, "-m", "bptt.cli.main", "sweep", str(spec_path), "--db", str(db_path), "--workers", "2"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and driver.poll() is None:  # a run of the upper rung mid-way
        if any(
            s == "running" and length == 40 and 2 * EVERY <= d <= STEPS // 2 for s, d, length in rung_progress(db_path)
        ):
            break
        time.sleep(0.02)
    assert driver.poll() is None, driver.stderr.read().decode()
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert sorted(length for _, _, length in rung_progress(db_path)) == [20, 20, 40, 40]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    spec = load_spec(spec_path)
    with Database(db_path) as db:
        rows = db.runs(sweep="ladder-killed")
        assert sorted(r.identity for r in rows) == sorted(r.identity for r in spec.runs)  # one row per run
        assert all(r.status == "finished" and r.steps_done == STEPS for r in rows)
        for row in rows:
            assert [s.step for s in db.steps(row.id)] == list(range(1, STEPS + 1))
        lower = [r for r in rows if r.config["seq_len"] == 20]
        upper = [r for r in rows if r.config["seq_len"] == 40]
        assert max(r.id for r in lower) < min(r.id for r in upper)
        assert any(r.final.resumed_from > 0 for r in upper)
