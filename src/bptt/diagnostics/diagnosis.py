"""One call, every quantity, and a verdict in plain words.

``diagnose(model, task)`` measures a bptt ``SequenceModel`` (or any module with
a bptt recurrent layer that takes ``(inputs, lengths)``) on the task's fixed
batch: the gradient profile by lag, the memory horizon, the input contribution
by position, each step's share of the W_hh update, the Jacobian chain against
Pascanu's bound, the per-layer gradient norms and the sensitivity to a small
input perturbation. ``Diagnosis.verdict()`` says what was measured, then what
Pascanu's condition says, e.g.

    vanishing: dL/dh at lag 50 is 3e-12 of lag 0 (after 800 training steps);
    memory horizon 9 steps; 99.7 % of the W_hh update comes from the last 10 steps; ...

In a notebook a ``Diagnosis`` shows itself: its figures and its verdict.

``bptt.diagnostics.own`` measures the user's own module on the user's data.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from bptt.diagnostics import figures
from bptt.diagnostics.common import DEFAULT_EXAMPLES, cast_batch, fixed_batch, measuring_copy, recurrent_of
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
from bptt.diagnostics.spectrum import ActivationDecay, DiagonalSpectrum, activation_decay, diagonal_spectrum
from bptt.diagnostics.updates import UpdateShare, update_share
from bptt.plotting.html import figure_svg
from bptt.tasks import Batch, Task

DEFAULT_LAG = 50
DEFAULT_RECENT = 10


def format_share(share: float) -> str:
    """A share as a percentage, with enough decimals to tell 99.9999 % from 100 %."""
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


def _state(trained_steps: int | None) -> str:
    if trained_steps is None:
        return ""
    return "at initialisation" if trained_steps == 0 else f"after {trained_steps} training steps"


def _notebook(title: str, pictures: dict, verdict: str) -> str:
    """A notebook's view: the title, the verdict and every figure inline as SVG."""
    svgs = "".join(f"<figure>{figure_svg(fig)}</figure>" for fig in pictures.values())
    return f"<div><h3>{html.escape(title)}</h3><p>{html.escape(verdict)}</p>{svgs}</div>"


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """Every quantity measured on one model (see each type for its equation).

    contribution: (T,) input contribution by position t. horizon: memory horizon per layer.
    chain: the Jacobian chain of the top layer along example 0. sensitivity: see
    ``perturbation_sensitivity``. lag, epsilon, recent: the settings the verdict reads.
    trained_steps: how many training steps the model had when measured (0: at
    initialisation; None: not known, e.g. a user's own module).
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
    trained_steps: int | None = None
    #: A diagonal cell's exact step-Jacobian spectrum and the horizon it implies, else None.
    spectrum: DiagonalSpectrum | None = None
    #: For an orthogonal W_hh, the decay the activation alone causes, else None.
    activation: ActivationDecay | None = None

    @property
    def seq_len(self) -> int:
        return self.profile.seq_len

    @property
    def state(self) -> str:
        """When it was measured: "at initialisation", "after N training steps", or "" when not known."""
        return _state(self.trained_steps)

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
        """The findings as one paragraph of plain language: what was measured, then what
        Pascanu's condition says, then (for a simple RNN the condition does not decide)
        what the measured step Jacobians say."""
        horizon = self.horizon[-1]
        whole = " (the whole sequence)" if horizon == self.seq_len - 1 else ""
        recent = min(self.recent, self.seq_len)
        classification = _classify(self.gradient_ratio, self.epsilon)
        when = f" ({self.state})" if self.state else ""
        parts = [
            f"{classification}: dL/dh at lag {self.lag_used} is {_sci(self.gradient_ratio)} of lag 0{when}",
            f"memory horizon {horizon} step{'' if horizon == 1 else 's'}{whole} (epsilon {self.epsilon:g})",
            (
                f"{format_share(self.update_share_recent)} of the W_hh update comes from the last {recent} "
                f"of {self.seq_len} steps"
            )
            if not math.isnan(self.update_share_recent)
            else "no W_hh update measured (its gradient is zero)",
            f"the last {recent} inputs carry {format_share(self.input_share_recent)} of the input contribution"
            if not math.isnan(self.input_share_recent)
            else "no input contribution measured (it is zero)",
            self.chain.condition.statement(),
        ]
        condition = self.chain.condition
        if condition.applies and not condition.vanishing_guaranteed:
            parts.append(self._measured_steps(classification))
        if self.spectrum is not None:
            parts.append(self.spectrum.statement(horizon))
        if self.activation is not None:
            parts.append(self.activation.statement())
        return "; ".join(parts)

    def _measured_steps(self, classification: str) -> str:
        """What the measured step Jacobians say where Pascanu's condition decides nothing."""
        chain = self.chain
        share, median = chain.shrinking_share(), float(chain.step_gains.median())
        steps = f"sigma_max(dh_t/dh_{{t-1}}) < 1 at {format_share(share)} of steps (median {median:.2g})"
        if classification != "vanishing":
            return f"measured along one sequence: {steps}"
        if share >= 0.5:
            return (
                f"measured along one sequence: {steps}, so act'(a_t) sits far below gamma and the gradient "
                "vanishes all the same"
            )
        k = min(self.lag_used, len(chain.product_norm))
        return (
            f"measured along one sequence: {steps}, yet the product of the last {k} is "
            f"{_sci(float(chain.product_norm[k - 1]))}: saturated units (act' near 0) pass almost nothing back, "
            "so a direction one step grows, later steps shrink, and the gradient vanishes all the same"
        )

    def figures(self) -> dict:
        """Every figure of this diagnosis, by name (``bptt.diagnostics.figures.diagnosis_figures``)."""
        return figures.diagnosis_figures({self.label: self})

    def _repr_html_(self) -> str:
        title = f"{self.label}: {self.state}" if self.state else self.label
        return _notebook(title, self.figures(), self.verdict())

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "cell": self.cell,
            "seq_len": self.seq_len,
            "loss": self.loss,
            "trained_steps": self.trained_steps,
            "lag": self.lag_used,
            "epsilon": self.epsilon,
            "recent": self.recent,
            "gradient_ratio": self.gradient_ratio,
            "memory_horizon": self.horizon,
            "update_share_last": self.update_share_recent,
            "update_share_first": self.updates.share(self.recent, "first"),
            "input_share_last": self.input_share_recent,
            "sensitivity": self.sensitivity,
            "verdict": self.verdict(),
            "gradient_profile": self.profile.to_dict(),
            "input_contribution": self.contribution.tolist(),
            "update_terms": self.updates.to_dict(),
            "jacobian": self.chain.to_dict(),
            "layers": self.layers.to_dict(),
            "spectrum": None if self.spectrum is None else self.spectrum.to_dict(),
            "activation_decay": None if self.activation is None else self.activation.to_dict(),
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
    trained_steps: int | None = None,
) -> Diagnosis:
    """Measure every quantity on ``model`` (left untouched: a copy in ``dtype`` is measured).

    Args:
        model: a bptt ``SequenceModel`` (called as ``model(inputs, lengths)``).
        task: the task whose loss and fixed batch are used.
        batch: the batch to measure on (default: the first ``examples`` of the fixed test set).
        lag: the lag of the reported gradient ratio; epsilon: the memory-horizon threshold;
        recent: how many last steps the shares count.
        dtype: the precision to measure in (float64 keeps gradients of 1e-300 measurable).
        trained_steps: the training steps the model has had (default: the model's own
            ``trained_steps``, which the ``Trainer`` keeps; 0 for a model just built).
    """
    if trained_steps is None:
        trained_steps = getattr(model, "trained_steps", None)
    measured = measuring_copy(model, dtype)
    batch = fixed_batch(task, examples) if batch is None else batch
    if dtype is not None:
        batch = cast_batch(batch, dtype)
    batch = batch.to(_device(measured))
    config = getattr(model, "config", None)
    name = label or (config.label() if config is not None else type(model).__name__)
    return _measure(
        measured,
        batch.inputs,
        lambda x: measured(x, batch.lengths),
        lambda p: task.loss(p, batch),
        _token_encoder(measured, task),
        name,
        lag,
        epsilon,
        recent,
        lengths=batch.lengths,
        trained_steps=trained_steps,
    )


