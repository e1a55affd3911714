r"""coRNN: the coupled oscillatory RNN of Rusch & Mishra (ICLR 2021)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from bptt.engine.cornn import cornn_cell, cornn_layer, reference_layer
from bptt.engine.recording import LayerRecorders
from bptt.modules.base import RecurrentBase

#: The published values, by task (the paper's code): sequential MNIST's are the defaults.
CORNN_PRESETS = {
    "adding": {"dt": 0.06, "gamma": 66.0, "epsilon": 15.0},
    "mnist": {"dt": 0.042, "gamma": 2.7, "epsilon": 4.7},
}


class CoRNN(RecurrentBase):
    r"""coRNN (Rusch & Mishra 2021): each unit a damped oscillator y'' = tanh(W y + W_z y' + V x + b)
    - gamma y - epsilon y', stepped with the paper's explicit scheme (z = y'):

    .. math::
        z_t = z_{t-1} + \Delta t\,(\tanh(x_t W_{ih}^T + b + z_{t-1} W_z^T + y_{t-1} W_y^T)
              - \gamma y_{t-1} - \epsilon z_{t-1}),\quad y_t = y_{t-1} + \Delta t\, z_t

    The layer's output is y_t; its state is (y, z), recorded as the two series ``y`` and ``z``
    (``record_gradients``: ``hidden`` and ``cell``). The paper proves the gradient bounded above
    (no explosion) and its decay bounded below (of order dt^(3/2) per step, not exponential in the
    lag) for any T under its condition on dt, gamma and epsilon.

    Args:
        dt, gamma, epsilon: the step, the stiffness and the damping. Defaults: sequential MNIST's
            published values (0.042, 2.7, 4.7); the adding problem's are 0.06, 66, 15
            (``CORNN_PRESETS``, the registry's presets "mnist" and "adding").
        The rest as every bptt layer; engine "auto" is "fast", the hand-written BPTT.

    Parameters: ``weight_ih_l{k}`` (H, I), ``weight_hz_l{k}`` (H, H), ``weight_hy_l{k}`` (H, H),
    ``bias_ih_l{k}`` (H,), each U(-1/sqrt(I + 2H), 1/sqrt(I + 2H)) (torch.nn.Linear's init of the
    paper's one map over [x, z, y]). State: (y, z), each (D * num_layers, B, H).
    Source: Rusch & Mishra, "Coupled Oscillatory Recurrent Neural Network (coRNN): An accurate and
    (gradient) stable architecture for learning long time dependencies", ICLR 2021 (sMNIST 99.3,
    psMNIST 96.6; adding solved at T = 5000).
    """

    MODE = "CORNN"
    STATE_NAMES = ("y", "z")

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
        dt: float = 0.042,
        gamma: float = 2.7,
        epsilon: float = 4.7,
        **common: Any,
    ) -> None:
        for name, value in (("dt", dt), ("gamma", gamma), ("epsilon", epsilon)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number above 0, got {value!r}")
        self.dt, self.gamma, self.epsilon = float(dt), float(gamma), float(epsilon)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, **common)

    def _parameter_shapes(self, layer: int, layer_input: int) -> list[tuple[str, tuple[int, ...]]]:
        H = self.hidden_size
        shapes = [("weight_ih", (H, layer_input)), ("weight_hz", (H, H)), ("weight_hy", (H, H))]
        return shapes + ([("bias_ih", (H,))] if self.bias else [])

    def layer_parameters(
        self, layer: int, direction: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(weight_ih, weight_hz, weight_hy, bias_ih or None) of one layer and direction."""
        get = lambda stem: self._param(stem, layer, direction)  # noqa: E731
        return get("weight_ih"), get("weight_hz"), get("weight_hy"), self._optional("bias_ih", layer, direction)

    def recurrent_weight(self, layer: int, direction: int = 0) -> torch.Tensor:
        """W_y, the coupling of the positions (the per-layer ``dL/dW_hh``)."""
        return getattr(self, self._name("weight_hy", layer, direction))

    @torch.no_grad()
    def _initialise(self, generator: torch.Generator | None) -> None:
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                params = [p for p in self.layer_parameters(layer, direction) if p is not None]
                bound = 1 / math.sqrt(params[0].shape[1] + 2 * self.hidden_size)
                for p in params:
                    p.uniform_(-bound, bound, generator=generator)

    def step(self, layer: int, x: torch.Tensor, state: Any, direction: int = 0) -> Any:
        weight_ih, weight_hz, weight_hy, bias = self.layer_parameters(layer, direction)
        new, _ = cornn_cell(
            F.linear(x, weight_ih, bias), state, weight_hz, weight_hy, self.dt, self.gamma, self.epsilon
        )
        return new

    def _engine_call(
        self,
        engine: str,
        layer: int,
        direction: int,
        x: torch.Tensor,
        state: Any,
        record: LayerRecorders | None,
        watch: Any = None,
    ) -> tuple[torch.Tensor, Any]:
        params = (*self.layer_parameters(layer, direction), self.dt, self.gamma, self.epsilon)
        if engine == "reference":
            return reference_layer(x, state, *params, record, watch=watch)
        return cornn_layer(x, state, *params, record)

    def _repr_cell(self) -> str:
        return f", dt={self.dt:g}, gamma={self.gamma:g}, epsilon={self.epsilon:g}"
