"""The "compiled" engine: the fast engine's Functions on compiled time loops (``csrc/``, built by
``bptt.engine.extension``), for the simple RNN, the LSTM, the GRU, minGRU and minLSTM on a CPU.

Same buffers, same chunks, same results as "fast" (``bptt.engine.rnn``, ``lstm``, ``gru``, ``minrnn``): only the
per-step work moves from one torch operation at a time into one compiled pass per step, around the same
BLAS product, with the record's norms summed inside it. Where the loops cannot run (no compiler, a GPU,
a dtype other than float32 or float64, an activation the loops do not know), the Python loops of "fast"
run instead, with the same results.
"""

from __future__ import annotations

import torch

from bptt.engine import extension, gru, lstm, minrnn, python_loops, reference, rnn
from bptt.engine.activations import Activation, Slope
from bptt.engine.recording import LayerRecorders
from bptt.engine.reference import StepWatch

#: The activations the loops run, as their codes (leaky_relu and prelu: a slope per unit).
ACTIVATION_CODES = {"sigmoid": 0, "tanh": 1, "relu": 2, "leaky_relu": 3, "prelu": 3}


def available() -> bool:
    """Whether the compiled loops are here (building them on the first call)."""
    return extension.loops() is not None


def runs_on(x: torch.Tensor) -> bool:
    """Whether the compiled loops run this input: a CPU tensor of float32 or float64, loops built."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and available()


class RNNLoops:
    @staticmethod
    def _slope(act: Activation, slope: Slope, like: torch.Tensor) -> torch.Tensor | None:
        if not act.has_slope:
            return None
        if isinstance(slope, torch.Tensor):
            return slope.detach().to(like.dtype).contiguous()
        return like.new_full((like.shape[-1],), float(slope))

    def forward(self, out, pre, h0, weight_hh, act, slope) -> None:
        loops = extension.loops()
        loops.rnn_forward(out, pre, h0, weight_hh, ACTIVATION_CODES[act.name], self._slope(act, slope, out))

    def backward(self, out, pre, grad_h, delta, delta_next, weight_hh, act, slope, norms) -> None:
        extension.loops().rnn_backward(
            out,
            pre,
            grad_h,
            delta,
            delta_next,
            weight_hh,
            ACTIVATION_CODES[act.name],
            self._slope(act, slope, out),
            act.name == "prelu",  # prelu'(0) = 1, leaky_relu'(0) = its slope
            norms,
        )


class LSTMLoops:
    @staticmethod
    def forward(*args) -> None:
        extension.loops().lstm_forward(*args)

    @staticmethod
    def backward(*args) -> None:
        extension.loops().lstm_backward(*args)


class MinLoops:
    """minGRU's and minLSTM's loops (``bptt.engine.minrnn.MinLoops``): one compiled pass per step."""

    @staticmethod
    def workspace(cell, like, K, B, H) -> None:
        return None

    @staticmethod
    def forward(work, cell, p, h_prev, out) -> None:
        extension.loops().min_forward(p, h_prev, out)

    @staticmethod
    def backward(work, cell, p, out, h_prev_first, grad_h, delta, carry, norms) -> None:
        extension.loops().min_backward(p, out, h_prev_first, grad_h, delta, carry, norms)


class GRULoops:
    @staticmethod
    def forward(gates, candidate, out, h0, weight_hh, bias_hn) -> None:
        scratch = gates.new_empty(gates.shape[1], gates.shape[2])  # each step's h_{t-1} W_hh^T
        extension.loops().gru_forward(gates, candidate, out, h0, weight_hh, bias_hn, scratch)

    @staticmethod
    def backward(*args) -> None:
        extension.loops().gru_backward(*args)


RNN_LOOPS, LSTM_LOOPS, GRU_LOOPS, MIN_LOOPS = RNNLoops(), LSTMLoops(), GRULoops(), MinLoops()


def rnn_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    activation: str = "tanh",
    slope: Slope = None,
    record: LayerRecorders | None = None,
    *,
    watch: StepWatch | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``bptt.engine.rnn.rnn_layer`` on the compiled loops where they run (see the module docstring)."""
    if watch is not None:
        return reference.rnn_layer(
            x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation, slope, record, watch=watch
        )
    loops = RNN_LOOPS if activation in ACTIVATION_CODES and runs_on(x) else python_loops.RNN_LOOPS
    return rnn.run(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation, slope, record, loops)


def lstm_layer(
    x: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    record: LayerRecorders | None = None,
    *,
    weight_hr: torch.Tensor | None = None,
    watch: StepWatch | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``bptt.engine.lstm.lstm_layer`` on the compiled loops where they run (see the module docstring)."""
    if watch is not None:
        return reference.lstm_layer(
            x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr=weight_hr, watch=watch
        )
    loops = LSTM_LOOPS if runs_on(x) else python_loops.LSTM_LOOPS
    return lstm.run(x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr, loops)


def gru_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    record: LayerRecorders | None = None,
    *,
    watch: StepWatch | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``bptt.engine.gru.gru_layer`` on the compiled loops where they run (see the module docstring)."""
    if watch is not None:
        return reference.gru_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record, watch=watch)
    loops = GRU_LOOPS if runs_on(x) else python_loops.GRU_LOOPS
    return gru.run(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record, loops)


def min_layer(
    cell: str,
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    bias_ih: torch.Tensor | None,
    record: LayerRecorders | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``bptt.engine.minrnn.min_layer`` (minGRU, minLSTM) on the compiled loops where they run."""
    loops = MIN_LOOPS if runs_on(x) else minrnn.PYTHON_LOOPS
    return minrnn.min_layer(cell, x, h0, weight_ih, bias_ih, record, loops)
