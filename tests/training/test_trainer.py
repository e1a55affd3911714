"""The training loop: resume bit for bit, divergence, non-finite gradients, clipping, kill -9."""

import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bptt.config import ConfigError, build_config
from bptt.store import Database
from bptt.sweeps.worker import Assignment, run_assignment
from bptt.training import NonFiniteGradientError, RunInUseError, Trainer, train
from bptt.training.runtime import intra_op_threads

SMALL = {
    "task": "adding",
    "seq_len": 10,
    "hidden_size": 8,
    "batch_size": 8,
    "eval_size": 32,
    "eval_every": 5,
    "checkpoint_every": 10,
    "progress": False,
    "lr": 0.01,
}


def config(**values):
    return build_config({**SMALL, **values})


def test_resumed_run_equals_uninterrupted_run_bit_for_bit(tmp_path):
    whole_db = Database(tmp_path / "whole.db")
    whole = Trainer(config(steps=40, cell="gru", dropout=0.3, num_layers=2), whole_db)
    result = whole.run()
    split_db = Database(tmp_path / "split.db")
    first = train(config(steps=20, cell="gru", dropout=0.3, num_layers=2), split_db)
    assert first.status == "finished" and first.steps_done == 20
    resumed = Trainer(config(steps=40, cell="gru", dropout=0.3, num_layers=2), split_db)
    second = resumed.run(resume=True)
    assert second.run_id == first.run_id and second.steps_done == 40
    for (name, a), (_, b) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert whole_db.steps(result.run_id) == split_db.steps(first.run_id)
    assert result.final.test_loss == second.final.test_loss
    assert len(split_db.runs()) == 1


def test_resume_of_a_finished_run_does_nothing_more(tmp_path):
    db = Database(tmp_path / "r.db")
    first = train(config(steps=10), db)
    again = train(config(steps=10), db, resume=True)
    assert again.run_id == first.run_id and again.final == first.final
    fresh = train(config(steps=10), db)  # without --resume: a new run, the old one kept
    assert fresh.run_id != first.run_id and len(db.runs(status="finished")) == 2


def test_history_and_final_metrics_are_recorded(tmp_path):
    db = Database(tmp_path / "r.db")
    result = train(config(steps=10), db)
    row = db.run(result.run_id)
    assert row.status == "finished" and row.config["seq_len"] == 10
    steps = db.steps(result.run_id)
    assert [s.step for s in steps] == list(range(1, 11))
    assert all(s.grad_norm > 0 for s in steps)  # gradient norm every step
    assert [e.step for e in db.evals(result.run_id, "val")] == [5, 10]
    assert row.final.baseline == pytest.approx(1 / 6)
    assert row.final.test_loss == pytest.approx(db.evals(result.run_id, "test")[0].loss)
    assert row.train_seconds > 0


def test_divergence_is_recorded_not_raised(tmp_path):
    db = Database(tmp_path / "r.db")
    # ReLU with W_hh = 10 I: h grows like 10^t and overflows float32 within 40 steps.
    result = train(config(steps=200, activation="relu", init="identity", init_scale=10.0, seq_len=40), db)
    assert result.status == "diverged"
    assert "loss became" in result.reason
    row = db.run(result.run_id)
    assert row.status == "diverged" and row.steps_done == result.steps_done < 200


def _poison_gradients(trainer, at_steps):
    """Make the gradient of one parameter nan on the given (1-based) steps."""
    parameter = trainer.params[0]

    def hook(grad):
        return torch.full_like(grad, float("nan")) if trainer.step + 1 in at_steps else grad

    parameter.register_hook(hook)


def test_nonfinite_gradient_skips_the_step_and_counts_it(tmp_path):
    db = Database(tmp_path / "r.db")
    trainer = Trainer(config(steps=10), db)
    _poison_gradients(trainer, {3, 7})
    result = trainer.run()
    assert result.status == "finished" and result.final.skipped_steps == 2
    skipped = [s.step for s in db.steps(result.run_id) if s.skipped]
    assert skipped == [3, 7]
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_nonfinite_gradient_raises_under_the_raise_policy(tmp_path):
    db = Database(tmp_path / "r.db")
    trainer = Trainer(config(steps=10, nonfinite="raise"), db)
    _poison_gradients(trainer, {4})
    with pytest.raises(NonFiniteGradientError, match="step 4"):
        trainer.run()
    (row,) = db.runs()
    assert row.status == "failed" and "NonFiniteGradientError" in row.reason


