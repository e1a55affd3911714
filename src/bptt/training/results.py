"""What a run hands back: each flush of its history, how it ended, and the errors that end it early."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from bptt.config import RunConfig
from bptt.models import SequenceModel
from bptt.provenance import provenance
from bptt.store import EvalRow, ProfileRow, RunSummary, StepRow
from bptt.tasks import Task

if TYPE_CHECKING:
    from bptt.training.loop import Trainer


class RunFailedError(RuntimeError):
    """A run that could not go on (the disk filled, memory ran out): recorded as "failed" with the reason."""


class NonFiniteGradientError(RunFailedError):
    """A gradient held nan or inf and the run's policy is ``nonfinite: raise``."""


def environment_failure(error: BaseException) -> bool:
    """Whether an error is the machine's (disk, memory, a database it cannot write) rather than the code's."""
    if isinstance(error, (OSError, MemoryError, torch.OutOfMemoryError, sqlite3.OperationalError)):
        return True
    return isinstance(error, RuntimeError) and "allocat" in str(error)


@dataclass(frozen=True)
class Progress:
    """One flush of a run's history: what ``Database.record_progress`` is given.

    steps, evals, profiles: the rows recorded since the last flush; steps_done
    and train_seconds: the run's counters; checkpoint: the file written right
    after this flush, or None.
    """

    steps: list[StepRow]
    evals: list[EvalRow]
    profiles: list[ProfileRow]
    steps_done: int
    train_seconds: float
    checkpoint: str | None


@dataclass
class RunResult:
    """What a run ended with. ``final`` is the summary also stored in the database;
    ``model`` is the trained model (``model.trained_steps`` says how far) and ``task`` its task."""

    run_id: int | None
    status: str
    reason: str | None
    steps_done: int
    final: RunSummary
    config: RunConfig
    losses: list[float] = field(default_factory=list)
    model: SequenceModel | None = field(default=None, repr=False)
    task: Task | None = field(default=None, repr=False)


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def run_summary(
    trainer: Trainer, status: str, test: tuple[float, float] | None, val: tuple[float, float] | None
) -> RunSummary:
    """The summary a run ends with (stored in the database): its test and validation results and counters."""
    config, task, steps, train_seconds = trainer.config, trainer.task, trainer.step, trainer.train_seconds
    cpu_seconds = trainer.cpu_seconds
    test_loss, test_metric = test if test is not None else (None, None)
    return RunSummary(
        run_id=trainer.run_id,
        identity=config.identity(),
        label=config.label(),
        task=config.task,
        seq_len=task.describe().get("seq_len"),
        status=status,
        steps=steps,
        test_loss=finite_or_none(test_loss),
        test_metric=finite_or_none(test_metric),
        val_loss=finite_or_none(val[0]) if val else None,
        val_metric=finite_or_none(val[1]) if val else None,
        metric=task.metric_name,
        baseline=task.baseline,
        chance_metric=task.chance_metric,
        solved=bool(test_metric is not None and math.isfinite(test_metric) and task.solved(test_metric)),
        target_metric=config.target_metric,
        target_step=trainer.target_step,
        skipped_steps=trainer.skipped,
        clipped_steps=trainer.clipped,
        target_loss=config.target_loss,
        train_seconds=round(train_seconds, 3),
        cpu_seconds=None if cpu_seconds is None else round(cpu_seconds, 3),
        steps_per_second=round(steps / train_seconds, 2) if train_seconds > 0 else None,
        device=config.device,
        threads=trainer.threads,
        **provenance(),
    )
