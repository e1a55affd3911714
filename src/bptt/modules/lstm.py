"""The LSTM layer, with torch.nn.LSTM's equations and gate order."""

from __future__ import annotations

from typing import Any

import torch

from bptt.engine import ENGINES, cells
from bptt.engine.recording import LayerRecorders
from bptt.engine.reference import StepWatch
from bptt.modules.timeloop import State
from bptt.modules.twins import TorchTwin


class LSTM(TorchTwin):
    r"""LSTM with torch.nn.LSTM's equations and gate order (i, f, g, o):

    .. math::
        i, f, o = \sigma(\cdot),\; g = \tanh(\cdot),\;
        c_t = f \odot c_{t-1} + i \odot g,\; h_t = o \odot \tanh(c_t)

    Args: as torch.nn.LSTM (``proj_size`` P > 0: h_t = (o * tanh(c_t)) W_hr^T, of size P,
    ``weight_hr_l{k}``), plus ``init``, ``init_scale``, ``residual``, ``engine`` and
    ``forget_bias``: when given, the forget-gate block of ``bias_ih`` is set to it and
    that of ``bias_hh`` to zero, so the gate starts at sigmoid(forget_bias) (1.0 is the
    usual remedy). ``init="chrono"`` with ``t_max`` (Tallec & Ollivier 2018): b_f = log(u),
    u ~ U[1, t_max - 1] per unit, b_i = -b_f, every other bias 0.

    Shapes: as ``bptt.RNN``, with the state (h_0, c_0): h (D * num_layers, B, P or H),
    c (D * num_layers, B, H).
    """

    GATES = 4
    MODE = "LSTM"
    STATE_NAMES = ("h", "c")

    def __init__(self, *args: Any, forget_bias: float | None = None, **kwargs: Any) -> None:
        if forget_bias is not None and kwargs.get("init") == "chrono":
            raise ValueError("forget_bias and init 'chrono' both set the forget-gate bias; give one")
        self.forget_bias = forget_bias
        super().__init__(*args, **kwargs)

    @torch.no_grad()
    def _reset_extra(self, generator: torch.Generator | None) -> None:
        if self.forget_bias is None or not self.bias:
            return
        H = self.hidden_size
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                _, _, b_ih, b_hh = self.layer_parameters(layer, direction)
                b_ih[H : 2 * H].fill_(self.forget_bias)
                b_hh[H : 2 * H].zero_()

    def _chrono(self, bias_ih: torch.Tensor, keep: torch.Tensor) -> None:
        H = self.hidden_size
        bias_ih[H : 2 * H] = keep  # forget gate
        bias_ih[:H] = -keep  # input gate

    # -- the state is (h, c) -------------------------------------------------------------------
    def _state_sizes(self) -> tuple[int, int]:
        return self.output_size, self.hidden_size

    def get_expected_cell_size(self, input: torch.Tensor, batch_sizes: torch.Tensor | None) -> tuple[int, int, int]:
        """(D * num_layers, B, H): the shape c_0 must have."""
        return self._expected_state_size(1, input, batch_sizes)

    def projection(self, layer: int, direction: int = 0) -> torch.Tensor | None:
        """W_hr (P, H) of one layer and direction, or None without ``proj_size``."""
        return getattr(self, self._name("weight_hr", layer, direction), None) if self.proj_size else None

    def step(self, layer: int, x: torch.Tensor, state: State, direction: int = 0) -> State:
        """One step of the cell (``bptt.engine.cells.step``) with its projection W_hr, in plain autograd."""
        params = self.layer_parameters(layer, direction)
        return cells.step("LSTM", x, state, *params, weight_hr=self.projection(layer, direction))

    def _engine_call(
        self,
        engine: str,
        layer: int,
        direction: int,
        x: torch.Tensor,
        state: Any,
        record: LayerRecorders | None,
        watch: StepWatch | None = None,
    ) -> tuple[torch.Tensor, Any]:
        return ENGINES.get(engine).lstm_layer(
            x,
            state,
            *self.layer_parameters(layer, direction),
            record,
            weight_hr=self.projection(layer, direction),
            watch=watch,
        )

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", forget_bias={self.forget_bias}" if self.forget_bias is not None else "")
