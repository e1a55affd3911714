r"""The layer-normalised LSTM (Ba, Kiros & Hinton 2016) in Haste's formulation."""

from __future__ import annotations

from typing import Any

import torch

from bptt.engine.lnlstm import input_half, lnlstm_cell, reference_layer
from bptt.engine.recording import LayerRecorders
from bptt.modules.base import RecurrentBase


class LayerNormLSTM(RecurrentBase):
    r"""LSTM with layer normalisation, as Haste's ``LayerNormLSTM`` computes it:

    .. math::
        a_t = \mathrm{LN}(x_t W_{ih}^T; g_x) + \mathrm{LN}(h_{t-1} W_{hh}^T; g_h) + b,\quad
        c_t = \sigma(a_f) c_{t-1} + \sigma(a_i) \tanh(a_g),\quad
        h_t = \sigma(a_o) \tanh(\mathrm{LN}(c_t; g_c, b_c))

    (LN over the 4H gate pre-activations without a shift, and over c_t with one; epsilon 1e-5).
    Gates in torch.nn.LSTM's order i, f, g, o (Haste stores them i, g, f, o). Normalising the
    recurrent half keeps the scale of the gate inputs fixed whatever the size of h, so the forget
    gate, not the weight scale, sets how far c_t carries its gradient.

    Args:
        forget_bias: the forget-gate bias at init (Haste's default 1).
        The rest as every bptt layer (engine "auto" = "reference", the autograd loop).

    Init (Haste's): W_ih Xavier uniform and W_hh orthogonal, each per gate block; b = 0 but for the
    forget block; g_x = g_h = g_c = 1, b_c = 0. Parameters: ``weight_ih_l{k}`` (4H, I),
    ``weight_hh_l{k}`` (4H, H), ``bias_ih_l{k}`` (4H,), ``ln_ih_weight_l{k}``, ``ln_hh_weight_l{k}``
    (4H,), ``ln_cell_weight_l{k}``, ``ln_cell_bias_l{k}`` (H,). State: (h, c), recorded as h and c.
    Source: Ba, Kiros & Hinton, "Layer Normalization", 2016; lmnt-com/haste's LayerNormLSTM.
    """

    MODE = "LNLSTM"
    GATES = 4
    STATE_NAMES = ("h", "c")
    ENGINE_CHOICES = ("auto", "reference")

    def __init__(self, *args: Any, forget_bias: float = 1.0, **kwargs: Any) -> None:
        self.forget_bias = float(forget_bias)
        super().__init__(*args, **kwargs)

    def _parameter_shapes(self, layer: int, layer_input: int) -> list[tuple[str, tuple[int, ...]]]:
        H = self.hidden_size
        shapes: list[tuple[str, tuple[int, ...]]] = [("weight_ih", (4 * H, layer_input)), ("weight_hh", (4 * H, H))]
        shapes += [("bias_ih", (4 * H,))] if self.bias else []
        return [
            *shapes,
            ("ln_ih_weight", (4 * H,)),
            ("ln_hh_weight", (4 * H,)),
            ("ln_cell_weight", (H,)),
            ("ln_cell_bias", (H,)),
        ]

    def layer_parameters(
        self, layer: int, direction: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weight_ih, weight_hh, bias_ih or None, ln_ih_weight, ln_hh_weight, ln_cell_weight, ln_cell_bias)."""
        get = lambda stem: self._param(stem, layer, direction)  # noqa: E731
        return (
            get("weight_ih"),
            get("weight_hh"),
            self._optional("bias_ih", layer, direction),
            get("ln_ih_weight"),
            get("ln_hh_weight"),
            get("ln_cell_weight"),
            get("ln_cell_bias"),
        )

    def _auto_engine(self, input: torch.Tensor | None, recording: bool, record: Any, packed: bool) -> str:
        return "reference"

    @torch.no_grad()
    def _initialise(self, generator: torch.Generator | None) -> None:
        H = self.hidden_size
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                w_ih, w_hh, bias, g_x, g_h, g_c, b_c = self.layer_parameters(layer, direction)
                for gate in range(4):
                    torch.nn.init.xavier_uniform_(w_ih[gate * H : (gate + 1) * H], generator=generator)
                    torch.nn.init.orthogonal_(w_hh[gate * H : (gate + 1) * H], generator=generator)
                if bias is not None:
                    bias.zero_()
                    bias[H : 2 * H].fill_(self.forget_bias)
                for ones in (g_x, g_h, g_c):
                    ones.fill_(1.0)
                b_c.zero_()

    def step(self, layer: int, x: torch.Tensor, state: Any, direction: int = 0) -> Any:
        w_ih, w_hh, bias, g_x, g_h, g_c, b_c = self.layer_parameters(layer, direction)
        _, p = input_half(x, w_ih, g_x, bias)
        new, _ = lnlstm_cell(p, state, w_hh, g_h, g_c, b_c)
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
        return reference_layer(x, state, *self.layer_parameters(layer, direction), record, watch=watch)

    def _repr_cell(self) -> str:
        return "" if self.forget_bias == 1.0 else f", forget_bias={self.forget_bias:g}"
