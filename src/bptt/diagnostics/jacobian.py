"""The Jacobian chain: why the gradient vanishes, step by step.

Backpropagation multiplies the gradient by the transposed step Jacobian
J_t = ds_t/ds_{t-1} at every step, s_t the layer's state (h_t, or (h_t, c_t)
for an LSTM). Over the last k steps of a sequence of T,

    P_k = J_{T-1} J_{T-2} ... J_{T-k},     ds_{T-1}/ds_{T-1-k} = P_k.

For the simple RNN, J_t = diag(act'(a_t)) W_hh, so with |act'| <= gamma

    ||P_k||_2 <= prod ||J_t||_2 <= (gamma * sigma_max(W_hh))^k,

and Pascanu et al. (2013): if sigma_max(W_hh) < 1/gamma the gradient must
vanish exponentially with lag (gamma = 1/4 sigmoid, 1 tanh and ReLU). The
condition is sufficient, not necessary: above 1/gamma the bound grows with k
and says nothing, yet the measured product can still shrink, because each
act'(a_t) sits far below gamma when the units saturate. This
module measures the singular values of every J_t along a real trajectory and
||P_k||_2 against that bound. Everything is computed in float64.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bptt.diagnostics.common import recurrent_of
from bptt.engine import ACTIVATIONS
from bptt.modules import CELLS, watch_steps

#: The cells Pascanu's condition is stated for (expRNN's orthogonal W_hh has sigma_max = 1 by construction:
#: its verdict says what that means instead).
SIMPLE_RECURRENCES = ("RNN",)


@dataclass(frozen=True)
class PascanuCondition:
    """sigma_max(W_hh) against 1/gamma for one layer of a simple RNN.

    The condition is sufficient, not necessary: sigma_max < 1/gamma guarantees that
    the gradient vanishes (``vanishing_guaranteed``); above it nothing is guaranteed
    either way. The gradient can still vanish, e.g. through saturation (act'(a_t) far
    below its bound gamma), and explosion becomes possible (sigma_max > 1/gamma is
    necessary for it). For gated cells gamma is not defined and ``applies`` is False.
    """

    applies: bool
    sigma_max: float
    gamma: float | None
    activation: str | None
    #: How the cell keeps its gradient, in words, where the condition does not apply to it and it is
    #: not a gated cell (its registry entry's ``mechanism``).
    mechanism: str | None = None

    @property
    def vanishing_guaranteed(self) -> bool:
        return self.applies and self.gamma is not None and self.sigma_max * self.gamma < 1

    def statement(self) -> str:
        """What the condition says for this layer, e.g.
        ``sigma_max(W_hh) = 2.1 < 1/gamma = 4 (sigmoid): Pascanu's sufficient condition holds, so gradients must vanish``."""
        if not self.applies and self.mechanism is not None:
            return f"{self.mechanism}; the largest recurrent weight (sigma_max) is {self.sigma_max:.3g}"
        if not self.applies:
            return (
                f"sigma_max(W_hh) = {self.sigma_max:.3g}; gated cell: the bound gamma^k sigma_max^k "
                "does not apply (the forget/update gate sets the decay)"
            )
        limit = 1 / self.gamma
        if self.vanishing_guaranteed:
            return (
                f"sigma_max(W_hh) = {self.sigma_max:.3g} < 1/gamma = {limit:.3g} ({self.activation}): "
                "Pascanu's sufficient condition holds, so gradients must vanish"
            )
        return (
            f"sigma_max(W_hh) = {self.sigma_max:.3g} >= 1/gamma = {limit:.3g} ({self.activation}): "
            "Pascanu's sufficient condition for vanishing does not hold, so vanishing is not guaranteed "
            "but can still happen (e.g. through saturation, act' far below gamma); explosion is possible"
        )

    def to_dict(self) -> dict:
        return {
            "applies": self.applies,
            "sigma_max": self.sigma_max,
            "gamma": self.gamma,
            "activation": self.activation,
            "vanishing_guaranteed": self.vanishing_guaranteed,
            "statement": self.statement(),
        }


def pascanu_condition(recurrent: nn.Module, layer: int = 0) -> PascanuCondition:
    """Pascanu et al.'s sufficient condition for vanishing, for layer ``layer`` of ``recurrent``."""
    recurrent = recurrent_of(recurrent)
    weight_hh = recurrent.recurrent_matrix(layer).detach().double()
    # A diagonal recurrence keeps its weights as a vector: its largest singular value is max |u_i|.
    sigma_max = float(torch.linalg.matrix_norm(weight_hh, ord=2) if weight_hh.dim() == 2 else weight_hh.abs().max())
    if recurrent.MODE not in SIMPLE_RECURRENCES:
        mechanism = None if recurrent.MODE in ("LSTM", "GRU") else CELLS.get(recurrent.MODE.lower()).mechanism
        return PascanuCondition(False, sigma_max, None, None, mechanism)
    gamma = ACTIVATIONS.get(recurrent.activation).derivative_bound(recurrent.slope(layer))
    return PascanuCondition(True, sigma_max, float(gamma), recurrent.activation)


