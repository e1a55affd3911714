"""What a task is: a seeded source of batches that knows its loss, metric and baseline.

Batches are time-major: ``inputs`` is (T, B, input_size) float for dense tasks
or (T, B) long token ids for token tasks; ``targets`` is (B,) class ids, (B, 1)
regression values, or (T, B) per-step class ids for per-step tasks (copy).
``lengths`` (B,) holds each sequence's true length when lengths vary (padding
sits after the end); None when every sequence has length T.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F

from bptt.registry import Registry


class TaskError(ValueError):
    """Bad task settings or unusable data: the message names the field and what is allowed."""


@dataclass(frozen=True)
class TaskSettings:
    """Everything a task can be asked for. Each task reads the fields it uses and
    rejects values it cannot honour with a ``TaskError`` naming the field.

    seq_len: sequence length T (for tasks with a free length).
    delay: steps between the informative token and the end (delayed sentiment).
    variant: a task's named variant (adding: "default", "hochreiter", "tcn").
    data_dir: where files live for tasks that read them (mnist).
    eval_size: examples in the fixed validation and test sets of generated tasks.
    seed: the seed every generator of the task is derived from.
    """

    seq_len: int | None = None
    delay: int | None = None
    variant: str | None = None
    data_dir: str | None = None
    eval_size: int = 1000
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    inputs: torch.Tensor
    targets: torch.Tensor
    lengths: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return self.inputs.shape[1]

    def to(self, device: torch.device | str) -> Batch:
        lengths = None if self.lengths is None else self.lengths.to(device)
        return Batch(self.inputs.to(device), self.targets.to(device), lengths)

    def subset(self, index: torch.Tensor) -> Batch:
        """The examples ``index`` (along the batch axis) of this batch."""
        targets = (
            self.targets[:, index]
            if self.targets.dim() == 2 and self.targets.dtype == torch.long
            else self.targets[index]
        )
        return Batch(self.inputs[:, index], targets, None if self.lengths is None else self.lengths[index])


def generator(seed: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for one named stream of a task's randomness (train, val, test, ...)."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + stream)


def step_mask(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(T, B) bool, True at the real steps t < lengths[b]; padding sits after each end."""
    steps = torch.arange(seq_len, device=lengths.device).unsqueeze(1)
    return steps < lengths.unsqueeze(0)


class Task(ABC):
    """A learning problem. Subclasses set the class attributes and implement ``sample``
    (synthetic tasks) or override ``train_batch``/``eval_set`` (datasets).

    kind:
        "regression"      - prediction (B, output_size), MSE loss;
        "classification"  - prediction (B, classes) logits, cross-entropy, accuracy;
        "per_step"        - prediction (T, B, classes) logits, mean cross-entropy over all steps.
    input_kind: "dense" (float features) or "tokens" (ids, embedded by the model).
    recommended: run settings this task trains well with at its default length; a run
        config takes them where it leaves the setting unset (``bptt.config``).
    """

    name: str = ""
    kind: Literal["regression", "classification", "per_step"] = "classification"
    input_kind: Literal["dense", "tokens"] = "dense"
    input_size: int = 1  # features per step, or vocabulary size for tokens
    output_size: int = 1
    metric_name: str = "accuracy"
    higher_is_better: bool = True
    recommended: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, settings: TaskSettings) -> None:
        self.settings = settings

    # -- data ---------------------------------------------------------------------
    def sample(self, batch_size: int, gen: torch.Generator) -> Batch:
        raise NotImplementedError(f"task {self.name!r} draws no synthetic samples")

    def train_batch(self, batch_size: int, gen: torch.Generator) -> Batch:
        return self.sample(batch_size, gen)

    def eval_set(self, split: Literal["val", "test"] = "test") -> Batch:
        """A fixed held-out set: the same examples on every call, from the task seed."""
        stream = {"val": 1, "test": 2}[split]
        return self.sample(self.settings.eval_size, generator(self.settings.seed, stream))

    @property
    def seq_len(self) -> int:
        assert self.settings.seq_len is not None
        return self.settings.seq_len

    # -- scoring ------------------------------------------------------------------
    def loss(self, prediction: torch.Tensor, batch: Batch) -> torch.Tensor:
        if self.kind == "regression":
            return F.mse_loss(prediction, batch.targets.to(prediction.dtype))
        if self.kind == "per_step":
            return F.cross_entropy(prediction.flatten(0, 1), batch.targets.flatten())
        return F.cross_entropy(prediction, batch.targets)

    def metric(self, prediction: torch.Tensor, batch: Batch) -> float:
        """The task's headline number (``metric_name``)."""
        if self.kind == "regression":
            return float(F.mse_loss(prediction, batch.targets.to(prediction.dtype)))
        return float((prediction.argmax(-1) == batch.targets).float().mean())

    @property
    @abstractmethod
    def baseline(self) -> float:
        """The loss of the best memoryless predictor (one that ignores the inputs)."""

    @property
    def chance_metric(self) -> float:
        """The metric the memoryless predictor scores."""
        if self.kind == "regression":
            return self.baseline
        return 1.0 / self.output_size

    def solved(self, metric: float) -> bool:
        """Whether a final metric clears the task's bar for "learned the dependency"."""
        if self.kind == "regression":
            return metric < 0.1 * self.baseline
        return metric > self.chance_metric + 0.5 * (1.0 - self.chance_metric)

    def describe(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "seq_len": self.settings.seq_len,
            "metric": self.metric_name,
            "baseline": self.baseline,
            "chance_metric": self.chance_metric,
        }


TASKS: Registry[type[Task]] = Registry("task")


def cross_entropy_baseline(class_probabilities: list[float]) -> float:
    """Entropy (nats) of the label distribution: the best memoryless cross-entropy."""
    return -sum(p * math.log(p) for p in class_probabilities if p > 0)
