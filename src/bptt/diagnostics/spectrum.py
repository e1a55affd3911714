r"""What a cell's own structure says about its memory, beside what the profile measures.

**Diagonal recurrences** (IndRNN, LRU, minGRU, minLSTM: ``DIAGONAL`` layers): the step Jacobian
J_t = ds_t/ds_{t-1} = diag(d_t) is diagonal, so its spectrum is exact and unit by unit:
the eigenvalues of J_t are the d_{t,i} themselves (for IndRNN d_{t,i} = act'(a_{t,i}) u_i), and a
product of them over the last k steps is again diagonal,

    ||P_k||_2 = max_i prod_{s = T-k}^{T-1} |d_{s,i}|,

the most any one unit carries back over k steps. The *implied horizon* is the largest lag k
at which that still reaches epsilon (the measured profile's horizon uses the same epsilon).
Where the cell has fixed recurrent weights (IndRNN's u; the LRU's lambda, which is its whole step
Jacobian), the weights alone bound it too: an always-active unit keeps |u_i|^k, so max_i |u_i| < 1
implies a horizon of
log(epsilon) / log(max_i |u_i|) steps, and max_i |u_i| >= 1 no horizon at all.

**Orthogonal recurrences** (exprnn): W_hh is orthogonal, every singular value 1, so
J_t = diag(act'(a_t)) W_hh has the singular values |act'(a_{t,i})|: every bit of contraction is
the activation's. ``activation_decay`` says how much: over the last k steps the activation alone
(W_hh = I) keeps max_i prod |act'(a_{s,i})|, the measured product of Jacobians ||P_k||_2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bptt.diagnostics.jacobian import JacobianChain


def _horizon(product: torch.Tensor, epsilon: float) -> int:
    """The largest lag k with product[k - 1] >= epsilon (product[k - 1] is over the last k steps); 0 if none."""
    below = (~(product >= epsilon)).nonzero()
    return int(below[0]) if len(below) else len(product)


@dataclass(frozen=True, eq=False)
class DiagonalSpectrum:
    """The exact spectrum of a diagonal step Jacobian along one sequence (see the module docstring).

    diagonal: (T, H) d_{t,i}, the eigenvalues of J_t by step t. product: (T,) max_i prod |d| over the
    last k = 1 .. T steps. weights: (H,) |u_i| where the cell has fixed recurrent weights, else None;
    symbol and carrier name them in the statement ("u", "an always-active unit"; the LRU's "lambda",
    "every state value").
    """

    diagonal: torch.Tensor
    product: torch.Tensor
    weights: torch.Tensor | None
    epsilon: float
    symbol: str = "u"
    carrier: str = "an always-active unit"

    @property
    def implied_horizon(self) -> int:
        """The largest lag at which some unit still carries at least epsilon of its gradient back."""
        return _horizon(self.product, self.epsilon)

    @property
    def weight_horizon(self) -> float | None:
        """log(epsilon) / log(max |u_i|), inf when max |u_i| >= 1; None without fixed weights."""
        if self.weights is None:
            return None
        largest = float(self.weights.max())
        return math.inf if largest >= 1 else math.log(self.epsilon) / math.log(max(largest, 1e-300))

    def statement(self, measured: int) -> str:
        """What the spectrum says, beside the measured horizon ``measured``."""
        magnitudes = self.diagonal.abs()
        active = float((magnitudes > 0).double().mean())
        parts = [
            f"the step Jacobian is diagonal: its eigenvalues along one sequence lie in "
            f"[{float(magnitudes.min()):.3g}, {float(magnitudes.max()):.3g}] in magnitude "
            f"({100 * active:.0f} % non-zero), so some unit keeps epsilon of its gradient for "
            f"{self.implied_horizon} steps, beside the measured horizon of {measured}"
        ]
        weight = self.weight_horizon
        if weight is not None and self.weights is not None:  # a horizon exactly where there are weights
            largest = float(self.weights.max())
            limit = "no limit" if math.isinf(weight) else f"{weight:.0f} steps"
            parts.append(
                f"max |{self.symbol}| = {largest:.4g}: {self.carrier} keeps |{self.symbol}|^k, {limit} "
                f"(epsilon {self.epsilon:g})"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "implied_horizon": self.implied_horizon,
            "weight_horizon": self.weight_horizon,
            "weights": None if self.weights is None else self.weights.tolist(),
            "product": self.product.tolist(),
        }


def diagonal_spectrum(
    chain: JacobianChain,
    weights: torch.Tensor | None,
    epsilon: float,
    symbol: str = "u",
    carrier: str = "an always-active unit",
) -> DiagonalSpectrum:
    """The spectrum of a diagonal cell from its Jacobian chain (which holds each J_t's diagonal)."""
    assert chain.diagonal is not None, "the chain of a diagonal cell holds its diagonals"
    logs = chain.diagonal.abs().clamp(min=1e-300).log()  # (T, H)
    product = logs.flip(0).cumsum(0).max(dim=1).values.exp()  # over the last k steps, k = 1 .. T
    return DiagonalSpectrum(
        chain.diagonal, product, None if weights is None else weights.abs(), epsilon, symbol, carrier
    )


@dataclass(frozen=True, eq=False)
class ActivationDecay:
    """For an orthogonal W_hh: the decay the activation alone causes, against the measured product.

    activation: (T,) max_i prod |act'(a_{s,i})| over the last k steps (W_hh = I); chain: (T,) ||P_k||_2.
    """

    activation: torch.Tensor
    chain: torch.Tensor
    lag: int

    def statement(self) -> str:
        k = min(self.lag, len(self.chain))
        alone, measured = float(self.activation[k - 1]), float(self.chain[k - 1])
        head = (
            f"W_hh is orthogonal (every singular value 1), so the step Jacobian's singular values are |act'(a_t)|: "
            f"over the last {k} steps the activation alone keeps {alone:.2g} of a gradient, the product of "
            f"Jacobians {measured:.2g}"
        )
        if measured >= 0.5:
            return head + ": little decay along this sequence"
        return head + ": all of the decay is the activation's (units with act' < 1, modReLU's switched-off ones)"

    def to_dict(self) -> dict:
        return {"activation": self.activation.tolist(), "chain": self.chain.tolist()}


def activation_decay(derivatives: torch.Tensor, chain: JacobianChain, lag: int) -> ActivationDecay:
    """``derivatives``: (T, H) act'(a_t) along the chain's sequence."""
    logs = derivatives.abs().clamp(min=1e-300).log()
    product = logs.flip(0).cumsum(0).max(dim=1).values.exp()
    return ActivationDecay(product, chain.product_norm, lag)
