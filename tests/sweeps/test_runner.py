"""The sweep driver: skip finished runs, resume, record divergence and failure, one row per run."""

import dataclasses

import pytest

from bptt.store import Database, EvalRow, ProfileRow, StepRow
from bptt.sweeps import decide, expand_spec, run_sweep
from bptt.sweeps.backends import WorkerLost
from bptt.sweeps.runner import SweepDriver, checkpoint_root_for
from bptt.sweeps.worker import Spool, pending, run_assignment
from bptt.training import Trainer, train

BASE = {
    "task": "adding",
    "seq_len": 8,
    "hidden_size": 8,
    "batch_size": 8,
    "steps": 6,
    "eval_size": 16,
    "eval_every": 3,
    "checkpoint_every": 2,
    "lr": 0.01,
}


class Handle:
    def __init__(self, outcome=None, lost=False):
        self.result, self.lost = outcome, lost


class InlineBackend:
    """Runs each assignment in this process when it is submitted (so tests can patch the Trainer)."""

    name, capacity, threads = "inline", 2, 1

    def __init__(self, lose=0):
        self.lose = lose  # how many submissions to "lose" as if the worker process died

    def submit(self, assignment):
        if self.lose:
            self.lose -= 1
            return Handle(lost=True)
        return Handle(run_assignment(assignment))

    def wait(self, handles, timeout):
        return list(handles)

    def outcome(self, handle):
        if handle.lost:
            raise WorkerLost("worker process died (test)")
        return handle.result

    def close(self, cancel=False):
        pass


def sweep(db_path, backend=None, **parts):
    spec = expand_spec({"name": "t", "base": BASE, **parts})
    with Database(db_path) as db:
        driver = SweepDriver(spec, db, backend or InlineBackend(), checkpoint_root_for(db_path), progress=False)
        return spec, driver.run(decide(spec, db))


def test_a_sweep_on_the_local_pool_runs_each_run_once_and_a_rerun_skips_them(tmp_path):
    data = {"name": "pool", "base": BASE, "grid": {"cell": ["rnn", "gru"]}, "seeds": [0, 1]}
    spec = expand_spec(data)
    first = run_sweep(spec, tmp_path / "r.db", workers=2, progress=False)
    assert first.ran == 4 and first.statuses == {"finished": 4}
    again = run_sweep(spec, tmp_path / "r.db", workers=2, progress=False)
    assert again.ran == 0 and again.skipped == 4
    with Database(tmp_path / "r.db") as db:
        rows = db.runs(sweep="pool")
        assert sorted(r.identity for r in rows) == sorted(r.identity for r in spec.runs)
        for row in rows:
            assert [s.step for s in db.steps(row.id)] == list(range(1, 7))
            assert [e.step for e in db.evals(row.id, "val")] == [3, 6]
            assert row.final.run_id == row.id
    # The same run trained alone gives the same numbers: workers record what they trained.
    alone = train(spec.runs[0].config)
    assert alone.final.test_loss == rows[0].final.test_loss


def test_more_steps_extend_finished_runs_from_their_checkpoints(tmp_path):
    sweep(tmp_path / "r.db")
    _, summary = sweep(tmp_path / "r.db", base={**BASE, "steps": 12})
    assert summary.ran == 1
    with Database(tmp_path / "r.db") as db:
        (row,) = db.runs()
        assert row.status == "finished" and row.steps_done == 12 and row.final.resumed_from == 6
        assert [s.step for s in db.steps(row.id)] == list(range(1, 13))
    whole = train(expand_spec({"name": "t", "base": {**BASE, "steps": 12}}).runs[0].config)
    assert whole.final.test_loss == row.final.test_loss


