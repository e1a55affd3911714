r"""minGRU and minLSTM: the minimal recurrences of Feng, Tung, Ahmed, Bengio & Hajimirsadeghi (2024)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from bptt.engine import compiled
from bptt.engine.minrnn import GATES, gates, min_cell, min_layer, min_reference_layer, min_scan_layer
from bptt.engine.recording import LayerRecorders
from bptt.modules.base import RecurrentBase


class _MinRNN(RecurrentBase):
    """What minGRU and minLSTM share: one input projection per layer, no recurrent weights, a
    diagonal recurrence h_t = (1 - z_t) h_{t-1} + z_t h~_t (``bptt.engine.minrnn``)."""

    CELL = "mingru"
    DIAGONAL = True
    ENGINE_CHOICES = ("auto", "compiled", "fast", "scan", "reference")
    #: "auto": step by step on a CPU, compiled where the loops build; on a GPU, the parallel scan (log2 T
    #: launches, not T).
    CPU_ENGINE = "compiled"
    GPU_ENGINE = "scan"

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
        t_max: int | None = None,
        **common: Any,
    ) -> None:
        if t_max is not None and (not isinstance(t_max, int) or isinstance(t_max, bool) or t_max < 2):
            raise ValueError(f"t_max must be an integer of at least 2, got {t_max!r}")
        self.t_max = t_max
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, **common)

    def _parameter_shapes(self, layer: int, layer_input: int) -> list[tuple[str, tuple[int, ...]]]:
        width = self.GATES * self.hidden_size
        return [("weight_ih", (width, layer_input))] + ([("bias_ih", (width,))] if self.bias else [])

    def layer_parameters(self, layer: int, direction: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weight_ih, bias_ih or None) of one layer and direction."""
        return self._param("weight_ih", layer, direction), self._optional("bias_ih", layer, direction)

    def recurrent_weight(self, layer: int, direction: int = 0) -> torch.Tensor:
        """The weights that set the recurrence: W_ih's gate rows (the cell has no W_hh; its gates read x_t only)."""
        return self.input_weight(layer, direction)

    def recurrent_matrix(self, layer: int, direction: int = 0) -> torch.Tensor:
        """(H,) what multiplies h_{t-1} at zero input, 1 - z (minLSTM: f'): the cell has no recurrent
        weights, its retention is set by the input through the gates, and by the gate biases at x = 0."""
        weight, bias = self.layer_parameters(layer, direction)
        zero = weight.new_zeros(1, weight.shape[1])
        return 1 - gates(self.CELL, F.linear(zero, weight, bias))[1][0]

    @torch.no_grad()
    def _initialise(self, generator: torch.Generator | None) -> None:
        """W_ih ~ U(-1/sqrt(I), 1/sqrt(I)) (torch.nn.Linear's, as in ``minGRU-pytorch``); the biases
        0, except that with ``t_max`` the gates start with chrono memory (``_gate_bias``)."""
        H = self.hidden_size
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                weight, bias = self.layer_parameters(layer, direction)
                scale = 1 / math.sqrt(weight.shape[1])
                weight.uniform_(-scale, scale, generator=generator)
                if bias is None:
                    continue
                bias.zero_()
                if self.t_max is not None:
                    # Per unit, a retention 1 - z = u / (1 + u) with u ~ U[1, t_max - 1]: time constants
                    # spread up to t_max (chrono init, Tallec & Ollivier 2018, for the gate that writes).
                    spans = torch.empty(H, dtype=bias.dtype, device=bias.device).uniform_(
                        1, self.t_max - 1, generator=generator
                    )
                    self._gate_bias(bias, torch.log(spans))

    def _gate_bias(self, bias: torch.Tensor, log_spans: torch.Tensor) -> None:
        raise NotImplementedError

    def step(self, layer: int, x: torch.Tensor, state: torch.Tensor, direction: int = 0) -> torch.Tensor:
        """One step of one layer from x_t (B, I) and h_{t-1} (B, H), in plain autograd."""
        return min_cell(self.CELL, F.linear(x, *self.layer_parameters(layer, direction)), state)

    def diagonal_jacobian(self, layer: int, x: torch.Tensor, direction: int = 0) -> torch.Tensor:
        """(T, B, H) dh_t/dh_{t-1} = 1 - z_t, the whole step Jacobian (diagonal), from the layer's input x
        (T, B, I): the gates read x_t alone, so it does not depend on the state."""
        _, z = gates(self.CELL, F.linear(x, *self.layer_parameters(layer, direction)))
        return 1 - z

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
            return min_reference_layer(self.CELL, x, state, *params, record, watch=watch)
        if engine == "scan":
            return min_scan_layer(self.CELL, x, state, *params, record)
        if engine == "compiled":
            return compiled.min_layer(self.CELL, x, state, *params, record)
        return min_layer(self.CELL, x, state, *params, record)

    def _repr_cell(self) -> str:
        return "" if self.t_max is None else f", t_max={self.t_max}"