@dataclass(frozen=True, eq=False)
class JacobianChain:
    """Step Jacobians along one trajectory and the norms of their products.

    singular_values: (T, S) singular values of J_t = ds_t/ds_{t-1}, by step t, descending
        (S = H, or 2H for an LSTM's (h, c)).
    diagonal: (T, S) the diagonal of each J_t, for a cell whose step Jacobian is diagonal
        (``DIAGONAL``: its exact eigenvalues, unit by unit), else None.
    activation_derivative: (T, H) act'(a_t) = diag(J_t W_hh^T) for a cell whose W_hh is orthogonal
        (``ORTHOGONAL``), else None.
    product_norm: (T,) ||P_k||_2 for k = 1 .. T (entry k - 1), P_k the product of the last k Jacobians.
    bound: (T,) (gamma * sigma_max(W_hh))^k for a simple RNN, else None.
    condition: Pascanu's condition for this layer.
    """

    singular_values: torch.Tensor
    product_norm: torch.Tensor
    bound: torch.Tensor | None
    condition: PascanuCondition
    diagonal: torch.Tensor | None = None
    activation_derivative: torch.Tensor | None = None

    @property
    def step_gains(self) -> torch.Tensor:
        """(T,) sigma_max(J_t): the most any one step can grow a gradient (below 1: every direction shrinks)."""
        return self.singular_values[:, 0]

    def shrinking_share(self) -> float:
        """The fraction of steps whose Jacobian shrinks every direction: sigma_max(J_t) < 1."""
        return float((self.step_gains < 1).double().mean())

    def to_dict(self) -> dict:
        return {
            "singular_values": self.singular_values.tolist(),
            "product_norm": self.product_norm.tolist(),
            "bound": None if self.bound is None else self.bound.tolist(),
            "condition": self.condition.to_dict(),
            "diagonal": None if self.diagonal is None else self.diagonal.tolist(),
        }


class _InputWatch:
    """Keeps the input sequence of each call of one layer."""

    def __init__(self, inputs: list[torch.Tensor]) -> None:
        self.inputs = inputs

    def input(self, x: torch.Tensor, projected: torch.Tensor) -> None:
        self.inputs.append(x.detach())

    def step(
        self, t: int, h_prev: torch.Tensor, recurrent: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None
    ) -> None:
        pass


@torch.no_grad()
def layer_inputs(model: nn.Module, run: Callable[[], Any]) -> list[torch.Tensor]:
    """The (T, B, I_l) input sequence of each layer of the recurrent stack in ``model``, seen while ``run()`` runs."""
    recurrent = recurrent_of(model)
    inputs: list[list[torch.Tensor]] = [[] for _ in range(recurrent.num_layers)]
    # The forward direction's calls: their inputs are the layer's (the reverse direction reads them reversed).
    with watch_steps(recurrent, lambda layer, direction, offset: None if direction else _InputWatch(inputs[layer])):
        run()
    return [_joined(calls) for calls in inputs]


def _joined(calls: list[torch.Tensor]) -> torch.Tensor:
    """The pieces of one layer's input, in time order, as one (T, B, I) tensor. The pieces of a packed
    batch run fewer sequences as they end (the longest first): the rest is zero padding."""
    batch = calls[0].shape[1]
    return torch.cat([nn.functional.pad(x, (0, 0, 0, batch - x.shape[1])) for x in calls])


def _step_function(recurrent: nn.Module, layer: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """state (S,), x_t (I,) -> next state (S,) for one example, one step of the layer's cell (its ``step``),
    in float64; S is the sum of the state's parts (an LSTM's h and c, coRNN's y and z)."""
    measured = copy.deepcopy(recurrent).double()
    sizes = list(measured._state_sizes())

    def step(state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        parts = tuple(part.view(1, -1) for part in state.split(sizes))
        new = measured.step(layer, x.view(1, -1), parts[0] if len(parts) == 1 else parts)
        return torch.cat([part.reshape(-1) for part in ((new,) if isinstance(new, torch.Tensor) else new)])

    return step


def jacobian_chain(recurrent: nn.Module, inputs: torch.Tensor, layer: int = 0, example: int = 0) -> JacobianChain:
    """Singular values of ds_t/ds_{t-1} along the trajectory of one example, and ||P_k||_2 against the bound.

    Args:
        recurrent: a bptt RNN/LSTM/GRU (or a module holding one).
        inputs: (T, B, I) the input sequence of layer ``layer`` (see ``layer_inputs``).
        example: which sequence of the batch to follow; the state starts at zero.
    """
    recurrent = recurrent_of(recurrent)
    step = _step_function(recurrent, layer)
    x = inputs[:, example].detach().double()  # (T, I)
    size = sum(recurrent._state_sizes())
    state = torch.zeros(size, dtype=torch.float64, device=x.device)
    jacobians = []
    for x_t in x.unbind(0):
        jacobians.append(torch.autograd.functional.jacobian(lambda s, x_t=x_t: step(s, x_t), state, vectorize=True))
        with torch.no_grad():
            state = step(state, x_t)
    singular_values = torch.stack([torch.linalg.svdvals(j) for j in jacobians]).cpu()  # (T, S)
    product = torch.eye(size, dtype=torch.float64, device=x.device)
    norms = []
    for j in reversed(jacobians):  # P_k = P_{k-1} J_{T-k}
        product = product @ j
        norms.append(float(torch.linalg.matrix_norm(product, ord=2)))
    condition = pascanu_condition(recurrent, layer)
    bound = None
    if condition.applies:
        lags = torch.arange(1, len(jacobians) + 1, dtype=torch.float64)
        bound = torch.exp(lags * math.log(max(condition.gamma * condition.sigma_max, 1e-300)))
    diagonal = derivative = None
    if getattr(recurrent, "DIAGONAL", False):
        diagonal = torch.stack([j.diagonal() for j in jacobians]).cpu()
    if getattr(recurrent, "ORTHOGONAL", False):  # J_t = diag(act') W with W orthogonal: diag(act') = J_t W^T
        weight = recurrent.recurrent_matrix(layer).detach().double().to(x.device)
        derivative = torch.stack([(j @ weight.t()).diagonal() for j in jacobians]).cpu()
    norms_tensor = torch.tensor(norms, dtype=torch.float64)
    return JacobianChain(singular_values, norms_tensor, bound, condition, diagonal, derivative)