def test_divergence_and_failure_are_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    original = Trainer.train_step

    def train_step(self, record):
        if self.config.lr == 0.0123 and self.step == 3:
            raise RuntimeError("boom")
        return original(self, record)

    monkeypatch.setattr(Trainer, "train_step", train_step)
    include = [
        {"name": "diverges", "activation": "relu", "init": "identity", "init_scale": 10.0, "seq_len": 40, "steps": 50},
        {"name": "fails", "lr": 0.0123},
    ]
    _, summary = sweep(tmp_path / "r.db", variants=[{"name": "plain"}], include=include)
    assert summary.statuses == {"finished": 1, "diverged": 1, "failed": 1}
    with Database(tmp_path / "r.db") as db:
        (failed,) = db.runs(status="failed")
        assert failed.reason == "RuntimeError: boom" and failed.steps_done == 3
        assert [s.step for s in db.steps(failed.id)] == [1, 2, 3]
        (diverged,) = db.runs(status="diverged")
        assert "loss became" in diverged.reason
    monkeypatch.setattr(Trainer, "train_step", original)
    _, again = sweep(tmp_path / "r.db", variants=[{"name": "plain"}], include=include)
    assert again.ran == 0 and again.skipped == 3  # diverged and failed runs are results too
    with Database(tmp_path / "r.db") as db:
        spec = expand_spec({"name": "t", "base": BASE, "variants": [{"name": "plain"}], "include": include})
        driver = SweepDriver(spec, db, InlineBackend(), checkpoint_root_for(tmp_path / "r.db"), progress=False)
        retried = driver.run(decide(spec, db, retry_failed=True))
        assert retried.ran == 1 and retried.statuses == {"finished": 2, "diverged": 1}
        assert len(db.runs()) == 3
        (row,) = [r for r in db.runs() if r.id == failed.id]
        assert row.status == "finished" and row.final.resumed_from == 2  # its last checkpoint
        assert [s.step for s in db.steps(row.id)] == list(range(1, 7))


def test_a_lost_worker_is_given_one_more_attempt_then_the_run_fails(tmp_path):
    _, summary = sweep(tmp_path / "a.db", InlineBackend(lose=1))
    assert summary.statuses == {"finished": 1}
    _, summary = sweep(tmp_path / "b.db", InlineBackend(lose=2))
    assert summary.statuses == {"failed": 1}
    with Database(tmp_path / "b.db") as db:
        (row,) = db.runs()
        assert "worker process died" in row.reason


def test_a_second_driver_on_the_same_sweep_is_refused(tmp_path):
    from bptt.sweeps import SweepLockedError
    from bptt.sweeps.locks import lock_sweep

    spec = expand_spec({"name": "t", "base": BASE})
    held = lock_sweep(checkpoint_root_for(tmp_path / "r.db"), "t")
    try:
        with pytest.raises(SweepLockedError, match="already running"):
            run_sweep(spec, tmp_path / "r.db", progress=False)
    finally:
        held.close()


class CrashAfterProgressBackend(InlineBackend):
    """Each lost submission first trains 2 more steps (spool and checkpoint written), then dies."""

    def __init__(self, lose):
        super().__init__(lose)
        self.reached = 0

    def submit(self, assignment):
        if self.lose:
            self.lose -= 1
            self.reached += 2
            run_assignment(dataclasses.replace(assignment, config={**assignment.config, "steps": self.reached}))
            return Handle(lost=True)
        return Handle(run_assignment(assignment))


def test_a_worker_death_after_progress_costs_no_attempt(tmp_path):
    # Two deaths, each after the run moved on: under the attempt limit only deaths without progress count.
    _, summary = sweep(tmp_path / "a.db", CrashAfterProgressBackend(lose=2))
    assert summary.statuses == {"finished": 1}
    with Database(tmp_path / "a.db") as db:
        (row,) = db.runs()
        assert row.steps_done == 6 and [s.step for s in db.steps(row.id)] == list(range(1, 7))


def test_the_spool_hands_back_rows_as_records_also_from_plain_tuples(tmp_path):
    spool = Spool(tmp_path)
    rows = {
        "steps": [StepRow(1, 0.5, 1.0, False, False)],
        "evals": [EvalRow(1, "val", 0.4, 0.3)],
        "profiles": [ProfileRow(1, [[1.0, 0.5]], None)],
    }
    spool.put({"kind": "start", "step": 0, "train_seconds": 0.0})
    spool.put({"kind": "progress", **rows, "steps_done": 1, "train_seconds": 0.1, "checkpoint": None})
    spool.put(
        {
            "kind": "progress",
            "steps": [(1, 0.5, 1.0, 0, 0)],
            "evals": [(1, "val", 0.4, 0.3)],
            "profiles": [(1, [[1.0, 0.5]], None)],
            "steps_done": 1,
            "train_seconds": 0.1,
            "checkpoint": None,
        }
    )
    start, as_records, as_tuples = [record for _, record in pending(tmp_path)]
    assert start == {"kind": "start", "step": 0, "train_seconds": 0.0}
    for key, expected in rows.items():
        assert as_records[key] == expected and as_tuples[key] == expected
