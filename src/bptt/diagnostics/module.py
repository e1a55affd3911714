"""Diagnosing the user's own module on the user's own data (or on a task's fixed batch).

A ``ModuleBatch`` says what the module is fed and how its output is scored:

    inputs: (T, B, I) float features, or (T, B) integer token ids for a model that embeds
        them ((B, T, ...) with ``batch_first``);
    targets: (B,) class ids or (B,) / (B, K) regression values for a sequence-to-one model;
        (T, B) class ids for a per-step one ((B, T) with ``batch_first``);
    loss: "ce" (cross-entropy) or "mse";
    lengths: (B,) true lengths, or None; when given, the module is called as
        ``module(inputs, lengths)``, else ``module(inputs)``.

``load_batch`` reads one from a ``.pt`` file (a dict of tensors, loaded weights-only) or
an ``.npz`` file (no pickles); ``task_batch`` takes a task's fixed batch. Data that cannot
be measured ends with one ``DataError`` line: inputs that are not real numbers or integer
ids (complex values are not cast), nan or inf values, no examples or no steps, negative
class ids or token ids, lengths outside 1..T. A module whose output does not fit the
targets (a class id at or above its number of classes included), or inputs whose width
does not fit the module, end with one ``ShapeError`` line naming both shapes; inputs are
fed time-first, and the line says so (``--batch-first`` for a module that takes (B, T, ...)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bptt.diagnostics.common import fixed_batch
from bptt.tasks import Task

LOSSES = ("ce", "mse")
INPUT_KINDS = ("auto", "tokens", "dense")


class ShapeError(ValueError):
    """Data and a module that do not fit each other: the message names both shapes."""


class DataError(ValueError):
    """A data file that cannot be used: the message names the file and what is wrong."""


@dataclass(frozen=True)
class ModuleBatch:
    inputs: torch.Tensor
    targets: torch.Tensor
    loss: str
    lengths: torch.Tensor | None = None
    batch_first: bool = False

    @property
    def tokens(self) -> bool:
        return not self.inputs.is_floating_point()

    def time_major(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.transpose(0, 1) if self.batch_first else tensor

    def to(self, target: torch.dtype | torch.device) -> ModuleBatch:
        """On another device (every tensor), or in another float dtype (float inputs and targets; ids unchanged)."""
        if isinstance(target, torch.device):
            lengths = None if self.lengths is None else self.lengths.to(target)
            return replace(self, inputs=self.inputs.to(target), targets=self.targets.to(target), lengths=lengths)
        cast = lambda t: t.to(target) if t.is_floating_point() else t  # noqa: E731
        return replace(self, inputs=cast(self.inputs), targets=cast(self.targets))


def time_first_hint(batch: ModuleBatch) -> str:
    """What a shape error adds when the inputs were fed time-first: how to feed them batch-first."""
    if batch.batch_first:
        return ""
    return (
        "; inputs are fed time-first, (T, B, ...): a module that takes (B, T, ...) (batch_first=True) "
        "needs --batch-first"
    )


def first_embedding(module: nn.Module) -> nn.Embedding | None:
    return next((m for m in module.modules() if isinstance(m, nn.Embedding)), None)


def task_batch(
    task: Task, module: nn.Module, examples: int, input_kind: str = "auto", batch_first: bool = False
) -> ModuleBatch:
    """The task's fixed batch as the module takes it. Token tasks give ids when ``input_kind`` is
    "tokens" (or "auto" and the module holds an ``nn.Embedding``), else one-hot vectors."""
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input must be one of {', '.join(INPUT_KINDS)}, got {input_kind!r}")
    batch = fixed_batch(task, examples)
    inputs = batch.inputs
    if task.input_kind == "tokens":
        ids = input_kind == "tokens" or (input_kind == "auto" and first_embedding(module) is not None)
        if not ids:
            inputs = F.one_hot(inputs, task.input_size).to(torch.get_default_dtype())
    elif input_kind == "tokens":
        raise ValueError(f"input 'tokens' needs a token task; task {task.name!r} has dense inputs")
    targets = batch.targets
    if batch_first:
        inputs = inputs.transpose(0, 1).contiguous()
        targets = targets.t().contiguous() if task.kind == "per_step" else targets
    return ModuleBatch(inputs, targets, "mse" if task.kind == "regression" else "ce", batch.lengths, batch_first)


def load_batch(path: str | Path, loss: str | None = None, batch_first: bool = False) -> ModuleBatch:
    """A batch from ``path`` (.pt: a dict of tensors; .npz: arrays) holding ``inputs``, ``targets`` and
    optionally ``lengths``. ``loss`` defaults to "ce" for integer targets, else "mse"."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--data: file not found: {path}")
    try:
        if path.suffix == ".pt":
            data = torch.load(path, map_location="cpu", weights_only=True)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as arrays:
                data = {name: torch.from_numpy(arrays[name].copy()) for name in arrays.files}
        else:
            raise DataError(f"--data: {path} must be a .pt or .npz file")
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"--data: cannot read {path}: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict) or not {"inputs", "targets"} <= set(data):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataError(f"--data: {path} must hold 'inputs' and 'targets' (and optionally 'lengths'), got {keys}")
    inputs, targets, lengths = data["inputs"], data["targets"], data.get("lengths")
    for name, tensor in (("inputs", inputs), ("targets", targets), ("lengths", lengths)):
        if tensor is not None and not isinstance(tensor, torch.Tensor):
            raise DataError(f"--data: {path}: {name} must be a tensor or array, got {type(tensor).__name__}")
        if tensor is not None and tensor.is_complex():
            raise DataError(f"--data: {path}: {name} must hold real numbers or integers, got {tensor.dtype}")
        if tensor is not None and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise DataError(f"--data: {path}: {name} hold nan or inf ({bad} of {tensor.numel()} values); finite only")
    if inputs.dim() not in (2, 3):
        raise DataError(
            f"--data: {path}: inputs must be (T, B, I) features or (T, B) token ids, got shape {tuple(inputs.shape)}"
        )
    if inputs.dim() == 2 and inputs.is_floating_point():
        inputs = inputs.unsqueeze(-1)  # one feature per step
    steps, examples = (inputs.shape[1], inputs.shape[0]) if batch_first else (inputs.shape[0], inputs.shape[1])
    if steps == 0 or examples == 0 or inputs.shape[-1] == 0:
        raise DataError(f"--data: {path}: inputs of shape {tuple(inputs.shape)} hold no examples, steps or features")
    if not inputs.is_floating_point() and int(inputs.min()) < 0:
        raise DataError(f"--data: {path}: token ids must be >= 0, got {int(inputs.min())}")
    if lengths is not None and (
        lengths.is_floating_point()
        or tuple(lengths.shape) != (examples,)
        or int(lengths.min()) < 1
        or int(lengths.max()) > steps
    ):
        raise DataError(f"--data: {path}: lengths must be ({examples},) integers in 1..{steps}")
    loss = loss or ("mse" if targets.is_floating_point() else "ce")
    if loss not in LOSSES:
        raise DataError(f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if loss == "ce" and targets.is_floating_point():
        raise DataError(f"--data: {path}: loss 'ce' needs integer class targets, got {targets.dtype}")
    if loss == "ce" and targets.numel() and int(targets.min()) < 0:
        raise DataError(f"--data: {path}: class ids must be >= 0, got {int(targets.min())}")
    inputs = inputs.to(torch.get_default_dtype()) if inputs.is_floating_point() else inputs.long()
    targets = targets.to(torch.get_default_dtype()) if loss == "mse" else targets.long()
    return ModuleBatch(inputs, targets, loss, None if lengths is None else lengths.long(), batch_first)


def loss_function(batch: ModuleBatch) -> Callable[[torch.Tensor], torch.Tensor]:
    """prediction -> scalar loss, after checking that the prediction's shape fits the targets."""
    targets = batch.targets

    def loss(prediction: torch.Tensor) -> torch.Tensor:
        if not isinstance(prediction, torch.Tensor):
            raise ShapeError(f"the module must return one tensor of predictions, got {type(prediction).__name__}")
        shape, wanted = tuple(prediction.shape), tuple(targets.shape)
        if batch.loss == "ce":
            if prediction.dim() != targets.dim() + 1 or shape[:-1] != wanted:
                raise ShapeError(
                    f"the module's output has shape {shape} but the targets have shape {wanted}: "
                    f"loss 'ce' needs the output {(*wanted, 'classes')}" + time_first_hint(batch)
                )
            if targets.numel() and int(targets.max()) >= shape[-1]:
                raise ShapeError(
                    f"the targets hold class id {int(targets.max())}, but the module's output has {shape[-1]} "
                    f"classes (ids 0 to {shape[-1] - 1})"
                )
            return F.cross_entropy(prediction.reshape(-1, shape[-1]), targets.reshape(-1))
        if shape != wanted:
            if prediction.numel() == targets.numel() and prediction.dim() == targets.dim() + 1 and shape[-1] == 1:
                prediction = prediction.squeeze(-1)  # (B, 1) against (B,)
            else:
                raise ShapeError(
                    f"the module's output has shape {shape} but the targets have shape {wanted}: "
                    "loss 'mse' needs the same shape" + time_first_hint(batch)
                )
        return F.mse_loss(prediction, targets)

    return loss
