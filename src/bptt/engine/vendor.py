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
W_hh's gradient is the vendor's own. (The GRU's reset gate multiplies h_{t-1} W_hn^T, so the
probe's gradient is not the recurrent part of dL/dh_{t-1} there: no probe for the GRU.)

An LSTM's dL/dc_t follows from dL/dh_t once the backward has it (``cell_grads``):

    dL/dc_t = dL/dm_t * o_t * (1 - tanh^2 c_t) + dL/dc_{t+1} * f_{t+1}    (plus dL/dc_n at t = T - 1)

with dL/dm_t = dL/dh_t (dL/dh_t W_hr with a projection). The gates come back from the outputs in
two large products (h_{t-1} is output t - 1), c_t from a forward scan of c_t = f_t c_{t-1} + i_t g_t,
and dL/dc_t from the backward scan above: both first-order linear recurrences, run step by step on
a CPU and as a parallel scan (log2 T rounds) on a GPU (``linear_recurrence``). The W_hh update terms
still need the fast engine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bptt.engine import lstm as fast_lstm
from bptt.engine import reference
from bptt.engine import rnn as fast_rnn
from bptt.engine.activations import Slope
from bptt.engine.recording import LayerRecorders
from bptt.engine.reference import StepWatch

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
) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
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


def linear_recurrence(
    a: torch.Tensor, b: torch.Tensor, initial: torch.Tensor | None = None, parallel: bool | None = None
) -> torch.Tensor:
    """y_t = a_t * y_{t-1} + b_t over dim 0 (t = 0 .. T-1), from y_{-1} = ``initial`` (0 if None).

    ``parallel`` (default: on a GPU) runs a Hillis-Steele scan: round r composes each step's affine map
    with the one 2^r steps before, so log2 T rounds of whole-tensor operations replace T small ones.
    Otherwise step by step.
    """
    y = b.clone()
    if initial is not None:
        y[0].addcmul_(a[0], initial)
    T = y.shape[0]
    if not (y.is_cuda if parallel is None else parallel):
        for t in range(1, T):
            y[t].addcmul_(a[t], y[t - 1])
        return y
    a = a.clone()
    step = 1
    while step < T:  # y_t = a y_{t-step} + y: the maps over (t - 2 step, t]
        y = torch.cat([y[:step], torch.addcmul(y[step:], a[step:], y[:-step])])
        a = torch.cat([a[:step], a[step:] * a[:-step]])
        step *= 2
    return y


def cell_grads(
    grad_h: torch.Tensor,
    grad_c_last: torch.Tensor | None,
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    out: torch.Tensor,
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None],
) -> torch.Tensor:
    """dL/dc_t (T, B, H) of an LSTM from its total dL/dh_t (T, B, P), its inputs and outputs (see the
    module docstring); ``weights`` = (W_ih, W_hh, b_ih, b_hh, W_hr)."""
    weight_ih, weight_hh, bias_ih, bias_hh, weight_hr = weights
    h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])  # (T, B, P)
    pre = F.linear(x, weight_ih, bias_ih) + F.linear(h_prev, weight_hh, bias_hh)  # (T, B, 4H)
    i, f, g, o = pre.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    cells = linear_recurrence(f, i * g, c0)
    tanh_c = torch.tanh(cells)
    grad_m = grad_h if weight_hr is None else grad_h @ weight_hr  # (T, B, H)
    direct = grad_m * o * (1 - tanh_c * tanh_c)  # the part through h_t
    if grad_c_last is not None:
        direct[-1] += grad_c_last
    # Backward in time: dc_t = f_{t+1} dc_{t+1} + direct_t, as a forward recurrence over the flipped steps.
    forget_next = torch.cat([f[:1], f[1:].flip(0)])
    return linear_recurrence(forget_next, direct.flip(0)).flip(0)


