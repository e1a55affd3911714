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

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from bptt.diagnostics import figures
from bptt.diagnostics.common import DEFAULT_EXAMPLES, cast_batch, fixed_batch, measuring_copy, recurrent_of
from bptt.diagnostics.gates import GateKeep, gate_keep
from bptt.diagnostics.inputs import input_contribution, recent_share
from bptt.diagnostics.jacobian import JacobianChain, jacobian_chain, layer_inputs
from bptt.diagnostics.perturbation import perturbation_sensitivity
from bptt.diagnostics.profile import (
    DEFAULT_EPSILON,
    GradientProfile,
    LayerGradients,
    memory_horizon,
    memory_reach,
    profile_and_layers,
)
from bptt.diagnostics.spectrum import ActivationDecay, DiagonalSpectrum, activation_decay, diagonal_spectrum
from bptt.diagnostics.updates import UpdateShare, update_share
from bptt.diagnostics.wording import classify, format_share, notebook_html, sci, state_words
from bptt.tasks import Batch, Task

DEFAULT_LAG = 50
DEFAULT_RECENT = 10
#: What the verdict adds for a task that scores every step (copy): each step's own loss puts gradient on
#: its own step, so the total loss's profile would show no decay whatever the cell carries.
LAST_STEP_WORDS = (
    "of the loss at the last step alone: the task scores every step, and each step's own loss would put "
    "gradient at every lag"
)


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """Every quantity measured on one model (see each type for its equation).

    contribution: (T,) input contribution by position t. horizon: memory horizon per layer.
    chain: the Jacobian chain of the top layer along example 0. sensitivity: see
    ``perturbation_sensitivity``. lag, epsilon, recent: the settings the verdict reads.
    trained_steps: how many training steps the model had when measured (0: at
    initialisation; None: not known, e.g. a user's own module). keep: the product of
    a gated cell's trained keep gate over the last k steps (``gates.gate_keep``), else None.
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
    keep: GateKeep | None = None
    #: A diagonal cell's exact step-Jacobian spectrum and the horizon it implies, else None.
    spectrum: DiagonalSpectrum | None = None
    #: For an orthogonal W_hh, the decay the activation alone causes, else None.
    activation: ActivationDecay | None = None
    #: True when the task scores every step (copy) and the loss measured is its last step's alone.
    last_step: bool = False

    @property
    def seq_len(self) -> int:
        return self.profile.seq_len

    @property
    def state(self) -> str:
        """When it was measured: "at initialisation", "after N training steps", or "" when not known."""
        return state_words(self.trained_steps)

    @property
    def lag_used(self) -> int:
        """The lag the verdict reports: ``lag``, or T - 1 for shorter sequences."""
        return min(self.lag, self.seq_len - 1)

    @property
    def gradient_ratio(self) -> float:
        """g[top, lag] / g[top, 0]."""
        return self.profile.ratio(self.lag)

    @property
    def reach(self) -> list[int]:
        """Per layer, the last lag with g[k] >= epsilon g[0] (``memory_reach``): beside the horizon, the
        first lag below it, it tells a profile that dips and rises again from one that falls for good."""
        return [memory_reach(self.profile.hidden[layer], self.epsilon) for layer in range(self.profile.num_layers)]

    @property
    def cell_ratio(self) -> float:
        """||dL/dc|| at ``lag`` / at lag 0 for an LSTM's top layer (the gradient along the cell state); NaN otherwise."""
        if self.profile.cell is None:
            return math.nan
        row = self.profile.cell[-1]
        first = float(row[0])
        return float(row[min(self.lag, len(row) - 1)]) / first if first > 0 else math.nan

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
        horizon, reach = self.horizon[-1], self.reach[-1]
        whole = " (the whole sequence)" if horizon == self.seq_len - 1 else ""
        recent = min(self.recent, self.seq_len)
        classification = classify(self.gradient_ratio, self.epsilon)
        notes = [self.state] if self.state else []
        if self.last_step:
            notes.append(LAST_STEP_WORDS)
        when = f" ({'; '.join(notes)})" if notes else ""
        span = f"memory horizon {horizon} step{'' if horizon == 1 else 's'}{whole} (epsilon {self.epsilon:g})"
        if reach > horizon:
            span += (
                f", yet a reach of {reach} steps{' (the whole sequence)' if reach == self.seq_len - 1 else ''}: "
                f"the profile dips below epsilon at lag {horizon + 1} and rises above it again"
            )
        parts = [
            f"{classification}: dL/dh at lag {self.lag_used} is {sci(self.gradient_ratio)} of lag 0{when}",
            span,
            *self._gated_parts(),
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

    def _gated_parts(self) -> list[str]:
        """A gated cell's own path: the gradient along the cell state and the measured keep gate."""
        parts = []
        if not math.isnan(self.cell_ratio):
            parts.append(f"along the cell state dL/dc at lag {self.lag_used} is {sci(self.cell_ratio)} of lag 0")
        if self.keep is not None:
            mean, best = self.keep.at(self.lag_used)
            parts.append(
                f"the trained {self.keep.gate} gates keep {sci(mean)} of the state over the last {self.lag_used} "
                f"steps (mean over units; the best-kept unit {sci(best)})"
            )
        return parts

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
            f"{sci(float(chain.product_norm[k - 1]))}: saturated units (act' near 0) pass almost nothing back, "
            "so a direction one step grows, later steps shrink, and the gradient vanishes all the same"
        )

    def figures(self) -> dict:
        """Every figure of this diagnosis, by name (``bptt.diagnostics.figures.diagnosis_figures``)."""
        return figures.diagnosis_figures({self.label: self})

    def _repr_html_(self) -> str:
        title = f"{self.label}: {self.state}" if self.state else self.label
        return notebook_html(title, self.figures(), self.verdict())

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "cell": self.cell,
            "seq_len": self.seq_len,
            "loss": self.loss,
            "last_step": self.last_step,
            "trained_steps": self.trained_steps,
            "lag": self.lag_used,
            "epsilon": self.epsilon,
            "recent": self.recent,
            "gradient_ratio": self.gradient_ratio,
            "memory_horizon": self.horizon,
            "memory_reach": self.reach,
            "cell_ratio": None if math.isnan(self.cell_ratio) else self.cell_ratio,
            "gate_keep": None if self.keep is None else self.keep.to_dict(),
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

    A task that scores every step (copy) is measured on the loss of its last step alone: with the
    loss of every step, each step's own term puts gradient at every lag, and the profile would show
    no decay whatever the cell carries (``Diagnosis.last_step``).
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
    last_step = task.kind == "per_step" and batch.lengths is None
    score = lambda p: task.loss(p, batch)  # noqa: E731
    if last_step:
        end = Batch(batch.inputs, batch.targets[-1:])
        score = lambda p: task.loss(p[-1:], end)  # noqa: E731
    return _measure(
        measured,
        batch.inputs,
        lambda x: measured(x, batch.lengths),
        score,
        _token_encoder(measured, task),
        name,
        lag,
        epsilon,
        recent,
        lengths=batch.lengths,
        trained_steps=trained_steps,
        last_step=last_step,
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
    last_step: bool = False,
) -> Diagnosis:
    """Every quantity of a model holding a bptt layer, run as ``forward(inputs)`` and scored by ``loss_fn``
    (``last_step``: a per-step task's loss at its last step alone)."""
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
    # The layer sees a packed batch longest first (``layer_inputs``): its lengths in that order.
    keep = gate_keep(recurrent, layer_input, top, None if lengths is None else lengths.sort(descending=True).values)
    sensitivity = perturbation_sensitivity(
        measured, _time_major(inputs, batch_first), at=encoder, forward=_time_major_forward(forward, batch_first)
    )
    horizon = [memory_horizon(profile.hidden[layer], epsilon) for layer in range(profile.num_layers)]
    spectrum = None
    if chain.diagonal is not None:
        weights = recurrent.recurrent_matrix(top) if getattr(recurrent, "FIXED_DIAGONAL", False) else None
        spectrum = diagonal_spectrum(
            chain,
            None if weights is None else weights.detach().double().cpu(),
            epsilon,
            *getattr(recurrent, "DIAGONAL_WORDS", ("u", "an always-active unit")),
        )
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
        keep,
        spectrum,
        activation,
        last_step,
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
