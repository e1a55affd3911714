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

    def __init__(self, *args: Any, forget_bias: float | None = None, **kwargs: Any) -> None:
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
            for direction in range(self.num_directions):
                _, _, b_ih, b_hh = self.layer_parameters(layer, direction)
                b_ih[H : 2 * H].fill_(self.forget_bias)
                b_hh[H : 2 * H].zero_()

    def _chrono(self, bias_ih: torch.Tensor, keep: torch.Tensor) -> None:
        H = self.hidden_size
        bias_ih[H : 2 * H] = keep  # forget gate
        bias_ih[:H] = -keep  # input gate

    # -- the state is (h, c) -------------------------------------------------------------------
    def get_expected_cell_size(self, input: torch.Tensor, batch_sizes: torch.Tensor | None) -> tuple[int, int, int]:
        """(D * num_layers, B, H): the shape c_0 must have."""
        batch = int(batch_sizes[0]) if batch_sizes is not None else input.size(0 if self.batch_first else 1)
        return self.num_layers * self.num_directions, batch, self.hidden_size

    def check_forward_args(
        self,
        input: torch.Tensor,
        hidden: tuple[torch.Tensor, torch.Tensor],  # type: ignore[override]
        batch_sizes: torch.Tensor | None,
    ) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(
            hidden[0], self.get_expected_hidden_size(input, batch_sizes), "Expected hidden[0] size {}, got {}"
        )
        self.check_hidden_size(
            hidden[1], self.get_expected_cell_size(input, batch_sizes), "Expected hidden[1] size {}, got {}"
        )

    def permute_hidden(
        self,
        hx: tuple[torch.Tensor, torch.Tensor],  # type: ignore[override]
        permutation: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if permutation is None:
            return hx
        return hx[0].index_select(1, permutation), hx[1].index_select(1, permutation)

    def _check_state_dims(self, hx: Any, batched: bool) -> Any:
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"LSTM hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
        want = 3 if batched else 2
        if hx[0].dim() != want or hx[1].dim() != want:
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise RuntimeError(
                f"For {kind} input, hx and cx should also be {want}-D but got "
                f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
            )
        return tuple(hx) if batched else (hx[0].unsqueeze(1), hx[1].unsqueeze(1))

    def _zero_state(self, batch: int, like: torch.Tensor) -> Any:
        layers = self.num_layers * self.num_directions
        return like.new_zeros(layers, batch, self.output_size), like.new_zeros(layers, batch, self.hidden_size)

    def _state_at(self, state: Any, index: int) -> Any:
        return state[0][index], state[1][index]

    def _stack_states(self, states: list[Any]) -> Any:
        return torch.stack([h for h, _ in states]), torch.stack([c for _, c in states])

    def _unbatch_state(self, state: Any) -> Any:
        return state[0].squeeze(1), state[1].squeeze(1)

    def projection(self, layer: int, direction: int = 0) -> torch.Tensor | None:
        """W_hr (P, H) of one layer and direction, or None without ``proj_size``."""
        return getattr(self, self._name("weight_hr", layer, direction), None) if self.proj_size else None

    def _engine_call(
        self,
        engine: Engine,
        layer: int,
        direction: int,
        x: torch.Tensor,
        state: Any,
        record: LayerRecorders | None,
        watch: StepWatch | None = None,
    ) -> tuple[torch.Tensor, Any]:
        return engine.lstm_layer(
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
