"""The results database: rows, history, statuses, interrupted runs."""
import os
import sqlite3
import subprocess
import sys

import pytest

from bptt.store import Database


def test_a_run_round_trips(tmp_path):
    with Database(tmp_path / "r.db") as db:
        run_id = db.create_run("abc", "tanh", "adding", {"task": "adding"})
        db.record_progress(run_id, [(1, 0.5, 2.0, 0, 0), (2, 0.4, 1.5, 1, 0)], [(2, "val", 0.3, 0.3)],
                           [(2, [[1.0, 0.5]], None)], 2, 0.1, "ckpt.pt")
        db.finish_run(run_id, "finished", {"test_loss": 0.2})
        row = db.run(run_id)
        assert row.status == "finished" and row.final == {"test_loss": 0.2} and row.steps_done == 2
        assert row.checkpoint == "ckpt.pt"
        assert db.steps(run_id) == [(1, 0.5, 2.0, 0, 0), (2, 0.4, 1.5, 1, 0)]
        assert db.evals(run_id) == [(2, "val", 0.3, 0.3)]
        assert db.gradient_profiles(run_id) == [(2, [[1.0, 0.5]], None)]
        assert db.latest_run("abc").id == run_id
    mode = sqlite3.connect(tmp_path / "r.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_unknown_status_is_refused(tmp_path):
    with Database(tmp_path / "r.db") as db:
        run_id = db.create_run("abc", "tanh", "adding", {})
        with pytest.raises(ValueError, match="status must be one of"):
            db.finish_run(run_id, "exploded", None)


def test_truncate_history_drops_rows_past_a_checkpoint(tmp_path):
    with Database(tmp_path / "r.db") as db:
        run_id = db.create_run("abc", "tanh", "adding", {})
        db.record_progress(run_id, [(s, 1.0, 1.0, 0, 0) for s in range(1, 11)], [(10, "val", 1, 1)], [], 10, 1, None)
        db.truncate_history(run_id, 6)
        assert [s[0] for s in db.steps(run_id)] == [1, 2, 3, 4, 5, 6]
        assert db.evals(run_id) == []


def test_a_run_whose_process_died_is_marked_interrupted(tmp_path):
    path = tmp_path / "r.db"
    code = (
        "import os, sys; from bptt.store import Database; db = Database(sys.argv[1]); "
        "db.create_run('abc', 'tanh', 'adding', {}); os.kill(os.getpid(), 9)"
    )
    subprocess.run([sys.executable, "-c", code, str(path)])
    with Database(path) as db:
        (row,) = db.runs()
        assert row.status == "interrupted"


def test_a_live_run_is_left_running(tmp_path):
    with Database(tmp_path / "r.db") as db:
        run_id = db.create_run("abc", "tanh", "adding", {})
    with Database(tmp_path / "r.db") as db:
        assert db.run(run_id).status == "running"  # this very process still holds it