def test_clipping_by_norm_bounds_the_update(tmp_path):
    trainer = Trainer(config(steps=1, clip_norm=1e-3, optimizer="sgd", lr=1.0))
    before = [p.detach().clone() for p in trainer.params]
    result = trainer.run()
    moved = math.sqrt(sum(float((p.detach() - q).pow(2).sum()) for p, q in zip(trainer.params, before)))
    assert moved == pytest.approx(1e-3, rel=1e-4)
    assert result.final.clipped_steps == 1


def test_clipping_by_value(tmp_path):
    trainer = Trainer(config(steps=1, clip_value=1e-4, optimizer="sgd", lr=1.0))
    before = [p.detach().clone() for p in trainer.params]
    trainer.run()
    # float32 parameters near 0.3 carry an ulp of 3e-8, so the step is exact to about 1e-3 relative.
    assert max(float((p.detach() - q).abs().max()) for p, q in zip(trainer.params, before)) <= 1e-4 * 1.001


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_finishes_the_same_run(tmp_path):
    db_path = tmp_path / "r.db"
    args = [
        "--db",
        str(db_path),
        "--task",
        "adding",
        "--seq-len",
        "200",
        "--hidden-size",
        "32",
        "--batch-size",
        "32",
        "--steps",
        "60",
        "--checkpoint-every",
        "5",
        "--eval-every",
        "20",
    ]
    # The run starts at 1 thread and is resumed by a process of 2: its sums keep the order they started with.
    process = subprocess.Popen(
        [sys.executable, "-m", "bptt.cli.main", "train", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    checkpoint = tmp_path / "r-runs" / "run-1" / "checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert checkpoint.exists(), process.stderr.read() if process.poll() is not None else "no checkpoint"
    process.send_signal(signal.SIGKILL)
    process.wait()
    with Database(db_path) as db:
        (row,) = db.runs()
        assert row.status == "interrupted" and 0 < row.steps_done < 60
    done = subprocess.run(
        [sys.executable, "-m", "bptt.cli.main", "train", *args, "--resume", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert done.returncode == 0, done.stderr
    with Database(db_path) as db:
        (row,) = db.runs()
        assert row.status == "finished" and row.steps_done == 60
        assert [s.step for s in db.steps(row.id)] == list(range(1, 61))
        assert row.final.threads == 1
    # Whatever thread count this process was left at, the run it is compared with trains at the run's own.
    with intra_op_threads(row.final.threads):
        whole = train(
            build_config(
                {"task": "adding", "seq_len": 200, "hidden_size": 32, "batch_size": 32, "steps": 60, "progress": False}
            )
        )
    assert whole.final.test_loss == row.final.test_loss


def test_a_resume_trains_at_the_thread_count_the_run_started_with(tmp_path):
    # Large sums (a weight gradient over T * B = 6400 terms) split across threads add in another order:
    # at 1 and 2 threads the same run differs in its last bits. A resume keeps the count of its checkpoint.
    long = {"seq_len": 200, "hidden_size": 32, "batch_size": 32, "eval_every": 20, "checkpoint_every": 10}
    with intra_op_threads(1):
        whole = Trainer(config(steps=40, **long))
        whole.run()
    db = Database(tmp_path / "r.db")
    with intra_op_threads(1):
        train(config(steps=20, **long), db)
    with intra_op_threads(2):
        resumed = Trainer(config(steps=40, **long), db)
        result = resumed.run(resume=True)
        assert torch.get_num_threads() == 2  # the process's own count, back after the run
    assert result.final.threads == 1 and result.steps_done == 40
    for (name, a), (_, b) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_sweep_worker_leaves_its_process_thread_count_as_it_was(tmp_path):
    threads = torch.get_num_threads()
    outcome = run_assignment(
        Assignment(config(steps=2).model_dump(), str(tmp_path / "run"), False, threads=threads + 1)
    )
    assert outcome.status == "finished" and outcome.final.threads == threads + 1
    assert torch.get_num_threads() == threads


def test_tbptt_setting_truncates_the_recurrent_stack():
    trainer = Trainer(config(steps=2, tbptt=3, seq_len=12))
    assert trainer.model.recurrent.truncate == 3
    assert trainer.run().status == "finished"


def test_resume_never_takes_over_a_run_a_live_process_holds(tmp_path):
    db = Database(tmp_path / "r.db")
    first = train(config(steps=10), db)
    db.claim_run(first.run_id, config(steps=10).model_dump())  # this live process holds it again
    # Neither taken over nor trained a second time beside it: refused, nothing written.
    with pytest.raises(RunInUseError, match="run 1 is being trained by another process"):
        train(config(steps=20), db, resume=True)
    assert [(r.id, r.steps_done) for r in db.runs()] == [(first.run_id, 10)]


def test_extending_a_finished_run_keeps_one_test_result(tmp_path):
    db = Database(tmp_path / "r.db")
    first = train(config(steps=10), db)
    train(config(steps=20), db, resume=True)
    assert [e.step for e in db.evals(first.run_id, "test")] == [20]


def test_a_run_stops_at_its_target_metric_and_records_the_step(tmp_path):
    db = Database(tmp_path / "r.db")
    # digits-free and quick: adding at T=10 falls below MSE 0.12 within a few hundred steps at lr 0.01.
    target = config(steps=2000, target_metric=0.12, eval_every=10, seq_len=5, hidden_size=16)
    result = train(target, db)
    step = result.final.target_step
    assert result.status == "finished" and step is not None and step == result.steps_done < 2000
    assert step % 10 == 0 and result.final.target_metric == 0.12
    vals = {e.step: e.metric for e in db.evals(result.run_id, "val")}
    assert vals[step] <= 0.12 and all(m > 0.12 for s, m in vals.items() if s < step)
    # Done means done: resuming the same config, or one with more steps, runs nothing more.
    again = train(config(steps=4000, target_metric=0.12, eval_every=10, seq_len=5, hidden_size=16), db, resume=True)
    assert again.run_id == result.run_id and again.steps_done == step
    # An accuracy target is reached from below.
    trainer = Trainer(config(task="temporal_order", seq_len=10, target_metric=0.9))
    assert trainer.reached_target(0.95) and not trainer.reached_target(0.5)
    assert Trainer(config(target_metric=0.1)).reached_target(0.05)


def test_a_device_that_is_not_here_is_refused_where_training_starts(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for device in ("cuda", "cuda:99", "meta", "mps" if not torch.backends.mps.is_available() else "xla"):
        for start in (lambda c: Trainer(c), lambda c: train(c), lambda c: train(c.model_dump())):
            with pytest.raises(ConfigError, match=r"device: must be a device this machine has: cpu \(got"):
                start(config(device=device))
    assert Trainer(config(device="cpu")).config.device == "cpu"


def test_a_run_stops_at_its_target_loss_whatever_its_metric(tmp_path):
    db = Database(tmp_path / "r.db")
    # temporal order's metric is an accuracy; the target here is its validation cross-entropy (ln 4 at chance)
    target = config(task="temporal_order", seq_len=10, steps=2000, target_loss=1.0, hidden_size=16)
    result = train(target, db)
    step = result.final.target_step
    assert result.status == "finished" and step is not None and step == result.steps_done < 2000
    assert result.final.target_loss == 1.0 and result.final.target_metric is None
    assert result.final.cpu_seconds > 0 and result.final.train_seconds > 0  # CPU and wall-clock time of the steps
    vals = {e.step: e.loss for e in db.evals(result.run_id, "val")}
    assert vals[step] <= 1.0 and all(loss > 1.0 for s, loss in vals.items() if s < step)
    again = train(target.model_copy(update={"steps": 4000}), db, resume=True)
    assert again.run_id == result.run_id and again.steps_done == step
    trainer = Trainer(config(task="copy", seq_len=5, target_loss=0.1))
    assert trainer.reached_target(0.0, 0.05) and not trainer.reached_target(1.0, 0.2)
    assert not trainer.reached_target(1.0, float("nan")) and not trainer.reached_target(1.0)
