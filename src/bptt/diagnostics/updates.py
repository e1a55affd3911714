"""Each step's share of the weight update: the classic claim that "earlier inputs have minimal
contribution in updating weights", measured.

W_hh is shared across time, so its gradient is a sum over steps. With the
recurrent and input projections of step t

    u_t = h_{t-1} W_hh^T + b_hh,    p_t = x_t W_ih^T + b_ih     (each (B, G*H))

and their gradients delta_t = dL/du_t, epsilon_t = dL/dp_t, the gradients are

    dL/dW_hh = sum_t delta_t^T h_{t-1},      dL/dW_ih = sum_t epsilon_t^T x_t.

For the simple RNN and the LSTM, delta_t = epsilon_t = dL/da_t, the gradient
of the (stacked gate) pre-activation. For the GRU they differ in the candidate
block, where the recurrent part is multiplied by the reset gate r_t.

The per-step terms' Frobenius norms ||delta_t^T h_{t-1}||_F and
||epsilon_t^T x_t||_F are what this module measures. The *share* of a set S
of steps is

    share(S) = sum_{t in S} ||G_t||_F / sum_t ||G_t||_F,

the fraction of the summed per-step norms that S accounts for: it lies in
[0, 1], the shares of disjoint sets add, and no cancellation between steps can
hide a step's part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from bptt.checks import positive_int
from bptt.diagnostics.common import Objective, recurrent_of
from bptt.modules import watch_steps


@dataclass
class _Factors:
    """One layer's per-step factors and the gradients of what they multiply: x_t with epsilon_t
    (the input side) and h_{t-1} with delta_t (the recurrent side), in step order."""

    width: int  # G*H, the rows of the weights
    inputs: list[torch.Tensor] = field(default_factory=list)
    input_grads: list[torch.Tensor | None] = field(default_factory=list)
    states: list[torch.Tensor] = field(default_factory=list)
    state_grads: list[torch.Tensor | None] = field(default_factory=list)


def _keep_grad(tensor: torch.Tensor, grads: list[torch.Tensor | None]) -> None:
    """Append a slot to ``grads`` that the backward fills with ``tensor``'s gradient."""
    index = len(grads)
    grads.append(None)
    if tensor.requires_grad:

        def keep(grad: torch.Tensor) -> None:
            grads[index] = grad.detach()

        tensor.register_hook(keep)


class _FactorWatch:
    """The reference loop's view that ``update_terms`` needs: x and p = x W_ih^T + b_ih once per call,
    and h_{t-1} with u_t = h_{t-1} W_hh^T + b_hh at every step."""

    def __init__(self, factors: _Factors) -> None:
        self.factors = factors

    def input(self, x: torch.Tensor, projected: torch.Tensor) -> None:
        self.factors.inputs.append(x.detach())
        _keep_grad(projected, self.factors.input_grads)

    def step(
        self, t: int, h_prev: torch.Tensor, recurrent: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None
    ) -> None:
        self.factors.states.append(h_prev.detach().unsqueeze(0))
        _keep_grad(recurrent, self.factors.state_grads)


def _step_terms(
    factors: list[torch.Tensor], grads: list[torch.Tensor | None], width: int, diagonal: bool = False
) -> torch.Tensor:
    """(T, G*H, I) G_t = grad_t^T factor_t in float64, over all steps of the calls in order; for a
    diagonal recurrence (``diagonal``: a weight vector u multiplies h_{t-1} unit by unit) the term of
    dL/du, (T, H) sum_b grad_t[b] * factor_t[b]."""
    terms = []
    for factor, grad in zip(factors, grads):  # factor (K, B, I), grad (K, B, G*H) or (B, G*H) per step
        if grad is None:  # the loss does not depend on these steps
            shape = (factor.shape[0], width) if diagonal else (factor.shape[0], width, factor.shape[2])
            terms.append(torch.zeros(shape, dtype=torch.float64))
            continue
        grad = grad.view(factor.shape[0], factor.shape[1], width)
        if diagonal:
            terms.append((grad.double() * factor.double()).sum(1).cpu())  # (K, H)
        else:
            terms.append(torch.bmm(grad.double().transpose(1, 2), factor.double()).cpu())  # (K, G*H, I)
    return torch.cat(terms)


