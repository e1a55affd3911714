"""The reference path: each recurrent layer as a plain autograd loop over time.

Tensors are time-major, (T, B, features). The input projection of all steps
is one matrix product; the loop does only the recurrent product and the
elementwise cell. The loop iterates over ``unbind(0)``: indexing ``x[t]``
inside the loop makes backward O(T^2), since each step's gradient allocates a
full (T, B, H) zero tensor.

These functions are what the fast engine is tested against. ``on_hidden`` and
``on_cell``, when given, are called with each step's state tensor (and its
layer-local step index) so a recorder can attach gradient hooks.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from bptt.modules.activations import ACTIVATIONS

StepHook = Callable[[int, torch.Tensor], None] | None


def _project(x: torch.Tensor, weight_ih: torch.Tensor, bias_ih: torch.Tensor | None) -> torch.Tensor:
    return F.linear(x, weight_ih, bias_ih)  # (T, B, G*H)


def rnn_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    activation: str = "tanh",
    slope: torch.Tensor | float | None = None,
    on_hidden: StepHook = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh). Returns (output (T,B,H), h_T)."""
    act = ACTIVATIONS.get(activation).apply
    projected = _project(x, weight_ih, bias_ih)
    h = h0
    outputs = []
    for t, p_t in enumerate(projected.unbind(0)):
        h = act(p_t + F.linear(h, weight_hh, bias_hh), slope)
        if on_hidden is not None:
            on_hidden(t, h)
        outputs.append(h)
    return torch.stack(outputs), h


def lstm_layer(
    x: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    on_hidden: StepHook = None,
    on_cell: StepHook = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """torch.nn.LSTM's cell, gates in order i, f, g, o:

    i, f, o = sigmoid(.), g = tanh(.), with (.) = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh;
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t).
    """
    projected = _project(x, weight_ih, bias_ih)
    h, c = state
    outputs = []
    for t, p_t in enumerate(projected.unbind(0)):
        gates = p_t + F.linear(h, weight_hh, bias_hh)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if on_cell is not None:
            on_cell(t, c)
        if on_hidden is not None:
            on_hidden(t, h)
        outputs.append(h)
    return torch.stack(outputs), (h, c)


def gru_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    on_hidden: StepHook = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.nn.GRU's cell, gates in order r, z, n:

    r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr), z likewise,
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),  h_t = (1 - z) * n + z * h_{t-1}.
    """
    projected = _project(x, weight_ih, bias_ih)
    h = h0
    outputs = []
    for t, p_t in enumerate(projected.unbind(0)):
        x_r, x_z, x_n = p_t.chunk(3, dim=-1)
        h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        if on_hidden is not None:
            on_hidden(t, h)
        outputs.append(h)
    return torch.stack(outputs), h
