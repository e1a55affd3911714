"""``diagnose_module(module, data)``: the user's own module on the user's data or a task's batch.

Everything ``diagnose`` measures when the module holds a recurrent layer (torch.nn's are
converted to bptt's on a copy); else the input contribution and the sensitivity, as a
``ModuleDiagnosis``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from bptt.diagnostics import figures
from bptt.diagnostics.common import DEFAULT_EXAMPLES, measuring_copy
from bptt.diagnostics.diagnosis import (
    DEFAULT_LAG,
    DEFAULT_RECENT,
    Diagnosis,
    _device,
    _measure,
    _time_major,
    _time_major_forward,
)
from bptt.diagnostics.inputs import input_contribution, recent_share
from bptt.diagnostics.module import (
    ModuleBatch,
    ShapeError,
    first_embedding,
    loss_function,
    task_batch,
    time_first_hint,
)
from bptt.diagnostics.perturbation import perturbation_sensitivity
from bptt.diagnostics.profile import DEFAULT_EPSILON
from bptt.diagnostics.wording import format_share, notebook_html, sci
from bptt.modules import convert, find_recurrent
from bptt.tasks import Task


@dataclass(frozen=True, eq=False)
class ModuleDiagnosis:
    """What can be measured on any module: input contribution by position and sensitivity."""

    label: str
    loss: float
    contribution: torch.Tensor
    sensitivity: float
    recent: int = DEFAULT_RECENT

    @property
    def seq_len(self) -> int:
        return self.contribution.shape[0]

    @property
    def input_share_recent(self) -> float:
        return recent_share(self.contribution, self.recent)

    def verdict(self) -> str:
        recent = min(self.recent, self.seq_len)
        first = float(self.contribution[0])
        last = float(self.contribution[-1])
        if math.isnan(self.input_share_recent):
            return f"no input contribution measured (dL/dx is zero at every step); output sensitivity {self.sensitivity:.3g}"
        ends = (
            f"||dL/dx|| at the first step is {sci(first / last)} of the last"
            if last > 0
            else "||dL/dx|| is zero at the last step"
        )
        return (
            f"the last {recent} of {self.seq_len} inputs carry {format_share(self.input_share_recent)} of the input "
            f"contribution (equal weighting: {format_share(recent / self.seq_len)}); {ends}; "
            f"output sensitivity {self.sensitivity:.3g}"
        )

    def figures(self) -> dict:
        return {"contribution": figures.contribution_figure({self.label: self})}

    def _repr_html_(self) -> str:
        return notebook_html(self.label, self.figures(), self.verdict())

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "seq_len": self.seq_len,
            "loss": self.loss,
            "recent": self.recent,
            "input_share_last": self.input_share_recent,
            "sensitivity": self.sensitivity,
            "input_contribution": self.contribution.tolist(),
            "verdict": self.verdict(),
        }


def diagnose_module(
    module: nn.Module,
    data: ModuleBatch | Task,
    *,
    examples: int = DEFAULT_EXAMPLES,
    input_kind: str = "auto",
    batch_first: bool = False,
    lag: int = DEFAULT_LAG,
    epsilon: float = DEFAULT_EPSILON,
    recent: int = DEFAULT_RECENT,
    dtype: torch.dtype | None = torch.float64,
    label: str | None = None,
) -> Diagnosis | ModuleDiagnosis:
    """Measure the user's own module on the user's data (a ``ModuleBatch``) or on a task's fixed batch.

    A copy in ``dtype`` is measured, its torch.nn recurrent layers converted to bptt's
    (``bptt.convert``, same weights and outputs), so a module holding a recurrent layer gets
    every quantity ``diagnose`` measures; any other module gets the input contribution and the
    sensitivity (``ModuleDiagnosis``). Token ids are measured at the output of the module's first
    ``nn.Embedding``. A module and data that do not fit raise ``ShapeError`` naming both shapes.
    """
    batch = task_batch(data, module, examples, input_kind, batch_first) if isinstance(data, Task) else data
    measured = convert(measuring_copy(module, dtype))
    if dtype is not None:
        batch = batch.to(dtype)
    batch = batch.to(_device(measured))
    loss_fn = loss_function(batch)
    forward = (lambda x: measured(x, batch.lengths)) if batch.lengths is not None else measured
    try:
        with torch.no_grad():
            prediction = forward(batch.inputs)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        raise ShapeError(
            f"the module cannot take inputs of shape {tuple(batch.inputs.shape)} "
            f"({batch.inputs.dtype}): {str(error).splitlines()[0]}" + time_first_hint(batch)
        ) from None
    loss_fn(prediction)  # the output's shape against the targets'
    # A recurrent module on a task that scores every step is measured as ``diagnose`` measures it: on the
    # loss of the last step alone (``Diagnosis.last_step``); any other module gets the task's whole loss.
    last_step = isinstance(data, Task) and data.kind == "per_step" and batch.lengths is None
    measured_loss = loss_fn
    if last_step:
        end = (lambda t: t[:, -1:]) if batch.batch_first else (lambda t: t[-1:])
        end_loss = loss_function(replace(batch, targets=end(batch.targets)))
        measured_loss = lambda p: end_loss(end(p))  # noqa: E731
    encoder = first_embedding(measured) if batch.tokens else None
    if batch.tokens and encoder is None:
        raise ShapeError(
            f"inputs of shape {tuple(batch.inputs.shape)} are token ids, but the module holds no "
            "nn.Embedding to measure them at"
        )
    name = label or type(module).__name__
    if find_recurrent(measured) is not None:
        return _measure(
            measured,
            batch.inputs,
            forward,
            measured_loss,
            encoder,
            name,
            lag,
            epsilon,
            recent,
            batch.batch_first,
            batch.lengths,
            last_step=last_step,
        )
    contribution = input_contribution(
        measured,
        batch.inputs,
        loss_fn,
        at=encoder,
        forward=forward,
        batch_first=batch.batch_first,
        lengths=batch.lengths,
    )
    with torch.no_grad():
        loss = float(loss_fn(forward(batch.inputs)))
    sensitivity = perturbation_sensitivity(
        measured,
        _time_major(batch.inputs, batch.batch_first),
        at=encoder,
        forward=_time_major_forward(forward, batch.batch_first),
    )
    return ModuleDiagnosis(name, loss, contribution, sensitivity, recent)
