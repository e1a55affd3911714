"""What the results database holds, one frozen dataclass per kind of row.

- ``RunRow``: a run (the ``runs`` table), its final summary read back as a ``RunSummary``;
- ``StepRow``: one training step (``steps``);
- ``EvalRow``: one evaluation on a fixed set (``evals``);
- ``ProfileRow``: one recorded gradient profile (``gradient_profiles``).

A ``RunSummary`` is stored as JSON in ``runs.final``. Reading one back is
tolerant: databases written by other versions of bptt may hold keys this
version does not know (ignored) and lack keys it does (None).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunSummary:
    """How a run ended: its final metrics, counters and provenance. Every field may be None.

    seq_len: the task's sequence length T; steps: steps trained; metric: the name of the
    task's metric (``test_metric``, ``val_metric`` and ``chance_metric`` are its values);
    baseline: the memoryless baseline of the loss; solved: whether the test metric counts
    as solving the task; target_step: the step whose evaluation first reached
    ``target_metric`` or ``target_loss``; train_seconds, cpu_seconds: the wall-clock and CPU time of
    the training steps (evaluations left out); threads: the intra-op thread count it trained with (on a
    CPU, the order of its sums); version, commit: the code that trained it (``bptt.provenance``);
    resumed_from: the step a sweep's worker started its last attempt at (sweeps only).
    """

    run_id: int | None = None
    identity: str | None = None
    label: str | None = None
    task: str | None = None
    seq_len: int | None = None
    status: str | None = None
    steps: int | None = None
    test_loss: float | None = None
    test_metric: float | None = None
    val_loss: float | None = None
    val_metric: float | None = None
    metric: str | None = None
    baseline: float | None = None
    chance_metric: float | None = None
    solved: bool | None = None
    target_metric: float | None = None
    target_loss: float | None = None
    target_step: int | None = None
    skipped_steps: int | None = None
    clipped_steps: int | None = None
    train_seconds: float | None = None
    cpu_seconds: float | None = None
    steps_per_second: float | None = None
    device: str | None = None
    threads: int | None = None
    version: str | None = None
    commit: str | None = None
    resumed_from: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        """A summary from its JSON mapping: unknown keys are ignored, missing ones are None."""
        return cls(**{name: data[name] for name in _SUMMARY_FIELDS if name in data})

    def to_dict(self) -> dict[str, Any]:
        """The summary as one flat mapping, in field order. ``resumed_from`` appears only when
        set: a run trained on its own has no attempt to have resumed from."""
        data = dataclasses.asdict(self)
        if self.resumed_from is None:
            del data["resumed_from"]
        return data


_SUMMARY_FIELDS = tuple(f.name for f in dataclasses.fields(RunSummary))


@dataclass(frozen=True)
class StepRow:
    """One training step: its loss and the total gradient norm ||g||_2 before clipping
    (None where not finite), whether the gradient was clipped, and whether the update was
    skipped (a non-finite gradient)."""

    step: int
    loss: float | None
    grad_norm: float | None
    clipped: bool
    skipped: bool


@dataclass(frozen=True)
class EvalRow:
    """One evaluation of the model on a fixed set (``split`` "val" or "test") after ``step`` steps."""

    step: int
    split: str
    loss: float | None
    metric: float | None


@dataclass(frozen=True)
class ProfileRow:
    """The gradient profile recorded at one training step.

    hidden: (num_layers, T) nested lists, batch-mean ||dL/dh_t||_2 of each layer by step t
    (not by lag); cell: the same for an LSTM's cell state c_t, else None.
    """

    step: int
    hidden: list[list[float]]
    cell: list[list[float]] | None = None


def controlled_length(config: Mapping[str, Any], summary: RunSummary | None = None) -> tuple[str, int | None]:
    """The length a run controls, as (name, value).

    ("delay", delay) where the run sets ``delay`` (the delayed sentiment task's
    controlled variable); otherwise ("seq_len", T), T the task's sequence length
    as the run's summary records it, or the config's ``seq_len`` (None: the
    task's default) when there is no summary.
    """
    if config.get("delay") is not None:
        return "delay", config["delay"]
    if summary is not None and summary.seq_len is not None:
        return "seq_len", summary.seq_len
    return "seq_len", config.get("seq_len")


@dataclass(frozen=True)
class RunRow:
    """A run as the database holds it: its settings, status, counters and final summary."""

    id: int
    identity: str
    sweep: str | None
    label: str
    task: str
    config: dict[str, Any]
    status: str
    reason: str | None
    steps_done: int
    final: RunSummary | None
    checkpoint: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    train_seconds: float

    @property
    def length(self) -> tuple[str, int | None]:
        """The run's controlled length, (name, value): see ``controlled_length``."""
        return controlled_length(self.config, self.final)

    def done(self, steps: int, target_metric: float | None, target_loss: float | None = None) -> bool:
        """Whether this row already holds the run a config of ``steps``, ``target_metric`` and
        ``target_loss`` asks for: finished with at least ``steps`` steps, or stopped early at those
        same targets."""
        if self.status != "finished":
            return False
        final = self.final or RunSummary()
        at_target = (
            (target_metric is not None or target_loss is not None)
            and final.target_step is not None
            and final.target_metric == target_metric
            and final.target_loss == target_loss
        )
        return self.steps_done >= steps or at_target
