r"""IndRNN: the independently recurrent network of Li, Li, Cook, Zhu & Gao (CVPR 2018)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from bptt.engine.indrnn import INDRNN_ACTIVATIONS, indrnn_cell, indrnn_layer, reference_layer
from bptt.engine.recording import LayerRecorders
from bptt.modules.base import RecurrentBase

#: The standard deviation of the input weights at init (the reference code's): the state starts
#: near zero, so a unit with u near 1 does not start as a large running sum of its inputs.
INPUT_STD = 1e-3
#: The paper's gradient magnitude M: over t_max steps a unit may grow its gradient at most M-fold.
DEFAULT_MAGNITUDE = 2.0


def recurrent_bound(t_max: int, magnitude: float = DEFAULT_MAGNITUDE) -> float:
    """M^(1/t_max): the largest |u_i| whose gradient over t_max steps stays within M of its start
    (with ReLU, act' is 1 on an active unit, so the factor over k steps is |u_i|^k)."""
    return magnitude ** (1.0 / t_max)


class IndRNN(RecurrentBase):
    r"""IndRNN (Li et al. 2018): each unit has one recurrent weight u_i,

    .. math:: h_t = \mathrm{act}(x_t W_{ih}^T + b + u \odot h_{t-1}),

    so dh_t/dh_{t-1} = diag(act'(a_t) u): a unit's gradient over k steps is the product of its
    own k factors, and |u_i| alone decides whether it vanishes or explodes on an active unit.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: as torch.nn.RNN
            (one bias per layer: ``bias_ih_l{k}``).
        activation: "relu" (the paper's, the default), "tanh" or "sigmoid".
        t_max: the longest dependency expected. |u_i| is kept at most M^(1/t_max) (M =
            ``magnitude``, the paper's 2): a gradient carried t_max steps by an active ReLU unit
            then grows at most M-fold. None: no bound.
        magnitude: M.
        residual, engine ("auto" = "fast", the hand-written BPTT; or "reference"), truncate,
        generator, device, dtype: as every bptt layer.

    The bound is a clamp after each optimiser step (``constrain_``, which the Trainer calls; in
    your own loop, ``bptt.modules.constrain(model)`` after ``optimizer.step()``), as the paper
    does, not a reparametrisation: a map such as u = bound * tanh(v) would slow the gradient of
    exactly the units near the bound, the long-memory ones, and change the optimiser's geometry
    from the one the paper's results were obtained with.

    Init (the reference code's): u ~ U(0, min(1, bound)) in every layer but the last, whose units
    start with long memory, u ~ U((1/M)^(1/t_max), bound) (U(0, 1) everywhere without t_max);
    W_ih ~ N(0, 0.001^2), b = 0.

    Parameters: ``weight_ih_l{k}`` (H, I), ``weight_hh_l{k}`` (H,) the recurrent weights u,
    ``bias_ih_l{k}`` (H,); ``*_reverse`` for the reverse direction. State: h (D * num_layers, B, H).
    Source: Li et al., "Independently Recurrent Neural Network (IndRNN): Building A Longer and
    Deeper RNN", CVPR 2018 (adding solved beyond 5000 steps).
    """

    MODE = "INDRNN"
    DIAGONAL = True
    FIXED_DIAGONAL = True  # the diagonal's scale is the weight vector u itself

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        activation: str = "relu",
        t_max: int | None = None,
        magnitude: float = DEFAULT_MAGNITUDE,
        **common: Any,
    ) -> None:
        if activation not in INDRNN_ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; allowed: {', '.join(INDRNN_ACTIVATIONS)}")
        if t_max is not None and (not isinstance(t_max, int) or isinstance(t_max, bool) or t_max < 1):
            raise ValueError(f"t_max must be a positive integer, got {t_max!r}")
        if not magnitude > 1 or not math.isfinite(magnitude):
            raise ValueError(f"magnitude must be a finite number above 1, got {magnitude!r}")
        self.activation = activation
        self.t_max = t_max
        self.magnitude = float(magnitude)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, **common)

    @property
    def bound(self) -> float | None:
        """The largest |u_i| allowed, M^(1/t_max), or None without ``t_max``."""
        return None if self.t_max is None else recurrent_bound(self.t_max, self.magnitude)

    def _parameter_shapes(self, layer: int, layer_input: int) -> list[tuple[str, tuple[int, ...]]]:
        H = self.hidden_size
        shapes = [("weight_ih", (H, layer_input)), ("weight_hh", (H,))]
        return shapes + ([("bias_ih", (H,))] if self.bias else [])

    def layer_parameters(
        self, layer: int, direction: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(weight_ih, weight_hh = u, bias_ih or None) of one layer and direction."""
        weight_ih, weight_hh = self._param("weight_ih", layer, direction), self._param("weight_hh", layer, direction)
        return weight_ih, weight_hh, self._optional("bias_ih", layer, direction)

    @torch.no_grad()
    def _initialise(self, generator: torch.Generator | None) -> None:
        t_max, bound = self.t_max, self.bound
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                weight_ih, u, bias = self.layer_parameters(layer, direction)
                weight_ih.normal_(0, INPUT_STD, generator=generator)
                if bias is not None:
                    bias.zero_()
                if t_max is None or bound is None:
                    u.uniform_(0, 1, generator=generator)
                elif layer == self.num_layers - 1:
                    u.uniform_(
                        recurrent_bound(t_max, 1 / self.magnitude), bound, generator=generator
                    )  # (1/M)^(1/t_max)
                else:
                    u.uniform_(0, min(1.0, bound), generator=generator)

    @torch.no_grad()
    def constrain_(self) -> None:
        """Clamp every u_i to [-bound, bound] (the paper's constraint; nothing without ``t_max``)."""
        bound = self.bound
        if bound is None:
            return
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                self.recurrent_weight(layer, direction).clamp_(-bound, bound)

    def step(self, layer: int, x: torch.Tensor, state: torch.Tensor, direction: int = 0) -> torch.Tensor:
        """One step of one layer from x_t (B, I) and h_{t-1} (B, H), in plain autograd."""
        weight_ih, u, bias = self.layer_parameters(layer, direction)
        return indrnn_cell(F.linear(x, weight_ih, bias), state, u, self.activation)

    def _engine_call(
        self,
        engine: str,
        layer: int,
        direction: int,
        x: torch.Tensor,
        state: torch.Tensor,
        record: LayerRecorders | None,
        watch: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        params = self.layer_parameters(layer, direction)
        if engine == "reference":
            return reference_layer(x, state, *params, self.activation, record, watch=watch)
        return indrnn_layer(x, state, *params, self.activation, record)

    def _repr_cell(self) -> str:
        s = "" if self.activation == "relu" else f", activation={self.activation!r}"
        if self.t_max is not None:
            s += f", t_max={self.t_max}"
        return s + (f", magnitude={self.magnitude:g}" if self.magnitude != DEFAULT_MAGNITUDE else "")
