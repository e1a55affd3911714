"""Training history from the database, and the six impacts, against hand-computed values."""

import math

import pytest
import torch
from torch import nn

from bptt.config import build_config
from bptt.diagnostics import (
    RunOutcome,
    depth_gradients,
    local_minima,
    long_term_dependencies,
    perturbation_sensitivity,
    plateau_length,
    seed_spread,
    slow_convergence,
    steps_to_target,
    training_history,
)
from bptt.diagnostics.history import moving_mean
from bptt.store import Database, RunSummary
from bptt.tasks import TaskSettings, build_task
from bptt.training import train


def test_moving_mean_steps_to_target_and_plateau():
    losses = [1.0, 1.0, 0.98, None, 0.5, 0.2, 0.1]
    assert moving_mean(losses, window=2) == pytest.approx([1.0, 1.0, 0.99, 0.98, 0.5, 0.35, 0.15])
    assert steps_to_target(losses, 0.4, window=2) == 6
    assert steps_to_target(losses, 0.01, window=2) is None
    assert plateau_length(losses, baseline=1.0, window=1) == 3  # 1.0, 1.0, 0.98 lie within 5 %
    with pytest.raises(ValueError, match="window"):
        moving_mean(losses, window=0)


def test_training_history_reads_the_runs_steps(tmp_path):
    config = build_config(
        {
            "task": "adding",
            "seq_len": 8,
            "hidden_size": 8,
            "batch_size": 8,
            "steps": 10,
            "eval_size": 16,
            "eval_every": 5,
            "clip_norm": 0.05,
            "record_every": 5,
            "progress": False,
        }
    )
    with Database(tmp_path / "r.db") as db:
        result = train(config, db)
        history = training_history(db, result.run_id)
        rows = db.steps(result.run_id)
    assert history.steps == list(range(1, 11))
    assert history.loss == pytest.approx([r.loss for r in rows])
    assert history.grad_norm == pytest.approx([r.grad_norm for r in rows])
    assert history.clipped_steps == sum(r.clipped for r in rows) and history.skipped_steps == 0
    assert history.nan_events == []
    assert history.baseline == pytest.approx(1 / 6) and history.target_loss == pytest.approx(1 / 12)
    assert [step for step, _ in history.profiles] == [5, 10] and history.profiles[0][1].shape == (1, 8)
    assert history.plateau_steps == plateau_length(history.loss, 1 / 6)


def _outcome(delay, metric, loss, seed=0, losses=()):
    config = build_config({"task": "sentiment", "delay": delay, "seed": seed})
    return RunOutcome(config, RunSummary(test_metric=metric, test_loss=loss, baseline=math.log(2)), tuple(losses))


def test_long_term_dependencies_local_minima_and_seed_spread():
    runs = [_outcome(4, 1.0, 0.01), _outcome(50, 0.5, 0.69, 0), _outcome(50, 0.9, 0.2, 1), _outcome(50, 0.5, 0.70, 2)]
    points = long_term_dependencies(runs)
    assert [(p.delay, p.runs) for p in points] == [(4, 1), (50, 3)]
    assert points[1].metric == pytest.approx((0.5 + 0.9 + 0.5) / 3)
    assert local_minima(runs[1:]) == pytest.approx(2 / 3)
    spread = seed_spread(runs[1:])
    assert (spread.low, spread.high, spread.runs) == (0.5, 0.9, 3)
    assert spread.std == pytest.approx(torch.tensor([0.5, 0.9, 0.5]).std().item())


def test_slow_convergence_counts_steps_to_half_the_baseline():
    losses = [0.7] * 30 + [0.1] * 30
    assert slow_convergence(_outcome(4, 1.0, 0.1, losses=losses), window=5) == 33


def test_perturbation_sensitivity_of_the_identity_is_one():
    x = torch.randn(7, 4, 3, dtype=torch.float64)
    assert perturbation_sensitivity(nn.Identity(), x, scale=1e-3) == pytest.approx(1.0)
    double = lambda v: 2 * v  # noqa: E731
    assert perturbation_sensitivity(nn.Identity(), x, forward=double) == pytest.approx(1.0)


def test_depth_gradients_residual_keeps_the_first_layer_fed():
    config = build_config({"task": "adding", "seq_len": 10, "cell": "rnn", "activation": "sigmoid", "hidden_size": 8})
    task = build_task("adding", TaskSettings(seq_len=10))
    points = depth_gradients(config, task, depths=(1, 4), examples=16)
    assert [(p.depth, p.residual) for p in points] == [(1, False), (1, True), (4, False), (4, True)]
    assert points[0].bottom_to_top == pytest.approx(1.0)
    deep, deep_residual = points[2], points[3]
    assert deep.gradients.weight_ih.shape == (4,)
    assert deep_residual.bottom_to_top > 10 * deep.bottom_to_top
