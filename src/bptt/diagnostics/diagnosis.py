"""One call, every quantity, and a verdict in plain words.

``diagnose(model, task)`` measures a bptt ``SequenceModel`` (or any module with
a bptt recurrent layer that takes ``(inputs, lengths)``) on the task's fixed
batch: the gradient profile by lag, the memory horizon, the input contribution
by position, each step's share of the W_hh update, the Jacobian chain against
Pascanu's bound, the per-layer gradient norms and the sensitivity to a small
input perturbation. ``Diagnosis.verdict()`` says what they mean, e.g.

    vanishing: dL/dh at lag 50 is 3e-12 of lag 0; memory horizon 9 steps;
    99.7 % of the W_hh update comes from the last 10 steps; ...

``diagnose_module(module, task)`` measures any ``torch.nn.Module`` mapping
(T, B, I) inputs to predictions: input contribution (and sensitivity) only,
since its hidden states are out of reach.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bptt.diagnostics.common import (
    DEFAULT_EXAMPLES,
    cast_batch,
    fixed_batch,
    measuring_copy,
    recurrent_of,
    task_objective,
)
from bptt.diagnostics.impacts import perturbation_sensitivity
from bptt.diagnostics.inputs import input_contribution, recent_share
from bptt.diagnostics.jacobian import JacobianChain, jacobian_chain, layer_inputs
from bptt.diagnostics.profile import (
    DEFAULT_EPSILON,
    GradientProfile,
    LayerGradients,
    memory_horizon,
    profile_and_layers,
)
from bptt.diagnostics.updates import UpdateShare, update_share
from bptt.tasks import Batch, Task

DEFAULT_LAG = 50
DEFAULT_RECENT = 10


def _percent(share: float) -> str:
    if math.isnan(share):
        return "n/a"
    if 0.9995 <= share < 1:
        decimals = min(4, -math.floor(math.log10(1 - share)) - 2)  # enough to show it is not 100 %
        return f"{math.floor(100 * share * 10**decimals) / 10**decimals:.{decimals}f} %"
    return f"{100 * share:.1f} %"


def _sci(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2g}"


def _classify(ratio: float, epsilon: float) -> str:
    if math.isnan(ratio):
        return "no gradient"
    if ratio < epsilon:
        return "vanishing"
    if ratio > 1 / epsilon:
        return "exploding"
    return "no vanishing"


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """Every quantity measured on one model (see each type for its equation).

    contribution: (T,) input contribution by position t. horizon: memory horizon per layer.
    chain: the Jacobian chain of the top layer along example 0. sensitivity: see
    ``perturbation_sensitivity``. lag, epsilon, recent: the settings the verdict reads.
    """

    label: str
    cell: str
    loss: float
    profile: GradientProfile
    horizon: list[int]
    contribution: torch.Tensor
    updates: UpdateShare
    chain: JacobianChain
    layers: LayerGradients
    sensitivity: float
    lag: int = DEFAULT_LAG
    epsilon: float = DEFAULT_EPSILON
    recent: int = DEFAULT_RECENT

    @property
    def seq_len(self) -> int:
        return self.profile.seq_len

    @property
    def lag_used(self) -> int:
        """The lag the verdict reports: ``lag``, or T - 1 for shorter sequences."""
        return min(self.lag, self.seq_len - 1)

    @property
    def gradient_ratio(self) -> float:
        """g[top, lag] / g[top, 0]."""
        return self.profile.ratio(self.lag)

    @property
    def update_share_recent(self) -> float:
        """The share of the top layer's W_hh update from the last ``recent`` steps."""
        return self.updates.share(self.recent, "last")

    @property
    def input_share_recent(self) -> float:
        return recent_share(self.contribution, self.recent)

    def verdict(self) -> str:
        """The findings as one paragraph of plain language."""
        horizon = self.horizon[-1]
        whole = " (the whole sequence)" if horizon == self.seq_len - 1 else ""
        recent = min(self.recent, self.seq_len)
        parts = [
            f"{_classify(self.gradient_ratio, self.epsilon)}: dL/dh at lag {self.lag_used} is "
            f"{_sci(self.gradient_ratio)} of lag 0",
            f"memory horizon {horizon} steps{whole} (epsilon {self.epsilon:g})",
            f"{_percent(self.update_share_recent)} of the W_hh update comes from the last {recent} "
            f"of {self.seq_len} steps",
            f"the last {recent} inputs carry {_percent(self.input_share_recent)} of the input contribution",
            self.chain.condition.statement(),
        ]
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "label": self.label, "cell": self.cell, "seq_len": self.seq_len, "loss": self.loss,
            "lag": self.lag_used, "epsilon": self.epsilon, "recent": self.recent,
            "gradient_ratio": self.gradient_ratio, "memory_horizon": self.horizon,
            "update_share_last": self.update_share_recent,
            "update_share_first": self.updates.share(self.recent, "first"),
            "input_share_last": self.input_share_recent, "sensitivity": self.sensitivity,
            "verdict": self.verdict(),
            "gradient_profile": self.profile.to_dict(), "input_contribution": self.contribution.tolist(),
            "update_terms": self.updates.to_dict(), "jacobian": self.chain.to_dict(), "layers": self.layers.to_dict(),
        }


