"""What a run hands back: each flush of its history, how it ended, and the errors that end it early."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import torch

from bptt.config import RunConfig
from bptt.models import SequenceModel
from bptt.store import EvalRow, ProfileRow, RunSummary, StepRow
from bptt.tasks import Task


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
