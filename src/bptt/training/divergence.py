"""Whether a run that trained all its steps has diverged all the same.

A loss that turns nan or inf stops a run at once (``bptt.training.loop``). A state can
also grow without bound and stay finite: a ReLU RNN whose W_hh has a singular value
above 1 may end with a test MSE of 1e20, a number no model that learned anything, or
merely stayed on the memoryless baseline, comes near. Such a run ends ``diverged``:

* its final validation or test loss is not finite, or is at least ``DIVERGED_MULTIPLE``
  times the task's memoryless baseline (the loss of the best predictor that ignores the
  inputs, ``Task.baseline``);
* or its final state overflowed: the Euclidean norm of h_T, the top layer's state after
  the last step, is not finite for some sequence of the validation set (float32 holds
  up to about 3.4e38; the norm is taken in float64, so only a state that already holds
  inf or nan counts).
"""

from __future__ import annotations

import math

import torch

from bptt.models import SequenceModel
from bptt.tasks import Batch, Task
from bptt.training.evaluation import EVAL_CHUNK

#: A final loss at least this many times the memoryless baseline marks a run diverged.
DIVERGED_MULTIPLE = 1e3


@torch.no_grad()
def final_state_norm(model: SequenceModel, batch: Batch, device: str = "cpu") -> float:
    """The largest ||h_T||_2 over the sequences of ``batch`` (top layer, in float64); inf or nan
    when a state overflowed."""
    was_training = model.training
    model.eval()
    largest = 0.0
    try:
        for start in range(0, batch.size, EVAL_CHUNK):
            part = batch.subset(torch.arange(start, min(start + EVAL_CHUNK, batch.size))).to(device)
            _, h_last = model.hidden_states(part.inputs, part.lengths)  # (B, H)
            wide = h_last.to(torch.complex128 if h_last.is_complex() else torch.float64)  # the LRU's is complex
            norms = torch.linalg.vector_norm(wide, dim=-1)
            if not bool(torch.isfinite(norms).all()):
                return math.nan if bool(torch.isnan(norms).any()) else math.inf
            largest = max(largest, float(norms.max()))
    finally:
        model.train(was_training)
    return largest


def divergence(
    task: Task, val_loss: float, test_loss: float, state_norm: float, multiple: float = DIVERGED_MULTIPLE
) -> str | None:
    """Why a run that trained all its steps has diverged (see the module docstring), or None."""
    if not math.isfinite(state_norm):
        return f"the final state overflowed: ||h_T|| is {state_norm} on the validation set"
    baseline = task.baseline
    for split, loss in (("validation", val_loss), ("test", test_loss)):
        if not math.isfinite(loss):
            return f"the final {split} loss is {loss}"
        if baseline > 0 and loss >= multiple * baseline:
            return (
                f"the final {split} loss {loss:.3g} is {loss / baseline:.3g} times the memoryless baseline "
                f"{baseline:.3g} (diverged from {multiple:g} times)"
            )
    return None
