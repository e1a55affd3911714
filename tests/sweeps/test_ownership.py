"""Which row a command takes up: its own sweep's, its own database's, never a dead one of zero steps."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from bptt.cli.main import main
from bptt.config import build_config
from bptt.store import Database
from bptt.sweeps import SweepLockedError, expand_spec, run_sweep
from bptt.sweeps.locks import lock_database
from bptt.training import Trainer, train

SMALL = {
    "task": "adding",
    "seq_len": 8,
    "hidden_size": 8,
    "batch_size": 8,
    "eval_size": 16,
    "eval_every": 2,
    "checkpoint_every": 2,
    "progress": False,
}
FLAGS = [
    "--task",
    "adding",
    "--seq-len",
    "8",
    "--hidden-size",
    "8",
    "--batch-size",
    "8",
    "--eval-size",
    "16",
    "--eval-every",
    "2",
    "--checkpoint-every",
    "2",
    "--json",
]


def test_resume_takes_up_the_run_trained_on_its_own_not_a_sweeps(tmp_path):
    db = Database(tmp_path / "r.db")
    of_sweep = Trainer(build_config({**SMALL, "steps": 4}), db, sweep="s").run()
    alone = train(build_config({**SMALL, "steps": 4}), db)
    resumed = train(build_config({**SMALL, "steps": 8}), db, resume=True)
    assert resumed.run_id == alone.run_id != of_sweep.run_id and resumed.steps_done == 8
    assert db.run(of_sweep.run_id).steps_done == 4
    # And a sweep's resume takes up its own row.
    again = Trainer(build_config({**SMALL, "steps": 6}), db, sweep="s").run(resume=True)
    assert again.run_id == of_sweep.run_id and again.steps_done == 6


def test_a_relative_database_means_the_same_from_any_directory(tmp_path, monkeypatch, capsys):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--db", "sub/r.db", *FLAGS, "--steps", "4"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["train", "--db", "r.db", *FLAGS, "--steps", "8", "--resume"]) == 0
    assert '"run_id": 1' in capsys.readouterr().out
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["diagnose", "--db", "../sub/r.db", "--run", "1", "--json"]) == 0
    with Database(tmp_path / "sub" / "r.db") as db:
        (row,) = db.runs()
        assert row.steps_done == 8 and row.checkpoint == str(tmp_path / "sub" / "r-runs" / "run-1" / "checkpoint.pt")
        assert [s.step for s in db.steps(row.id)] == list(range(1, 9))
    # Moved together, the database and its run folders still find each other.
    os.rename(tmp_path / "sub", tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--db", "moved/r.db", *FLAGS, "--steps", "10", "--resume"]) == 0
    with Database(tmp_path / "moved" / "r.db") as db:
        assert [r.steps_done for r in db.runs()] == [10]


def test_a_second_sweep_driver_is_refused_whatever_its_checkpoint_folder(tmp_path):
    spec = expand_spec({"name": "t", "base": {**{k: v for k, v in SMALL.items() if k != "progress"}, "steps": 2}})
    held = lock_database(tmp_path / "r.db", "t")
    try:
        with pytest.raises(SweepLockedError, match="sweep 't' is already running on"):
            run_sweep(spec, tmp_path / "r.db", checkpoint_root=tmp_path / "elsewhere", progress=False)
        # Another sweep on the same database is not held up.
        other = expand_spec({"name": "u", "base": {**{k: v for k, v in SMALL.items() if k != "progress"}, "steps": 2}})
        assert run_sweep(other, tmp_path / "r.db", workers=1, progress=False).statuses == {"finished": 1}
    finally:
        held.close()
    with Database(tmp_path / "r.db") as db:
        assert [r.sweep for r in db.runs()] == ["u"]


def test_a_run_has_no_row_before_its_first_checkpoint(tmp_path):
    db = Database(tmp_path / "r.db")
    trainer = Trainer(build_config({**SMALL, "steps": 6, "checkpoint_every": 3}), db)
    rows_at_step = []
    trainer.on_step = lambda step, loss: rows_at_step.append(len(db.runs()))
    trainer.run()
    # Killed before step 3, the run would have left nothing behind to resume or to clean up.
    assert rows_at_step == [0, 0, 0, 1, 1, 1] and len(db.runs()) == 1


@pytest.mark.slow
def test_kill_9_of_train_at_random_moments_leaves_no_zero_step_row(tmp_path, run_states):
    db_path = tmp_path / "r.db"
    steps = 1500
    command = [
        sys.executable,
        "-m",
        "bptt.cli.main",
        "train",
        "--db",
        str(db_path),
        "--task",
        "adding",
        "--seq-len",
        "50",
        "--hidden-size",
        "16",
        "--batch-size",
        "16",
        "--eval-size",
        "16",
        "--steps",
        str(steps),
        "--checkpoint-every",
        "25",
        "--eval-every",
        "50",
        "--resume",
    ]
    chance = random.Random(14)
    kills = {"before any row": 0, "with a row": 0}
    for cycle in range(7):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if cycle == 0:  # the moment the first row appears: a row made before its first checkpoint has 0 steps
            while process.poll() is None and not run_states(db_path):
                time.sleep(0.002)
        elif cycle % 2 == 0:  # a random moment from the start: importing, building, before the first checkpoint
            time.sleep(chance.uniform(0.3, 4.0))
        else:  # a random moment after this attempt wrote a checkpoint
            reached = max([done for _, done in run_states(db_path)], default=0)
            deadline = time.time() + 120
            while (
                process.poll() is None
                and time.time() < deadline
                and max([done for _, done in run_states(db_path)], default=0) <= reached
            ):
                time.sleep(0.01)
            time.sleep(chance.uniform(0.0, 0.3))
        if process.poll() is None:
            had_row = bool(run_states(db_path))
            process.send_signal(signal.SIGKILL)
            kills["with a row" if had_row else "before any row"] += 1
        process.wait()
        rows = run_states(db_path)
        assert all(done > 0 for _, done in rows), rows
        assert len(rows) <= 1, rows
    assert kills["with a row"] >= 3 and sum(kills.values()) >= 5, kills
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with Database(db_path) as db:
        (row,) = db.runs()
        assert row.status == "finished" and row.steps_done == steps
        assert [s.step for s in db.steps(row.id)] == list(range(1, steps + 1))


def test_a_run_stopped_before_any_checkpoint_is_taken_up_again_from_step_0(tmp_path):
    db = Database(tmp_path / "r.db")
    stopped = Trainer(build_config({**SMALL, "steps": 10, "checkpoint_every": 5}), db)

    def stop(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    stopped.on_step = stop
    with pytest.raises(KeyboardInterrupt):
        stopped.run()
    (row,) = db.runs()
    assert row.status == "interrupted" and row.steps_done == 3 and row.checkpoint is None
    resumed = train(build_config({**SMALL, "steps": 10, "checkpoint_every": 5}), db, resume=True)
    assert resumed.run_id == row.id and len(db.runs()) == 1
    assert [s.step for s in db.steps(row.id)] == list(range(1, 11))
    whole = train(build_config({**SMALL, "steps": 10, "checkpoint_every": 5}))
    assert whole.final.test_loss == resumed.final.test_loss


def test_a_runs_row_is_born_with_its_steps_so_no_moment_shows_it_at_0(tmp_path, monkeypatch):
    # The process dies right after the row is made, before the history that follows it is written.
    db = Database(tmp_path / "r.db")
    trainer = Trainer(build_config({**SMALL, "steps": 10, "checkpoint_every": 5}), db)

    def killed(*args, **kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr(db, "record_progress", killed)
    with pytest.raises(SystemExit):
        trainer.run()
    (row,) = db.runs()
    assert row.steps_done == 5 and row.train_seconds > 0 and row.status == "running"
