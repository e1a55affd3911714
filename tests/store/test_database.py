"""The results database: rows, history, statuses, interrupted runs, summaries of other versions."""

import json
import sqlite3
import subprocess
import sys

import pytest

from bptt.store import Database, EvalRow, ProfileRow, RunSummary, StepRow, controlled_length


def test_a_run_round_trips(tmp_path):
    steps = [StepRow(1, 0.5, 2.0, False, False), StepRow(2, 0.4, 1.5, True, False)]
    with Database(tmp_path / "r.db") as db:
        run_id = db.create_run("abc", "tanh", "adding", {"task": "adding"})
        db.record_progress(
            run_id,
            steps,
            [EvalRow(2, "val", 0.3, 0.3)],
            [ProfileRow(2, [[1.0, 0.5]], None)],
            2,
            0.1,
            str(tmp_path / "r-runs" / "run-1" / "checkpoint.pt"),
        )
        db.finish_run(run_id, "finished", RunSummary(test_loss=0.2))
        row = db.run(run_id)
        assert row.status == "finished" and row.final == RunSummary(test_loss=0.2) and row.steps_done == 2
        assert row.checkpoint == str(tmp_path / "r-runs" / "run-1" / "checkpoint.pt")
        assert db.steps(run_id) == steps
        assert db.evals(run_id) == [EvalRow(2, "val", 0.3, 0.3)]
        assert db.gradient_profiles(run_id) == [ProfileRow(2, [[1.0, 0.5]], None)]
        assert db.latest_run("abc").id == run_id
    stored = sqlite3.connect(tmp_path / "r.db").execute("SELECT clipped, skipped FROM steps").fetchall()
    assert stored == [(0, 0), (1, 0)]
    # Stored relative to the database's folder, so the two can move together.
    (path,) = sqlite3.connect(tmp_path / "r.db").execute("SELECT checkpoint FROM runs").fetchone()
    assert path == "r-runs/run-1/checkpoint.pt"
    mode = sqlite3.connect(tmp_path / "r.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_summary_from_another_version_reads_back(tmp_path):
    with Database(tmp_path / "r.db") as db:
        run_id = db.create_run("abc", "tanh", "adding", {"task": "adding"})
        db.finish_run(run_id, "finished", None)
        older = {
            "test_loss": 0.2,
            "resumed_from": 6,
            "target_metric": 0.1,
            "target_step": 40,
            "device": "cpu",
            "version": "0.0.9",
            "commit": "abc123",
            "a_key_of_a_later_version": [1, 2],
        }
        db.connection.execute("UPDATE runs SET final = ? WHERE id = ?", (json.dumps(older), run_id))
        final = db.run(run_id).final
    assert final == RunSummary(
        test_loss=0.2, resumed_from=6, target_metric=0.1, target_step=40, device="cpu", version="0.0.9", commit="abc123"
    )
    assert final.baseline is None and final.run_id is None  # keys it lacks


def test_a_summary_is_one_flat_mapping_in_field_order():
    summary = RunSummary(run_id=3, test_loss=0.5)
    data = summary.to_dict()
    assert list(data)[:3] == ["run_id", "identity", "label"] and list(data)[-1] == "commit"
    assert "resumed_from" not in data  # only a sweep's driver sets it
    assert list(RunSummary(resumed_from=2).to_dict())[-1] == "resumed_from"
    assert RunSummary.from_dict(data) == summary


def test_a_runs_controlled_length_is_its_delay_else_its_sequence_length():
    assert controlled_length({"delay": 50, "seq_len": 80}, RunSummary(seq_len=80)) == ("delay", 50)
    assert controlled_length({"delay": None, "seq_len": None}, RunSummary(seq_len=57)) == ("seq_len", 57)
    assert controlled_length({"seq_len": 100}) == ("seq_len", 100)
    assert controlled_length({}, RunSummary()) == ("seq_len", None)


def test_unknown_status_is_refused(tmp_path):
    with Database(tmp_path / "r.db") as db:
        run_id = db.create_run("abc", "tanh", "adding", {})
        with pytest.raises(ValueError, match="status must be one of"):
            db.finish_run(run_id, "exploded", None)


def test_truncate_history_drops_rows_past_a_checkpoint(tmp_path):
    with Database(tmp_path / "r.db") as db:
        run_id = db.create_run("abc", "tanh", "adding", {})
        db.record_progress(
            run_id,
            [StepRow(s, 1.0, 1.0, False, False) for s in range(1, 11)],
            [EvalRow(10, "val", 1, 1)],
            [],
            10,
            1,
            None,
        )
        db.truncate_history(run_id, 6)
        assert [s.step for s in db.steps(run_id)] == [1, 2, 3, 4, 5, 6]
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