def _token_encoder(model: nn.Module, task: Task) -> nn.Module | None:
    return getattr(model, "encoder", None) if task.input_kind == "tokens" else None


def diagnose(
    model: nn.Module,
    task: Task,
    *,
    batch: Batch | None = None,
    examples: int = DEFAULT_EXAMPLES,
    lag: int = DEFAULT_LAG,
    epsilon: float = DEFAULT_EPSILON,
    recent: int = DEFAULT_RECENT,
    dtype: torch.dtype | None = torch.float64,
    label: str | None = None,
) -> Diagnosis:
    """Measure every quantity on ``model`` (left untouched: a copy in ``dtype`` is measured).

    Args:
        model: a bptt ``SequenceModel`` (called as ``model(inputs, lengths)``).
        task: the task whose loss and fixed batch are used.
        batch: the batch to measure on (default: the first ``examples`` of the fixed test set).
        lag: the lag of the reported gradient ratio; epsilon: the memory-horizon threshold;
        recent: how many last steps the shares count.
        dtype: the precision to measure in (float64 keeps gradients of 1e-300 measurable).
    """
    measured = measuring_copy(model, dtype)
    recurrent = recurrent_of(measured)
    batch = fixed_batch(task, examples) if batch is None else batch
    if dtype is not None:
        batch = cast_batch(batch, dtype)
    objective = task_objective(measured, task, batch)
    with torch.no_grad():
        loss = float(objective())
    profile, layers = profile_and_layers(measured, objective)
    measured.zero_grad(set_to_none=True)
    updates = update_share(measured, objective)
    encoder = _token_encoder(measured, task)
    forward = lambda x: measured(x, batch.lengths)  # noqa: E731
    contribution = input_contribution(measured, batch.inputs, lambda p: task.loss(p, batch), at=encoder,
                                      forward=forward)
    top = recurrent.num_layers - 1
    inputs = layer_inputs(measured, lambda: forward(batch.inputs))
    chain = jacobian_chain(recurrent, inputs[top], layer=top)
    sensitivity = perturbation_sensitivity(measured, batch.inputs, at=encoder, forward=forward)
    horizon = [memory_horizon(profile.hidden[layer], epsilon) for layer in range(profile.num_layers)]
    config = getattr(model, "config", None)
    name = label or (config.label() if config is not None else type(model).__name__)
    return Diagnosis(name, recurrent.MODE.lower(), loss, profile, horizon, contribution, updates, chain, layers,
                     sensitivity, lag, epsilon, recent)


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
        ratio = first / last if last > 0 else math.nan
        return (f"the last {recent} of {self.seq_len} inputs carry {_percent(self.input_share_recent)} of the input "
                f"contribution (equal weighting: {_percent(recent / self.seq_len)}); ||dL/dx|| at the first step is "
                f"{_sci(ratio)} of the last; output sensitivity {self.sensitivity:.3g}")

    def to_dict(self) -> dict:
        return {"label": self.label, "seq_len": self.seq_len, "loss": self.loss, "recent": self.recent,
                "input_share_last": self.input_share_recent, "sensitivity": self.sensitivity,
                "input_contribution": self.contribution.tolist(), "verdict": self.verdict()}


def module_inputs(task: Task, batch: Batch) -> torch.Tensor:
    """The float (T, B, I) inputs a plain module receives: dense inputs as they are, token ids one-hot."""
    if task.input_kind == "tokens":
        return F.one_hot(batch.inputs, task.input_size).to(torch.get_default_dtype())
    return batch.inputs


def diagnose_module(
    module: nn.Module,
    task: Task,
    *,
    batch_first: bool = False,
    examples: int = DEFAULT_EXAMPLES,
    recent: int = DEFAULT_RECENT,
    dtype: torch.dtype | None = torch.float64,
    label: str | None = None,
) -> ModuleDiagnosis:
    """Input contribution and sensitivity of any module mapping (T, B, I) inputs to predictions.

    The module receives the task's fixed batch as one float tensor, (T, B, I)
    (or (B, T, I) with ``batch_first``); token tasks are fed one-hot vectors
    (I = the vocabulary size). Its output must be what ``task.loss`` takes:
    (B, outputs) for sequence-to-one tasks. A copy in ``dtype`` is measured.
    """
    measured = measuring_copy(module, dtype)
    batch = fixed_batch(task, examples)
    inputs = module_inputs(task, batch)
    if dtype is not None:
        inputs, batch = inputs.to(dtype), cast_batch(batch, dtype)
    if batch_first:
        inputs = inputs.transpose(0, 1).contiguous()

    def loss_fn(prediction: torch.Tensor) -> torch.Tensor:
        if not isinstance(prediction, torch.Tensor):
            raise TypeError(f"the module must return one tensor of predictions, got {type(prediction).__name__}")
        return task.loss(prediction, batch)

    contribution = input_contribution(measured, inputs, loss_fn, batch_first=batch_first)
    with torch.no_grad():
        loss = float(loss_fn(measured(inputs)))
    time_major = (lambda x: measured(x.transpose(0, 1))) if batch_first else None
    sensitivity = perturbation_sensitivity(
        measured, inputs.transpose(0, 1) if batch_first else inputs, forward=time_major
    )
    return ModuleDiagnosis(label or type(module).__name__, loss, contribution, sensitivity, recent)
