r"""The layer-normalised LSTM in Haste's formulation (Ba, Kiros & Hinton 2016; lmnt-com/haste).

Tensors are time-major, (T, B, features). Layer normalisation (over the 4H gate pre-activations,
without a shift) is applied to the input and the recurrent projections separately, and (with a
shift) to the cell state before its tanh:

    a_t = LN(x_t W_ih^T; g_x) + LN(h_{t-1} W_hh^T; g_h) + b,     gates i, f, g, o of a_t,
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g),
    h_t = sigmoid(o) * tanh(LN(c_t; g_c, b_c)),

LN(v; g, b) = g * (v - mean(v)) / sqrt(var(v) + 1e-5) + b over the last axis. The input half
is normalised for all steps at once. ``reference_layer`` is the autograd loop (a ``watch`` sees
``recurrent`` = h_{t-1} W_hh^T, before its normalisation); it is this cell's only engine: per
step it is one matrix product and a handful of row-wise reductions, which autograd runs about
as fast as a hand-written loop would in Python.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bptt.engine.recording import LayerRecorders, RecordingWatch

EPSILON = 1e-5
State = tuple[torch.Tensor, torch.Tensor]


def _norm(v: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    return F.layer_norm(v, v.shape[-1:], weight, bias, EPSILON)


def lnlstm_cell(
    p: torch.Tensor,
    state: State,
    weight_hh: torch.Tensor,
    ln_hh_weight: torch.Tensor,
    ln_cell_weight: torch.Tensor,
    ln_cell_bias: torch.Tensor,
) -> tuple[State, torch.Tensor]:
    """One step from the normalised input half p_t = LN(x_t W_ih^T; g_x) + b and (h, c):
    ((h_t, c_t), the recurrent projection h_{t-1} W_hh^T)."""
    h, c = state
    recurrent = F.linear(h, weight_hh)
    a_i, a_f, a_g, a_o = (p + _norm(recurrent, ln_hh_weight)).chunk(4, dim=-1)
    c = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
    h = torch.sigmoid(a_o) * torch.tanh(_norm(c, ln_cell_weight, ln_cell_bias))
    return (h, c), recurrent


def input_half(
    x: torch.Tensor, weight_ih: torch.Tensor, ln_ih_weight: torch.Tensor, bias: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x W_ih^T, LN(x W_ih^T; g_x) + b) for every step at once."""
    projected = F.linear(x, weight_ih)
    normalised = _norm(projected, ln_ih_weight)
    return projected, normalised if bias is None else normalised + bias


def reference_layer(
    x: torch.Tensor,
    state: State,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias: torch.Tensor | None,
    ln_ih_weight: torch.Tensor,
    ln_hh_weight: torch.Tensor,
    ln_cell_weight: torch.Tensor,
    ln_cell_bias: torch.Tensor,
    record: LayerRecorders | None = None,
    *,
    watch=None,
) -> tuple[torch.Tensor, State]:
    """The autograd loop. Returns (output h (T, B, H), (h_T, c_T))."""
    if record is not None:
        recording = RecordingWatch(record)
        watch = recording if watch is None else _Both(recording, watch)
    projected, inputs = input_half(x, weight_ih, ln_ih_weight, bias)
    if watch is not None:
        watch.input(x, projected)
    outputs = []
    for t, p_t in enumerate(inputs.unbind(0)):
        previous = state[0]
        state, recurrent = lnlstm_cell(p_t, state, weight_hh, ln_hh_weight, ln_cell_weight, ln_cell_bias)
        if watch is not None:
            watch.step(t, previous, recurrent, state[0], state[1])
        outputs.append(state[0])
    return (torch.stack(outputs) if outputs else x.new_empty(0, *state[0].shape)), state


class _Both:
    def __init__(self, *watches) -> None:
        self.watches = watches

    def input(self, x: torch.Tensor, projected: torch.Tensor) -> None:
        for watch in self.watches:
            watch.input(x, projected)

    def step(self, t, h_prev, recurrent, h, c=None) -> None:
        for watch in self.watches:
            watch.step(t, h_prev, recurrent, h, c)
