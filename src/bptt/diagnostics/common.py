"""What every diagnostic shares: the objective, the fixed batch, lags and precision.

Tensors are time-major, (T, B, features). Steps are indexed t = 0 .. T-1 and
the *lag* of step t is k = T - 1 - t: lag 0 is the last step, where the loss
of a sequence-to-one task is read.

A diagnostic runs one forward and one backward of an *objective*: a callable
that runs the model and returns the scalar loss. ``task_objective`` builds the
usual one (the task's loss on a fixed batch).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from bptt.checks import positive_int
from bptt.modules import require_recurrent
from bptt.modules.base import RecurrentBase
from bptt.tasks import Batch, Task

#: A closure that runs the forward pass and returns the scalar loss.
Objective = Callable[[], torch.Tensor]

#: Examples in the fixed batch the diagnostics measure on.
DEFAULT_EXAMPLES = 128


def recurrent_of(model: nn.Module) -> RecurrentBase:
    """The first bptt RNN/LSTM/GRU inside ``model`` (``model`` itself if it is one)."""
    return require_recurrent(
        model, "this diagnostic", " (for any other torch.nn.Module use bptt.diagnostics.input_contribution)"
    )


def fixed_batch(task: Task, examples: int = DEFAULT_EXAMPLES) -> Batch:
    """The first ``examples`` examples of the task's fixed test set: the same on every call."""
    examples = positive_int("examples", examples)
    test = task.eval_set("test")
    return test.subset(torch.arange(min(examples, test.size)))


def cast_batch(batch: Batch, dtype: torch.dtype) -> Batch:
    """Dense float inputs (and float targets) in ``dtype``; token ids and class ids unchanged."""
    convert = lambda t: t if t is None or not t.is_floating_point() else t.to(dtype)  # noqa: E731
    return Batch(convert(batch.inputs), convert(batch.targets), batch.lengths)


def task_objective(model: nn.Module, task: Task, batch: Batch) -> Objective:
    """loss = task.loss(model(inputs, lengths), batch): the loss a training step would take."""

    def objective() -> torch.Tensor:
        return task.loss(model(batch.inputs, batch.lengths), batch)

    return objective


def measuring_copy(model: nn.Module, dtype: torch.dtype | None = torch.float64) -> nn.Module:
    """A copy of ``model`` in eval mode (no dropout), in ``dtype``, with zeroed gradients.

    float64 by default, so that gradients of 1e-40 and below are measured
    rather than flushed to zero as they would be in float32.
    """
    clone = copy.deepcopy(model)
    if dtype is not None:
        clone = clone.to(dtype)
    clone.eval()
    clone.zero_grad(set_to_none=True)
    return clone


def by_lag(per_step: torch.Tensor) -> torch.Tensor:
    """Reverse the last (time) axis: index t becomes lag k = T - 1 - t."""
    return per_step.flip(-1)


def lag_index(seq_len: int, lag: int) -> int:
    """The largest lag <= ``lag`` a sequence of ``seq_len`` steps has."""
    return max(0, min(lag, seq_len - 1))
