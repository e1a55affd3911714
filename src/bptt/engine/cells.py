r"""One step of each cell, as a function of its two projections.

Every recurrent cell here reads the input and the previous hidden state only
through two affine maps,

    p_t = x_t W_ih^T + b_ih     (the input projection, (B, G*H); all T steps in one product)
    u_t = h_{t-1} W_hh^T + b_hh (the recurrent projection, (B, G*H); one product per step)

with G gate blocks (1 RNN; 4 LSTM in order i, f, g, o; 3 GRU in order r, z, n),
and the rest of the step is elementwise. The functions below are that
elementwise rest; ``step`` puts the projections around them. The reference
loop runs them step by step, and the diagnostics use them to differentiate one
step (the Jacobian chain) or to see p_t and u_t (the weight-update terms).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bptt.engine.activations import Activation, Slope

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def rnn_cell(p: torch.Tensor, u: torch.Tensor, activation: Activation, slope: Slope = None) -> torch.Tensor:
    r"""Elman: h_t = act(p_t + u_t)."""
    return activation.apply(p + u, slope)


def lstm_cell(
    p: torch.Tensor, u: torch.Tensor, c: torch.Tensor, weight_hr: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""torch.nn.LSTM's cell, gates in order i, f, g, o, from p_t + u_t = [a_i, a_f, a_g, a_o]:

    i, f, o = sigmoid(a_i, a_f, a_o),  g = tanh(a_g),
    c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t),

    and with a projection (``proj_size``), h_t = (o * tanh(c_t)) W_hr^T. Returns (h_t, c_t).
    """
    a_i, a_f, a_g, a_o = (p + u).chunk(4, dim=-1)
    c = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
    h = torch.sigmoid(a_o) * torch.tanh(c)
    return (h if weight_hr is None else F.linear(h, weight_hr)), c


def gru_cell(p: torch.Tensor, u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    r"""torch.nn.GRU's cell, gates in order r, z, n, with p_t = [p_r, p_z, p_n] and u_t = [u_r, u_z, u_n]:

    r = sigmoid(p_r + u_r),  z = sigmoid(p_z + u_z),  n = tanh(p_n + r * u_n),
    h_t = (1 - z) * n + z * h_{t-1}.

    The reset gate multiplies the whole recurrent candidate term u_n = h W_hn^T + b_hn.
    """
    p_r, p_z, p_n = p.chunk(3, dim=-1)
    u_r, u_z, u_n = u.chunk(3, dim=-1)
    r = torch.sigmoid(p_r + u_r)
    z = torch.sigmoid(p_z + u_z)
    n = torch.tanh(p_n + r * u_n)
    return (1 - z) * n + z * h


def step(
    mode: str,
    x: torch.Tensor,
    state: State,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    activation: Activation | None = None,
    slope: Slope = None,
    weight_hr: torch.Tensor | None = None,
) -> State:
    """One whole step of cell ``mode`` ("RNN", "LSTM", "GRU") from x_t (B, I) and the state
    (h_{t-1}, or (h_{t-1}, c_{t-1}) for an LSTM, with its projection ``weight_hr``) to the next state."""
    h = state[0] if mode == "LSTM" else state
    p = F.linear(x, weight_ih, bias_ih)
    u = F.linear(h, weight_hh, bias_hh)
    if mode == "RNN":
        assert activation is not None, "the RNN cell needs its activation"
        return rnn_cell(p, u, activation, slope)
    if mode == "LSTM":
        return lstm_cell(p, u, state[1], weight_hr)
    return gru_cell(p, u, h)
