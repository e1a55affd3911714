"""The Elman RNN layer, with a choice of activation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bptt.engine import ACTIVATIONS, DEFAULT_SLOPE, ENGINES, cells
from bptt.engine.recording import LayerRecorders
from bptt.engine.reference import StepWatch
from bptt.modules.timeloop import State
from bptt.modules.twins import TorchTwin


class RNN(TorchTwin):
    r"""Elman RNN with a choice of activation:

    .. math:: h_t = \mathrm{act}(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout: as torch.nn.RNN.
        nonlinearity: torch.nn.RNN's name for ``activation`` ("tanh" or "relu").
        activation: "sigmoid", "tanh", "relu", "leaky_relu" or "prelu".
        negative_slope: slope for x < 0 of leaky_relu, and the initial slope of prelu.
        init: "pytorch" (U(-1/sqrt(H), 1/sqrt(H)), for parity), "xavier", "orthogonal",
            "identity" (IRNN: W_hh = init_scale * I) or "kaiming".
        residual: add each layer's input to its output (projected where sizes differ).
        engine: "auto" (the default: see ``bptt.modules.twins``), "fast" (hand-written BPTT),
            "reference" (plain autograd loop), "probe", "triton" or "vendor".
        truncate: truncated BPTT, cut the gradient every ``truncate`` steps (None: never).

    Shapes: input (T, B, I) or (B, T, I) with batch_first, (T, I) unbatched, or a
    ``PackedSequence``; h_0 and h_n (D * num_layers, B, H); output (T, B, D * H), with
    D = 2 for ``bidirectional`` (the reverse direction's features second), else 1.
    """

    GATES = 1
    MODE = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str | None = None,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        activation: str | None = None,
        negative_slope: float = DEFAULT_SLOPE,
        **kwargs: Any,
    ) -> None:
        if nonlinearity is not None and activation is not None and nonlinearity != activation:
            raise ValueError("give either nonlinearity or activation, not both")
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        activation = activation or nonlinearity or "tanh"
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; allowed: {', '.join(ACTIVATIONS.names())}")
        self.activation = activation
        self.negative_slope = float(negative_slope)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, **kwargs)

    def _torch_mode(self) -> str:
        return f"RNN_{self.activation.upper()}"  # RNN_TANH and RNN_RELU as torch.nn.RNN, the others by analogy

    @property
    def nonlinearity(self) -> str:
        return self.activation

    def _extra_parameters(self, factory: dict[str, Any]) -> None:
        act = ACTIVATIONS.get(self.activation)
        if act.learned_slope:
            for layer in range(self.num_layers):
                for direction in range(self.num_directions):
                    self.register_parameter(
                        self._name(act.parameter, layer, direction),
                        nn.Parameter(torch.empty(self.hidden_size, **factory)),
                    )

    @torch.no_grad()
    def _reset_extra(self, generator: torch.Generator | None) -> None:
        act = ACTIVATIONS.get(self.activation)
        if act.learned_slope:
            for layer in range(self.num_layers):
                for direction in range(self.num_directions):
                    parameter = getattr(self, self._name(act.parameter, layer, direction))
                    if act.has_slope:
                        parameter.fill_(self.negative_slope)
                    else:  # modReLU's bias, as the expRNN reference code starts it
                        parameter.uniform_(-0.01, 0.01, generator=generator)

    def slope(self, layer: int, direction: int = 0) -> torch.Tensor | float | None:
        """The activation's negative-side slope at one layer and direction: prelu's learned (H,)
        weights, leaky_relu's ``negative_slope``, or None."""
        act = ACTIVATIONS.get(self.activation)
        if act.learned_slope:
            return getattr(self, self._name(act.parameter, layer, direction))
        return self.negative_slope if act.has_slope else None

    def step(self, layer: int, x: torch.Tensor, state: State, direction: int = 0) -> State:
        """One step of the cell (``bptt.engine.cells.step``) with its activation, in plain autograd."""
        params = self.layer_parameters(layer, direction)
        return cells.step("RNN", x, state, *params, ACTIVATIONS.get(self.activation), self.slope(layer, direction))

    def _engine_call(
        self,
        engine: str,
        layer: int,
        direction: int,
        x: torch.Tensor,
        state: torch.Tensor,
        record: LayerRecorders | None,
        watch: StepWatch | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return ENGINES.get(engine).rnn_layer(
            x,
            state,
            *self.layer_parameters(layer, direction),
            self.activation,
            self.slope(layer, direction),
            record,
            watch=watch,
        )

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.activation != "tanh":
            s += f", activation={self.activation!r}"
        if ACTIVATIONS.get(self.activation).has_slope:
            s += f", negative_slope={self.negative_slope}"
        return s
