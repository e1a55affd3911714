"""Activations for the simple RNN cell, h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).

Each entry knows its value and the bound gamma on |act'| that enters the
vanishing-gradient argument (Pascanu et al. 2013): if the largest singular
value of W_hh is below 1/gamma, the gradient must vanish with lag.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from bptt.registry import Registry


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity of the RNN cell.

    ``apply(a, slope)`` maps pre-activations ``a`` to ``h``; ``slope`` is the
    negative-side slope for leaky_relu (a float) and prelu (a per-unit tensor),
    ignored by the others. ``gamma`` bounds |act'(a)| over all a (for leaky
    ReLU and PReLU it is max(1, |slope|), evaluated by ``derivative_bound``).
    """

    name: str
    apply: Callable[[torch.Tensor, torch.Tensor | float | None], torch.Tensor]
    gamma: float
    has_slope: bool = False

    def derivative_bound(self, slope: torch.Tensor | float | None = None) -> float:
        if not self.has_slope or slope is None:
            return self.gamma
        largest = float(torch.as_tensor(slope).abs().max())
        return max(1.0, largest)


ACTIVATIONS: Registry[Activation] = Registry("activation")


def _leaky(a: torch.Tensor, slope: torch.Tensor | float | None) -> torch.Tensor:
    return F.leaky_relu(a, float(slope if slope is not None else 0.01))


def _prelu(a: torch.Tensor, slope: torch.Tensor | float | None) -> torch.Tensor:
    assert isinstance(slope, torch.Tensor), "prelu needs its per-unit slope tensor"
    return torch.where(a >= 0, a, a * slope)


# gamma = max |act'|: sigma'(0) = sigma(0)(1 - sigma(0)) = 1/4 for sigmoid, 1 for the others.
ACTIVATIONS.add("sigmoid", Activation("sigmoid", lambda a, s: torch.sigmoid(a), 0.25))
ACTIVATIONS.add("tanh", Activation("tanh", lambda a, s: torch.tanh(a), 1.0))
ACTIVATIONS.add("relu", Activation("relu", lambda a, s: torch.relu(a), 1.0))
ACTIVATIONS.add("leaky_relu", Activation("leaky_relu", _leaky, 1.0, has_slope=True))
ACTIVATIONS.add("prelu", Activation("prelu", _prelu, 1.0, has_slope=True))
