"""The six impacts of the vanishing gradient, each a measured number.

1. slow convergence            ``slow_convergence``: steps until the smoothed training
                               loss reaches a target (a fraction of the memoryless baseline).
2. long-term dependencies      ``long_term_dependencies``: the final metric against the delay.
3. local minima                ``local_minima``: the fraction of runs (seeds) whose final
                               test loss is still within 5 % of the memoryless baseline.
4. instability                 ``seed_spread`` (the final metric across seeds) and
                               ``perturbation_sensitivity`` (output change under a small
                               input perturbation).
5. overemphasis on recent data ``bptt.diagnostics.inputs.recent_share`` of the input contribution.
6. difficulty with depth       ``depth_gradients``: per-layer gradient norms against depth,
                               with and without residual connections.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from bptt.build import make_model
from bptt.config import RunConfig, build_config
from bptt.diagnostics.common import cast_batch, fixed_batch, measuring_copy, task_objective
from bptt.diagnostics.curves import DEFAULT_WINDOW, PLATEAU_TOLERANCE, steps_to_target
from bptt.diagnostics.perturbation import perturbation_sensitivity
from bptt.diagnostics.profile import LayerGradients, layer_gradients
from bptt.store import Database, RunSummary, controlled_length
from bptt.tasks import Task

if TYPE_CHECKING:
    from bptt.training import RunResult


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run left: its config, final summary and training losses."""

    config: RunConfig
    final: RunSummary
    losses: tuple[float, ...] = field(default=())

    @classmethod
    def from_result(cls, result: RunResult) -> RunOutcome:
        return cls(result.config, result.final, tuple(result.losses))

    @classmethod
    def from_database(cls, db: Database, run_id: int) -> RunOutcome:
        row = db.run(run_id)
        if row is None:
            raise ValueError(f"run {run_id} is not in the database {db.path}")
        losses = tuple(float("nan") if step.loss is None else step.loss for step in db.steps(run_id))
        return cls(build_config(row.config), row.final or RunSummary(), losses)


def slow_convergence(outcome: RunOutcome, target_fraction: float = 0.5, window: int = DEFAULT_WINDOW) -> int | None:
    """Steps until the moving mean of the training loss reaches target_fraction x the baseline (None: never)."""
    baseline = outcome.final.baseline
    if baseline is None:
        raise ValueError("the run's final summary has no baseline; was it finished?")
    return steps_to_target(outcome.losses, target_fraction * baseline, window)


@dataclass(frozen=True)
class DelayPoint:
    """The mean final metric of the runs at one delay (or sequence length when the task has no delay)."""

    delay: int
    metric: float
    runs: int


def long_term_dependencies(outcomes: Sequence[RunOutcome]) -> list[DelayPoint]:
    """Final test metric against the delay, averaged over the runs at each delay; sorted by delay.

    The delay is the run's controlled length (``bptt.store.controlled_length``):
    ``config.delay``, or the sequence length for tasks without one. Runs with no
    finite test metric (diverged) are left out.
    """
    groups: dict[int, list[float]] = {}
    for outcome in outcomes:
        _, delay = controlled_length(outcome.config.model_dump(), outcome.final)
        metric = outcome.final.test_metric
        if delay is None or metric is None or not math.isfinite(metric):
            continue
        groups.setdefault(int(delay), []).append(float(metric))
    return [DelayPoint(d, statistics.fmean(v), len(v)) for d, v in sorted(groups.items())]


def stuck_at_baseline(outcome: RunOutcome, tolerance: float = PLATEAU_TOLERANCE) -> bool:
    """Whether the final test loss L satisfies L >= (1 - tolerance) x baseline (or the run diverged)."""
    loss, baseline = outcome.final.test_loss, outcome.final.baseline
    if baseline is None:
        raise ValueError("the run's final summary has no baseline; was it finished?")
    return loss is None or not math.isfinite(loss) or loss >= (1 - tolerance) * baseline


def local_minima(outcomes: Sequence[RunOutcome], tolerance: float = PLATEAU_TOLERANCE) -> float:
    """The fraction of runs stuck at the memoryless baseline (see ``stuck_at_baseline``)."""
    if not outcomes:
        raise ValueError("local_minima needs at least one run")
    return sum(stuck_at_baseline(o, tolerance) for o in outcomes) / len(outcomes)


@dataclass(frozen=True)
class Spread:
    """The final test metric across runs: mean, sample standard deviation, min and max."""

    mean: float
    std: float
    low: float
    high: float
    runs: int


def seed_spread(outcomes: Sequence[RunOutcome]) -> Spread:
    """How much the final metric moves between runs that differ only in the seed (NaN std for one run)."""
    values = [
        float(o.final.test_metric)
        for o in outcomes
        if o.final.test_metric is not None and math.isfinite(o.final.test_metric)
    ]
    if not values:
        raise ValueError("seed_spread needs at least one run with a finite test metric")
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return Spread(statistics.fmean(values), std, min(values), max(values), len(values))


@dataclass(frozen=True, eq=False)
class DepthPoint:
    """Per-layer gradients of one stacked network at initialisation."""

    depth: int
    residual: bool
    gradients: LayerGradients

    @property
    def bottom_to_top(self) -> float:
        """||dL/dW_ih^{(0)}||_F / ||dL/dW_ih^{(L-1)}||_F: how much less the first layer receives.

        NaN when the top layer receives no gradient.
        """
        top = float(self.gradients.weight_ih[-1])
        return float(self.gradients.weight_ih[0]) / top if top > 0 else math.nan


def depth_gradients(
    config: RunConfig,
    task: Task,
    depths: Sequence[int] = (1, 2, 4),
    residual: Sequence[bool] = (False, True),
    examples: int = 64,
) -> list[DepthPoint]:
    """Per-layer gradient norms of ``config``'s network at initialisation, at each depth, with and without residual.

    Every model is built from ``config.seed`` and measured in float64 on the
    task's fixed batch; ``num_layers`` and ``residual`` are the only settings changed.
    """
    batch = cast_batch(fixed_batch(task, examples), torch.float64)
    points = []
    for depth in depths:
        for skip in residual:
            model = measuring_copy(make_model(replace_config(config, num_layers=depth, residual=skip), task))
            points.append(DepthPoint(depth, skip, layer_gradients(model, task_objective(model, task, batch))))
    return points


def replace_config(config: RunConfig, **changes: Any) -> RunConfig:
    """``config`` with some settings changed, validated again."""
    return build_config({**config.model_dump(), **changes})


__all__ = [
    "DelayPoint",
    "DepthPoint",
    "RunOutcome",
    "Spread",
    "depth_gradients",
    "local_minima",
    "long_term_dependencies",
    "perturbation_sensitivity",
    "replace_config",
    "seed_spread",
    "slow_convergence",
    "stuck_at_baseline",
]
