"""The vendor's fused kernels (torch.nn's: cuDNN on a GPU, oneDNN or native code on a CPU), and the
probe route that reads the per-step gradient out of them.

``run_stack`` is torch.nn's own call: the whole stack of layers and directions in one kernel
call, for the cells the vendor has (tanh and ReLU RNNs, LSTM with or without projection, GRU).
It hides every step, so nothing per step can be recorded.

The probe route (``rnn_layer`` and ``lstm_layer`` of one layer and direction) runs the vendor
kernel on the input widened by P zero "probe" channels whose input weights are a copy of W_hh
(P: the size of h). The forward is unchanged (the probe is zero), and the gradient the vendor
returns for the probe at step t is dL/dpre_t W_hh, the recurrent part of dL/dh_{t-1}, for the
simple RNN and the LSTM alike (their gates read h_{t-1} only through h_{t-1} W_hh^T). So

    dL/dh_t = dL/dout_t + probe_grad_{t+1}    (plus dL/dh_n at t = T - 1)

for every step at once, at the cost of a wider input projection. The copy of W_hh is detached:
W_hh's gradient is the vendor's own. The probe gives dL/dh_t only: an LSTM's dL/dc_t and the
W_hh update terms need the fast engine. (The GRU's reset gate multiplies h_{t-1} W_hn^T, so
the probe's gradient is not the recurrent part of dL/dh_{t-1} there: no probe for the GRU.)
"""

from __future__ import annotations

import torch

from bptt.engine import lstm as fast_lstm
from bptt.engine import rnn as fast_rnn
from bptt.engine.activations import Slope
from bptt.engine.recording import LayerRecorders

#: RNN activations the vendor runs, as torch.nn.RNN's nonlinearity.
VENDOR_ACTIVATIONS = ("tanh", "relu")


def run_stack(
    mode: str,
    x: torch.Tensor,
    hx: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    flat_weights: list[torch.Tensor],
    bias: bool,
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
    batch_sizes: torch.Tensor | None = None,
) -> tuple[torch.Tensor, object]:
    """torch.nn's kernel for ``mode`` ("RNN_TANH", "RNN_RELU", "LSTM", "GRU") over a time-major input
    (or packed data with ``batch_sizes``). Returns (output, h_n) or, for the LSTM, (output, (h_n, c_n))."""
    args = (hx, flat_weights, bias, num_layers, dropout, training, bidirectional)
    kernel = {
        "RNN_TANH": torch._VF.rnn_tanh,
        "RNN_RELU": torch._VF.rnn_relu,
        "LSTM": torch._VF.lstm,
        "GRU": torch._VF.gru,
    }[mode]
    result = kernel(x, *args, False) if batch_sizes is None else kernel(x, batch_sizes, *args)
    if mode == "LSTM":
        return result[0], (result[1], result[2])
    return result[0], result[1]


class _ProbeRecord:
    """Assembles dL/dh_t from the three gradients the backward produces, in the order it produces them:
    the outputs' and the final state's first (hooks on them), the probe's last (its hook reports)."""

    def __init__(self, record: LayerRecorders) -> None:
        self.record = record
        self.grad_out: torch.Tensor | None = None
        self.grad_last: torch.Tensor | None = None

    def keep_out(self, grad: torch.Tensor) -> None:
        self.grad_out = grad

    def keep_last(self, grad: torch.Tensor) -> None:
        self.grad_last = grad

    def report(self, probe_grad: torch.Tensor) -> None:
        total = torch.zeros_like(probe_grad) if self.grad_out is None else self.grad_out.clone()
        total[:-1] += probe_grad[1:]
        if self.grad_last is not None:
            total[-1] += self.grad_last
        self.record.hidden.put(0, total)
        self.grad_out = self.grad_last = None


def _probe(
    x: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor, record: LayerRecorders | None
) -> tuple[torch.Tensor, torch.Tensor, _ProbeRecord | None]:
    """The widened input [x, 0] (T, B, I + P), the widened W_ih [W_ih, W_hh (detached)] and the assembler."""
    T, B, _ = x.shape
    watching = record is not None and torch.is_grad_enabled()
    probe = x.new_zeros(T, B, weight_hh.shape[1], requires_grad=watching)
    assembler = None
    if watching:
        assembler = _ProbeRecord(record)
        probe.register_hook(lambda grad: assembler.report(grad))
    return torch.cat([x, probe], dim=-1), torch.cat([weight_ih, weight_hh.detach()], dim=1), assembler


def _watch_outputs(assembler: _ProbeRecord | None, out: torch.Tensor, h_n: torch.Tensor) -> None:
    if assembler is not None:
        if out.requires_grad:
            out.register_hook(assembler.keep_out)
        if h_n.requires_grad:
            h_n.register_hook(assembler.keep_last)


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
) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer and direction on the vendor's kernel with the probe (see the module docstring); an
    activation the vendor lacks runs on the fast engine."""
    if activation not in VENDOR_ACTIVATIONS or x.shape[0] == 0:
        return fast_rnn.rnn_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation, slope, record)
    wide, weight, assembler = _probe(x, weight_ih, weight_hh, record)
    weights = [weight, weight_hh] + ([bias_ih, bias_hh] if bias_ih is not None else [])
    out, h_n = run_stack(
        f"RNN_{activation.upper()}", wide, h0.unsqueeze(0), weights, bias_ih is not None, 1, 0.0, False, False
    )
    h_n = h_n.squeeze(0)
    _watch_outputs(assembler, out, h_n)
    return out, h_n


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
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One LSTM layer and direction on the vendor's kernel with the probe (dL/dh_t recorded; dL/dc_t not)."""
    if x.shape[0] == 0:
        return fast_lstm.lstm_layer(x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr=weight_hr)
    wide, weight, assembler = _probe(x, weight_ih, weight_hh, record)
    weights = [weight, weight_hh] + ([bias_ih, bias_hh] if bias_ih is not None else [])
    weights += [weight_hr] if weight_hr is not None else []
    out, (h_n, c_n) = run_stack(
        "LSTM", wide, (state[0].unsqueeze(0), state[1].unsqueeze(0)), weights, bias_ih is not None, 1, 0.0, False, False
    )
    h_n, c_n = h_n.squeeze(0), c_n.squeeze(0)
    _watch_outputs(assembler, out, h_n)
    return out, (h_n, c_n)
