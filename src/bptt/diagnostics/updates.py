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
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from bptt.diagnostics.common import Objective, recurrent_of, reference_engine


@dataclass
class _Tap:
    """Calls of F.linear with one layer's W_ih or W_hh: the factor x (or h_{t-1}) and the output's gradient."""

    width: int  # G*H, the rows of the weight
    inputs: list[torch.Tensor] = field(default_factory=list)
    grads: list[torch.Tensor | None] = field(default_factory=list)


class _ProjectionTap(TorchFunctionMode):
    """Watches ``F.linear`` calls whose weight is one of the tracked weights.

    The reference loop computes the input projection of all steps in one call
    and the recurrent projection once per step, always as F.linear(factor, weight, bias).
    """

    def __init__(self, weights: dict[int, _Tap]) -> None:
        super().__init__()
        self.weights = weights

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        if func is F.linear:
            weight = args[1] if len(args) > 1 else kwargs.get("weight")
            tap = self.weights.get(id(weight))
            if tap is not None:
                index = len(tap.inputs)
                tap.inputs.append(args[0].detach())
                tap.grads.append(None)
                if output.requires_grad:
                    def keep(grad: torch.Tensor, tap: _Tap = tap, index: int = index) -> None:
                        tap.grads[index] = grad.detach()
                    output.register_hook(keep)
        return output


def _step_terms(tap: _Tap) -> torch.Tensor:
    """(T, G*H, I) G_t = grad_t^T factor_t in float64, over all steps of the calls in order."""
    terms = []
    for factor, grad in zip(tap.inputs, tap.grads):
        if factor.dim() == 2:  # one step: (B, .)
            factor, grad = factor.unsqueeze(0), None if grad is None else grad.unsqueeze(0)
        if grad is None:  # the loss does not depend on these steps
            terms.append(torch.zeros(factor.shape[0], tap.width, factor.shape[2], dtype=torch.float64))
            continue
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
    """Run ``objective`` and its backward on the reference loop, keeping each step's weight-update term.

    The recurrent layer runs on the "reference" engine inside the call (its
    own engine is restored after), since the per-step projections are only
    visible there. Parameter gradients accumulate in ``model`` as in any
    backward; the per-step terms of each layer sum to that layer's gradient.
    """
    recurrent = recurrent_of(model)
    taps: dict[int, _Tap] = {}
    hh, ih = [], []
    width = recurrent.GATES * recurrent.hidden_size
    for layer in range(recurrent.num_layers):
        hh.append(_Tap(width))
        ih.append(_Tap(width))
        taps[id(getattr(recurrent, f"weight_hh_l{layer}"))] = hh[-1]
        taps[id(getattr(recurrent, f"weight_ih_l{layer}"))] = ih[-1]
    with reference_engine(recurrent):
        with _ProjectionTap(taps):
            loss = objective()
        loss.backward()
    return UpdateTerms([_step_terms(tap) for tap in hh], [_step_terms(tap) for tap in ih])


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
        if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        row = getattr(self, weight)[layer]
        total = float(row.sum())
        part = row[:steps] if end == "first" else row[-steps:]
        return float(part.sum()) / total if total > 0 else float("nan")

    def to_dict(self) -> dict:
        return {"weight_hh": self.weight_hh.tolist(), "weight_ih": self.weight_ih.tolist()}


def update_share(model: nn.Module, objective: Objective) -> UpdateShare:
    """The Frobenius norm of every step's term of dL/dW_hh and dL/dW_ih (see ``update_terms``)."""
    terms = update_terms(model, objective)
    norms = lambda table: torch.stack([torch.linalg.matrix_norm(t) for t in table])  # noqa: E731
    return UpdateShare(weight_hh=norms(terms.weight_hh), weight_ih=norms(terms.weight_ih))
