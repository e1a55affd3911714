"""The LSTM layer, with torch.nn.LSTM's equations and gate order."""
from __future__ import annotations

from typing import Any

import torch

from bptt.engine import Engine
from bptt.engine.recording import LayerRecorders
from bptt.engine.reference import StepWatch
from bptt.modules.base import RecurrentBase


class LSTM(RecurrentBase):
    r"""LSTM with torch.nn.LSTM's equations and gate order (i, f, g, o):

    .. math::
        i, f, o = \sigma(\cdot),\; g = \tanh(\cdot),\;
        c_t = f \odot c_{t-1} + i \odot g,\; h_t = o \odot \tanh(c_t)

    Args: as torch.nn.LSTM (no proj_size), plus ``init``, ``init_scale``,
    ``residual``, ``engine`` and ``forget_bias``: when given, the forget-gate
    block of ``bias_ih`` is set to it and that of ``bias_hh`` to zero, so the
    gate starts at sigmoid(forget_bias) (1.0 is the usual remedy).
    ``init="chrono"`` with ``t_max`` (Tallec & Ollivier 2018): b_f = log(u),
    u ~ U[1, t_max - 1] per unit, b_i = -b_f, every other bias 0.
    """

    GATES = 4
    MODE = "LSTM"

    def __init__(self, *args: Any, forget_bias: float | None = None, proj_size: int = 0, **kwargs: Any) -> None:
        if proj_size:
            raise ValueError("proj_size is not supported; allowed: 0")
        if forget_bias is not None and kwargs.get("init") == "chrono":
            raise ValueError("forget_bias and init 'chrono' both set the forget-gate bias; give one")
        self.forget_bias = forget_bias
        super().__init__(*args, **kwargs)

    @torch.no_grad()
    def _reset_extra(self) -> None:
        if self.forget_bias is None or not self.bias:
            return
        H = self.hidden_size
        for layer in range(self.num_layers):
            _, _, b_ih, b_hh = self.layer_parameters(layer)
            b_ih[H : 2 * H].fill_(self.forget_bias)
            b_hh[H : 2 * H].zero_()

    def _chrono(self, bias_ih: torch.Tensor, keep: torch.Tensor) -> None:
        H = self.hidden_size
        bias_ih[H : 2 * H] = keep  # forget gate
        bias_ih[:H] = -keep  # input gate

    def _zero_state(self, batch: int, like: torch.Tensor) -> Any:
        zeros = like.new_zeros(self.num_layers, batch, self.hidden_size)
        return zeros, zeros

    def _layer_state(self, state: Any, layer: int) -> Any:
        return state[0][layer], state[1][layer]

    def _stack_states(self, states: list[Any]) -> Any:
        return torch.stack([h for h, _ in states]), torch.stack([c for _, c in states])

    def _check_state(self, state: Any, batch: int, unbatched: bool) -> Any:
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError("LSTM hx must be a tuple (h_0, c_0)")
        return (
            self._check_tensor_state("h_0", state[0], batch, unbatched),
            self._check_tensor_state("c_0", state[1], batch, unbatched),
        )

    def _unbatch_state(self, state: Any) -> Any:
        return state[0].squeeze(1), state[1].squeeze(1)

    def _engine_call(self, engine: Engine, layer: int, x: torch.Tensor, state: Any, record: LayerRecorders | None,
                     watch: StepWatch | None = None) -> tuple[torch.Tensor, Any]:
        extra = {} if watch is None else {"watch": watch}
        return engine.lstm_layer(x, state, *self.layer_parameters(layer), record, **extra)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", forget_bias={self.forget_bias}" if self.forget_bias is not None else "")
