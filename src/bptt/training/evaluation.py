"""Evaluation on a fixed set: loss and metric, in chunks so a large set needs little memory at a time."""

from __future__ import annotations

import torch

from bptt.models import SequenceModel
from bptt.tasks import Batch, Task

#: Examples evaluated at once.
EVAL_CHUNK = 250


@torch.no_grad()
def evaluate(model: SequenceModel, task: Task, batch: Batch, device: str = "cpu") -> tuple[float, float]:
    """(loss, metric) of the model on a fixed set, computed in chunks, weighted by chunk size."""
    was_training = model.training
    model.eval()
    total_loss = total_metric = 0.0
    size = batch.size
    for start in range(0, size, EVAL_CHUNK):
        part = batch.subset(torch.arange(start, min(start + EVAL_CHUNK, size))).to(device)
        prediction = model(part.inputs, part.lengths)
        total_loss += float(task.loss(prediction, part)) * part.size
        total_metric += task.metric(prediction, part) * part.size
    model.train(was_training)
    return total_loss / size, total_metric / size
