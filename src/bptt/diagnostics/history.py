"""Training history, read back from the results database: what the gradient did over a run.

From the ``steps`` table (step, loss, grad_norm, clipped, skipped) of one run:

- gradient-norm history: the total L2 norm ||g||_2 of all parameter gradients
  before clipping, per step;
- clipped steps (||g|| > clip_norm or an element > clip_value) and skipped steps
  (a non-finite gradient; the update was not applied);
- NaN events: steps whose loss or gradient norm was not finite (stored as NULL);
- plateau length: the number of steps whose smoothed loss lies within 5 % of the
  memoryless baseline b, |m_s - b| <= 0.05 b, with m_s the mean training loss over
  the ``window`` steps ending at s;
- steps to a target loss: the first step s with m_s <= target.

The curve's quantities are ``bptt.diagnostics.curves``; this module reads a run back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bptt.build import make_task
from bptt.config import build_config
from bptt.diagnostics.curves import DEFAULT_WINDOW, PLATEAU_TOLERANCE, moving_mean, plateau_length, steps_to_target
from bptt.store import Database


@dataclass(frozen=True, eq=False)
class TrainingHistory:
    """What the gradient did over one run (see the module docstring for each quantity).

    steps, loss, grad_norm: per recorded step; loss and grad_norm are NaN where not finite.
    nan_events: the steps whose loss or gradient norm was not finite.
    profiles: recorded gradient profiles, (step, (num_layers, T) by lag), if the run recorded any.
    """

    steps: list[int]
    loss: list[float]
    grad_norm: list[float]
    clipped_steps: int
    skipped_steps: int
    nan_events: list[int]
    plateau_steps: int
    steps_to_target: int | None
    target_loss: float
    baseline: float
    profiles: list[tuple[int, torch.Tensor]]

    def to_dict(self) -> dict:
        return {
            "steps_recorded": len(self.steps),
            "clipped_steps": self.clipped_steps,
            "skipped_steps": self.skipped_steps,
            "nan_events": self.nan_events,
            "plateau_steps": self.plateau_steps,
            "steps_to_target": self.steps_to_target,
            "target_loss": self.target_loss,
            "baseline": self.baseline,
            "grad_norm": [None if math.isnan(v) else v for v in self.grad_norm],
            "loss": [None if math.isnan(v) else v for v in self.loss],
        }


def training_history(
    db: Database, run_id: int, target_fraction: float = 0.5, window: int = DEFAULT_WINDOW
) -> TrainingHistory:
    """The history of run ``run_id`` in ``db``; the target loss is ``target_fraction`` x the baseline.

    The baseline comes from the run's final summary, or from its task when the
    run has none. Raises ValueError for an unknown run.
    """
    row = db.run(run_id)
    if row is None:
        raise ValueError(f"run {run_id} is not in the database {db.path}")
    baseline = None if row.final is None else row.final.baseline
    if baseline is None:
        baseline = make_task(build_config(row.config)).baseline
    rows = db.steps(run_id)
    nan = float("nan")
    steps = [r.step for r in rows]
    loss = [nan if r.loss is None else float(r.loss) for r in rows]
    grad_norm = [nan if r.grad_norm is None else float(r.grad_norm) for r in rows]
    nan_events = [s for s, l, g in zip(steps, loss, grad_norm) if not (math.isfinite(l) and math.isfinite(g))]
    profiles = [(p.step, torch.tensor(p.hidden, dtype=torch.float64).flip(-1)) for p in db.gradient_profiles(run_id)]
    target = target_fraction * baseline
    return TrainingHistory(
        steps=steps,
        loss=loss,
        grad_norm=grad_norm,
        clipped_steps=sum(r.clipped for r in rows),
        skipped_steps=sum(r.skipped for r in rows),
        nan_events=nan_events,
        plateau_steps=plateau_length(loss, baseline, window=window) if baseline > 0 else 0,
        steps_to_target=steps_to_target(loss, target, window),
        target_loss=target,
        baseline=baseline,
        profiles=profiles,
    )


__all__ = [
    "DEFAULT_WINDOW",
    "PLATEAU_TOLERANCE",
    "TrainingHistory",
    "moving_mean",
    "plateau_length",
    "steps_to_target",
    "training_history",
]