@dataclass(frozen=True, eq=False)
class UpdateTerms:
    """The per-step terms themselves, per layer: ``weight_hh[l]`` is (T, G*H, H) with
    ``weight_hh[l][t]`` = delta_t^T h_{t-1}; ``weight_ih[l]`` is (T, G*H, I_l) with epsilon_t^T x_t.
    Summed over t they give the layer's dL/dW_hh and dL/dW_ih."""

    weight_hh: list[torch.Tensor]
    weight_ih: list[torch.Tensor]


def update_terms(model: nn.Module, objective: Objective) -> UpdateTerms:
    """Run ``objective`` and its backward, keeping each step's weight-update term.

    The recurrent layer runs on the reference loop during the forward (a step
    watch, ``bptt.modules.watch_steps``), whose per-step projections it keeps
    with their gradients. Parameter gradients accumulate in ``model`` as in any
    backward; the per-step terms of each layer sum to that layer's gradient.
    """
    recurrent = recurrent_of(model)
    width = recurrent.GATES * recurrent.hidden_size
    layers = [_Factors(width) for _ in range(recurrent.num_layers)]
    # The forward direction's terms (a bidirectional layer's reverse direction is not watched).
    with watch_steps(recurrent, lambda layer, direction, offset: None if direction else _FactorWatch(layers[layer])):
        loss = objective()
    loss.backward()
    diagonal = getattr(recurrent, "DIAGONAL", False)
    return UpdateTerms(
        [_step_terms(f.states, f.state_grads, width, diagonal) for f in layers],
        [_step_terms(f.inputs, f.input_grads, width) for f in layers],
    )


@dataclass(frozen=True, eq=False)
class UpdateShare:
    """Per-step Frobenius norms of the terms of dL/dW_hh and dL/dW_ih, per layer, by step t.

    weight_hh: (num_layers, T) ||delta_t^T h_{t-1}||_F.
    weight_ih: (num_layers, T) ||epsilon_t^T x_t||_F.
    """

    weight_hh: torch.Tensor
    weight_ih: torch.Tensor

    @property
    def seq_len(self) -> int:
        return self.weight_hh.shape[1]

    def share(self, steps: int, end: str = "last", weight: str = "weight_hh", layer: int = -1) -> float:
        """share(S) = sum_{t in S} ||G_t||_F / sum_t ||G_t||_F for S the first or last ``steps`` steps.

        ``end`` is "first" or "last"; ``weight`` "weight_hh" or "weight_ih".
        NaN when every term is zero.
        """
        if end not in ("first", "last"):
            raise ValueError(f"end must be 'first' or 'last', got {end!r}")
        if weight not in ("weight_hh", "weight_ih"):
            raise ValueError(f"weight must be 'weight_hh' or 'weight_ih', got {weight!r}")
        steps = positive_int("steps", steps)
        row = getattr(self, weight)[layer]
        total = float(row.sum())
        part = row[:steps] if end == "first" else row[-steps:]
        return float(part.sum()) / total if total > 0 else float("nan")

    def to_dict(self) -> dict:
        return {"weight_hh": self.weight_hh.tolist(), "weight_ih": self.weight_ih.tolist()}


def update_share(model: nn.Module, objective: Objective) -> UpdateShare:
    """The Frobenius norm of every step's term of dL/dW_hh and dL/dW_ih (see ``update_terms``)."""
    terms = update_terms(model, objective)
    norms = lambda table: torch.stack([torch.linalg.vector_norm(t.flatten(1), dim=1) for t in table])  # noqa: E731
    return UpdateShare(weight_hh=norms(terms.weight_hh), weight_ih=norms(terms.weight_ih))