def _measure(
    measured: nn.Module,
    inputs: torch.Tensor,
    forward: Callable[[torch.Tensor], torch.Tensor],
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    encoder: nn.Module | None,
    name: str,
    lag: int,
    epsilon: float,
    recent: int,
    batch_first: bool = False,
    lengths: torch.Tensor | None = None,
    trained_steps: int | None = None,
) -> Diagnosis:
    """Every quantity of a model holding a bptt layer, run as ``forward(inputs)`` and scored by ``loss_fn``."""
    recurrent = recurrent_of(measured)
    objective = lambda: loss_fn(forward(inputs))  # noqa: E731
    with torch.no_grad():
        loss = float(objective())
    profile, layers = profile_and_layers(measured, objective)
    measured.zero_grad(set_to_none=True)
    updates = update_share(measured, objective)
    contribution = input_contribution(
        measured, inputs, loss_fn, at=encoder, forward=forward, batch_first=batch_first, lengths=lengths
    )
    top = recurrent.num_layers - 1
    layer_input = layer_inputs(measured, lambda: forward(inputs))[top]
    chain = jacobian_chain(recurrent, layer_input, layer=top)
    sensitivity = perturbation_sensitivity(
        measured, _time_major(inputs, batch_first), at=encoder, forward=_time_major_forward(forward, batch_first)
    )
    horizon = [memory_horizon(profile.hidden[layer], epsilon) for layer in range(profile.num_layers)]
    spectrum = None
    if chain.diagonal is not None:
        weights = recurrent.recurrent_matrix(top) if getattr(recurrent, "FIXED_DIAGONAL", False) else None
        spectrum = diagonal_spectrum(chain, None if weights is None else weights.detach().double().cpu(), epsilon)
    activation = (
        None if chain.activation_derivative is None else activation_decay(chain.activation_derivative, chain, lag)
    )
    return Diagnosis(
        name,
        recurrent.MODE.lower(),
        loss,
        profile,
        horizon,
        contribution,
        updates,
        chain,
        layers,
        sensitivity,
        lag,
        epsilon,
        recent,
        trained_steps,
        spectrum,
        activation,
    )


def _device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (the CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _time_major(x: torch.Tensor, batch_first: bool) -> torch.Tensor:
    return x.transpose(0, 1) if batch_first else x


def _time_major_forward(
    forward: Callable[[torch.Tensor], torch.Tensor], batch_first: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``forward`` taking and giving time-major tensors (per-step outputs turned too)."""
    if not batch_first:
        return forward

    def time_major(x: torch.Tensor) -> torch.Tensor:
        out = forward(x.transpose(0, 1))
        return out.transpose(0, 1) if out.dim() == 3 else out

    return time_major