class _ProbeRecord:
    """Assembles dL/dh_t from the gradients the backward produces, in the order it produces them: the
    outputs' and the final states' first (hooks on them), the probe's last (its hook reports). For an
    LSTM (``lstm``: its inputs, outputs and weights) it derives dL/dc_t too, when the record asks for it."""

    def __init__(self, record: LayerRecorders, lstm: tuple | None = None) -> None:
        self.record = record
        self.lstm = lstm
        self.grad_out: torch.Tensor | None = None
        self.grad_last: torch.Tensor | None = None
        self.grad_cell_last: torch.Tensor | None = None

    def keep_out(self, grad: torch.Tensor) -> None:
        self.grad_out = grad

    def keep_last(self, grad: torch.Tensor) -> None:
        self.grad_last = grad

    def keep_cell_last(self, grad: torch.Tensor) -> None:
        self.grad_cell_last = grad

    def report(self, probe_grad: torch.Tensor) -> None:
        total = torch.zeros_like(probe_grad) if self.grad_out is None else self.grad_out.clone()
        total[:-1] += probe_grad[1:]
        if self.grad_last is not None:
            total[-1] += self.grad_last
        self.record.hidden.put(0, total)
        open_record = self.record.hidden.active()
        if self.lstm is not None and self.record.cell is not None and open_record is not None and open_record.cells:
            x, h0, c0, out, weights = self.lstm
            with torch.no_grad():
                self.record.cell.put(0, cell_grads(total, self.grad_cell_last, x, h0, c0, out, weights))
        self.grad_out = self.grad_last = self.grad_cell_last = None


def _probe(
    x: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    record: LayerRecorders | None,
    lstm: tuple | None = None,
) -> tuple[torch.Tensor, torch.Tensor, _ProbeRecord | None]:
    """The widened input [x, 0] (T, B, I + P), the widened W_ih [W_ih, W_hh (detached)] and the assembler."""
    T, B, _ = x.shape
    watching = record is not None and torch.is_grad_enabled()
    probe = x.new_zeros(T, B, weight_hh.shape[1], requires_grad=watching)
    assembler = None
    if watching:
        assembler = _ProbeRecord(record, lstm)
        probe.register_hook(lambda grad: assembler.report(grad))
    return torch.cat([x, probe], dim=-1), torch.cat([weight_ih, weight_hh.detach()], dim=1), assembler


def _watch_outputs(
    assembler: _ProbeRecord | None, out: torch.Tensor, h_n: torch.Tensor, c_n: torch.Tensor | None = None
) -> None:
    if assembler is not None:
        if out.requires_grad:
            out.register_hook(assembler.keep_out)
        if h_n.requires_grad:
            h_n.register_hook(assembler.keep_last)
        if c_n is not None and c_n.requires_grad:
            c_n.register_hook(assembler.keep_cell_last)


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
    """One layer and direction on the vendor's kernel with the probe (see the module docstring); an
    activation the vendor lacks runs on the fast engine, a ``watch`` on the reference loop."""
    if watch is not None:
        return reference.rnn_layer(
            x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation, slope, record, watch=watch
        )
    if activation not in VENDOR_ACTIVATIONS or x.shape[0] == 0:
        return fast_rnn.rnn_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation, slope, record)
    wide, weight, assembler = _probe(x, weight_ih, weight_hh, record)
    weights = [weight, weight_hh] + ([bias_ih, bias_hh] if bias_ih is not None else [])
    out, final = run_stack(
        f"RNN_{activation.upper()}", wide, h0.unsqueeze(0), weights, bias_ih is not None, 1, 0.0, False, False
    )
    assert isinstance(final, torch.Tensor)  # an RNN's final state is h_n alone
    h_n = final.squeeze(0)
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
    watch: StepWatch | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One LSTM layer and direction on the vendor's kernel with the probe (dL/dh_t, and dL/dc_t when the
    record asks for it); a ``watch`` runs the reference loop."""
    if watch is not None:
        return reference.lstm_layer(
            x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr=weight_hr, watch=watch
        )
    if x.shape[0] == 0:
        return fast_lstm.lstm_layer(x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr=weight_hr)
    detached = tuple(None if w is None else w.detach() for w in (weight_ih, weight_hh, bias_ih, bias_hh, weight_hr))
    lstm = (x.detach(), state[0].detach(), state[1].detach(), None, detached)
    wide, weight, assembler = _probe(x, weight_ih, weight_hh, record, lstm)
    weights = [weight, weight_hh] + ([bias_ih, bias_hh] if bias_ih is not None else [])
    weights += [weight_hr] if weight_hr is not None else []
    out, final = run_stack(
        "LSTM", wide, (state[0].unsqueeze(0), state[1].unsqueeze(0)), weights, bias_ih is not None, 1, 0.0, False, False
    )
    assert isinstance(final, tuple)  # an LSTM's is (h_n, c_n)
    h_n, c_n = final[0].squeeze(0), final[1].squeeze(0)
    if assembler is not None:
        assembler.lstm = (*lstm[:3], out.detach(), detached)
    _watch_outputs(assembler, out, h_n, c_n)
    return out, (h_n, c_n)