class MinGRU(_MinRNN):
    r"""minGRU (Feng et al. 2024), in the paper's log-space form:

    .. math::
        z_t = \sigma(x_t W_z^T + b_z),\quad \tilde h_t = g(x_t W_h^T + b_h),\quad
        h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t,

    g(v) = v + 1/2 for v >= 0 and sigmoid(v) below, so h~ > 0 (and h_t > 0 from h_0 >= 0), which
    the paper's log-space scan needs. Neither gate reads h_{t-1}: dh_t/dh_{t-1} = diag(1 - z_t),
    and the gradient over k steps is the product of the k retentions 1 - z.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: as
            torch.nn.GRU (one bias per layer, ``bias_ih_l{k}``).
        t_max: the longest dependency expected. With it, b_z = -log(u), u ~ U[1, t_max - 1] per
            unit, so 1 - z starts at u / (1 + u): chrono init (Tallec & Ollivier 2018) for the
            gate that writes. None: b_z = 0 (z = 1/2, memory of a few steps).
        residual, engine ("auto": "compiled" on a CPU where its loops build, else "fast"; "scan" on a
            GPU; "compiled", "fast", "scan", "reference"),
        truncate, generator, device, dtype: as every bptt layer.

    Parameters: ``weight_ih_l{k}`` (2H, I), blocks [W_h; W_z] (``minGRU-pytorch``'s
    ``to_hidden_and_gate`` order, so its weights load as they are), ``bias_ih_l{k}`` (2H,).
    Init: W ~ U(-1/sqrt(I), 1/sqrt(I)) (torch.nn.Linear's), b_h = 0. State: h (D * num_layers, B, H).
    Source: Feng et al., "Were RNNs All We Needed?", 2024 (arXiv:2410.01201), appendix B.3.
    """

    MODE = "MINGRU"
    CELL = "mingru"
    GATES = GATES["mingru"]

    def _gate_bias(self, bias: torch.Tensor, log_spans: torch.Tensor) -> None:
        H = self.hidden_size
        bias[H:] = -log_spans  # z = 1 / (1 + u)


class MinLSTM(_MinRNN):
    r"""minLSTM (Feng et al. 2024), in the paper's log-space form:

    .. math::
        f_t, i_t = \sigma(x_t W_f^T + b_f), \sigma(x_t W_i^T + b_i),\quad
        f'_t, i'_t = f_t / (f_t + i_t), i_t / (f_t + i_t),\quad
        h_t = f'_t \odot h_{t-1} + i'_t \odot g(x_t W_h^T + b_h),

    g as in ``MinGRU``. f' + i' = 1, so this is minGRU's recurrence with z = i'; with the output
    gate dropped, the cell state is h itself (c_t = h_t), so h is the one state recorded.
    dh_t/dh_{t-1} = diag(f'_t).

    Args: as ``MinGRU``; with ``t_max``, b_f = log(u) and b_i = -log(u), u ~ U[1, t_max - 1] per
    unit, so f' starts near u / (1 + u) (chrono init). None: b_f = b_i = 0 (f' = 1/2).

    Parameters: ``weight_ih_l{k}`` (3H, I), blocks [W_h; W_f; W_i] (``minGRU-pytorch``'s
    ``to_hidden_and_f_i_gate`` order), ``bias_ih_l{k}`` (3H,). State: h (D * num_layers, B, H).
    Source: Feng et al., "Were RNNs All We Needed?", 2024 (arXiv:2410.01201), appendix B.3.
    """

    MODE = "MINLSTM"
    CELL = "minlstm"
    GATES = GATES["minlstm"]

    def _gate_bias(self, bias: torch.Tensor, log_spans: torch.Tensor) -> None:
        H = self.hidden_size
        bias[H : 2 * H] = log_spans  # f = u / (1 + u)
        bias[2 * H :] = -log_spans  # i = 1 / (1 + u)
