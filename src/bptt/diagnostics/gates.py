"""What a gated cell's own gate keeps: the product of its trained keep gate over the last k steps.

An LSTM carries its memory in the cell state, c_t = f_t * c_{t-1} + i_t * g_t,
so along the cell path dc_{T-1}/dc_{T-1-k} = prod_{j<k} f_{T-1-j}, elementwise.
A GRU's h_t = (1 - z_t) * n_t + z_t * h_{t-1} keeps z_t of its old state per step
(torch's sign convention). For sequence b of length L_b and unit i,

    keep[k, b, i] = prod_{j=0}^{k-1} gate_{L_b - 1 - j}[b, i]     (keep[0] = 1)

is how much of the unit's state k steps back survives to the last step along
that path alone. ``GateKeep.mean`` is its mean over units and sequences,
``GateKeep.best`` the mean over sequences of the largest unit's. These are the
gates the trained model computes on the fixed batch, not the value a bias
alone would give (sigmoid(b_f)^k).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bptt.diagnostics.common import recurrent_of
from bptt.modules.base import RecurrentBase

#: The gate that keeps the old state, per cell: its block in the fused weights.
KEEP_GATES = {"LSTM": ("forget", 1), "GRU": ("update", 1)}


@dataclass(frozen=True, eq=False)
class GateKeep:
    """The keep gate's product by lag (see the module docstring).

    gate: "forget" (LSTM) or "update" (GRU). mean, best: (T,) by lag k.
    """

    gate: str
    mean: torch.Tensor
    best: torch.Tensor

    def at(self, lag: int) -> tuple[float, float]:
        """(mean, best) at ``lag`` (at most T - 1)."""
        k = max(0, min(lag, len(self.mean) - 1))
        return float(self.mean[k]), float(self.best[k])

    def to_dict(self) -> dict:
        return {"gate": self.gate, "mean": self.mean.tolist(), "best": self.best.tolist()}


@torch.no_grad()
def gate_keep(
    recurrent: RecurrentBase, inputs: torch.Tensor, layer: int = 0, lengths: torch.Tensor | None = None
) -> GateKeep | None:
    """The keep gate's product over the last k steps of layer ``layer`` (None for a simple RNN).

    Args:
        recurrent: a bptt LSTM or GRU (or a module holding one).
        inputs: (T, B, I) the layer's input sequence (``jacobian.layer_inputs``), padded at the end.
        lengths: (B,) each sequence's true length (default: all T).
    """
    recurrent = recurrent_of(recurrent)
    if recurrent.MODE not in KEEP_GATES or recurrent.output_size != recurrent.hidden_size:
        return None
    name, block = KEEP_GATES[recurrent.MODE]
    weight_ih, weight_hh, bias_ih, bias_hh = (
        None if p is None else p.detach().double() for p in recurrent.layer_parameters(layer)
    )
    assert weight_ih is not None and weight_hh is not None  # every layer has its weights
    x = inputs.detach().double()
    T, B, _ = x.shape
    H = recurrent.hidden_size
    h = x.new_zeros(B, H)
    c = x.new_zeros(B, H)
    gates = []
    for x_t in x.unbind(0):
        p, u = F.linear(x_t, weight_ih, bias_ih), F.linear(h, weight_hh, bias_hh)
        if recurrent.MODE == "LSTM":
            i, f, g, o = (p + u).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        else:
            p_r, p_z, p_n = p.chunk(3, dim=-1)
            u_r, u_z, u_n = u.chunk(3, dim=-1)
            z = torch.sigmoid(p_z + u_z)
            h = (1 - z) * torch.tanh(p_n + torch.sigmoid(p_r + u_r) * u_n) + z * h
        gates.append(torch.sigmoid((p + u).chunk(recurrent.GATES, dim=-1)[block]))
    gate = torch.stack(gates)  # (T, B, H)
    lengths = torch.full((B,), T) if lengths is None else lengths.to("cpu").long()
    lags = torch.arange(T).unsqueeze(1)  # (T, 1)
    steps = lengths.unsqueeze(0) - 1 - lags  # (T, B): the step at lag k of each sequence
    real = steps >= 0
    by_lag = gate.cpu().gather(0, steps.clamp(min=0).unsqueeze(-1).expand(T, B, H))
    by_lag = torch.where(real.unsqueeze(-1), by_lag, torch.ones(()).double())
    keep = torch.cat([torch.ones(1, B, H, dtype=torch.float64), by_lag.cumprod(0)[:-1]])  # (T, B, H)
    counts = real.sum(1).clamp(min=1).double()  # the sequences with a step at lag k
    mean = (keep.mean(-1) * real).sum(1) / counts
    best = (keep.amax(-1) * real).sum(1) / counts
    return GateKeep(name, mean, best)
