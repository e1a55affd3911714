"""Runs under stress: gradients that explode, nan on most steps, a disk that fills, a run too large for memory."""

import errno
import math

import pytest
import torch

from bptt.build import make_model, make_task
from bptt.cli.main import main
from bptt.config import build_config
from bptt.store import Database
from bptt.training import MemoryLimitError, NonFiniteGradientError, Trainer, check_memory, estimate_memory
from bptt.training import checkpoint as checkpoint_module
from bptt.training.optim import clip_gradients, total_norm

SMALL = {
    "task": "adding",
    "seq_len": 10,
    "hidden_size": 8,
    "batch_size": 8,
    "eval_size": 32,
    "eval_every": 5,
    "checkpoint_every": 5,
    "progress": False,
    "lr": 0.01,
}
FLAGS = [
    "--task",
    "adding",
    "--seq-len",
    "10",
    "--hidden-size",
    "8",
    "--batch-size",
    "8",
    "--eval-size",
    "8",
    "--steps",
    "4",
    "--checkpoint-every",
    "2",
    "--eval-every",
    "2",
]


def config(**values):
    return build_config({**SMALL, **values})


def _scale_gradients(trainer, factor):
    for parameter in trainer.params:
        parameter.register_hook(lambda grad: grad * factor)


def test_the_total_norm_of_finite_gradients_never_overflows():
    grads = [torch.full((1000,), 3e21), torch.full((10,), -3e38), torch.tensor([1e-30])]
    total, largest = total_norm(grads)
    exact = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))
    assert math.isfinite(total) and total == pytest.approx(exact, rel=1e-12) and largest == pytest.approx(3e38)
    assert math.isnan(total_norm([torch.tensor([1.0, math.nan])])[0])
    assert total_norm([torch.tensor([1.0, -math.inf])])[0] == math.inf
    doubles = [torch.full((4,), 1e200, dtype=torch.float64)]
    assert total_norm(doubles)[0] == pytest.approx(2e200)


@pytest.mark.parametrize("scale", [3e21, 3e38])
def test_clipping_clips_gradients_of_any_finite_magnitude(scale):
    parameters = [torch.nn.Parameter(torch.zeros(1000)), torch.nn.Parameter(torch.zeros(3, 3))]
    parameters[0].grad = torch.full((1000,), scale)
    parameters[1].grad = torch.full((3, 3), -scale / 10)
    total, clipped = clip_gradients(parameters, 1.0, None)
    assert clipped and math.isfinite(total) and total > 1e21
    after = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in parameters))
    assert after == pytest.approx(1.0, rel=1e-5)
    assert all(torch.isfinite(p.grad).all() for p in parameters)


def test_a_run_whose_gradients_explode_is_clipped_not_skipped(tmp_path):
    db = Database(tmp_path / "r.db")
    trainer = Trainer(config(steps=25, clip_norm=1.0, nonfinite="raise"), db)
    _scale_gradients(trainer, 1e20)  # every element finite, their squares past float32's range
    result = trainer.run()
    assert result.status == "finished" and result.final.test_loss < 10
    assert result.final.clipped_steps == 25 and result.final.skipped_steps == 0
    steps = db.steps(result.run_id)
    assert all(s.clipped and not s.skipped and s.grad_norm > 1e19 for s in steps)


def _poison(trainer, steps):
    def hook(grad):
        return torch.full_like(grad, math.nan) if trainer.step + 1 in steps else grad

    trainer.params[0].register_hook(hook)


def test_a_run_that_skipped_most_steps_is_not_finished(tmp_path):
    db = Database(tmp_path / "r.db")
    trainer = Trainer(config(steps=10), db)
    _poison(trainer, set(range(1, 9)))
    result = trainer.run()
    assert result.status == "diverged" and result.final.skipped_steps == 8
    assert result.reason == "the gradient held nan or inf on 8 of 10 steps, all skipped"
    assert db.run(result.run_id).status == "diverged"


def test_nonfinite_raise_names_what_the_gradient_holds():
    trainer = Trainer(config(steps=5, nonfinite="raise"))
    _poison(trainer, {2})
    with pytest.raises(NonFiniteGradientError, match="the gradient holds nan values at step 2"):
        trainer.run()


def test_a_full_disk_fails_the_run_with_its_reason_and_removes_the_temporary_file(tmp_path, capsys, monkeypatch):
    real_save = torch.save
    calls = []

    def save(state, handle):  # the second checkpoint fills the disk halfway through its write
        calls.append(1)
        if len(calls) == 2:
            handle.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(state, handle)

    monkeypatch.setattr(checkpoint_module.torch, "save", save)
    db = tmp_path / "r.db"
    assert main(["train", "--db", str(db), *FLAGS]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["bptt: run failed: run 1 at step 4: OSError: [Errno 28] No space left on device"]
    with Database(db) as opened:
        (row,) = opened.runs()
        assert row.status == "failed" and row.reason == "OSError: [Errno 28] No space left on device"
    folder = tmp_path / "r-runs" / "run-1"
    # The step-2 checkpoint, whole, beside the folder's owner file; no temporary file.
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pt", "run.json"]
    assert checkpoint_module.load_checkpoint(folder / "checkpoint.pt")["step"] == 2


def test_a_disk_that_really_fills(small_disk, capsys):
    db = small_disk / "r.db"
    # A checkpoint of this model (weights and Adam's two moments) is larger than the 1 MiB disk.
    assert main(["train", "--db", str(db), *FLAGS, "--hidden-size", "300"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("bptt: run failed: run 1 at step 2: OSError: [Errno 28] No space left on device")
    with Database(db, read_only=True) as opened:
        (row,) = opened.runs()
        assert row.status == "failed" and "No space left on device" in row.reason
    assert [p.name for p in (small_disk / "r-runs" / "run-1").iterdir()] == ["run.json"]  # no partial checkpoint


def test_typical_runs_fit_with_a_wide_margin_and_absurd_ones_are_refused_with_the_estimate():
    typical = build_config({"task": "adding", "seq_len": 600, "hidden_size": 256, "batch_size": 64})
    estimate = check_memory(typical, make_task(typical))
    assert estimate.total < 2**30
    absurd = build_config({"task": "adding", "seq_len": 10**9})
    with pytest.raises(MemoryLimitError, match=r"memory: this run needs about [0-9.e+]+ GiB \(an evaluation chunk"):
        check_memory(absurd, make_task(absurd))


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"cell": "lstm", "num_layers": 3},
        {"cell": "gru", "residual": True, "num_layers": 2},
        {"activation": "prelu", "readout": "attention"},
        {"task": "sentiment", "delay": 5, "embedding_size": 16},
        {"task": "copy", "seq_len": 20, "cell": "lstm"},
    ],
)
def test_the_estimate_counts_the_parameters_a_model_has(values):
    run = build_config({"hidden_size": 16, **values})
    task = make_task(run)
    assert estimate_memory(run, task).parameters == sum(p.numel() for p in make_model(run, task).parameters())
