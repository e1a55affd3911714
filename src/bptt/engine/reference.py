"""The reference engine: each recurrent layer as a plain autograd loop over time.

Tensors are time-major, (T, B, features). The input projection of all steps
is one matrix product; the loop does only the recurrent product and the cell
(``bptt.engine.cells``). The loop iterates over ``unbind(0)``: indexing
``x[t]`` inside the loop makes backward O(T^2), since each step's gradient
allocates a full (T, B, H) zero tensor.

These functions are what the fast engine is tested against. A ``watch``, when
given, sees every tensor the loop makes, while it makes them, so it can keep
them or attach gradient hooks: ``watch.input(x, projected)`` once, then
``watch.step(t, h_prev, recurrent, h, c)`` at every step with h_{t-1}, the
recurrent projection u_t = h_{t-1} W_hh^T + b_hh and the new state (c: the
LSTM cell state, else None). Recording (``RecordingWatch``) and the
diagnostics' step views are watches.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

from bptt.engine.activations import ACTIVATIONS, Slope
from bptt.engine.cells import gru_cell, lstm_cell, rnn_cell
from bptt.engine.recording import LayerRecorders, RecordingWatch


class StepWatch(Protocol):
    """What the reference loop shows an observer (see the module docstring)."""

    def input(self, x: torch.Tensor, projected: torch.Tensor) -> None: ...

    def step(
        self, t: int, h_prev: torch.Tensor, recurrent: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None
    ) -> None: ...


class Watches:
    """Several watches as one, called in order."""

    def __init__(self, *watches: StepWatch) -> None:
        self.watches = watches

    def input(self, x: torch.Tensor, projected: torch.Tensor) -> None:
        for watch in self.watches:
            watch.input(x, projected)

    def step(
        self, t: int, h_prev: torch.Tensor, recurrent: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None
    ) -> None:
        for watch in self.watches:
            watch.step(t, h_prev, recurrent, h, c)


def _watch(watch: StepWatch | None, record: LayerRecorders | None) -> StepWatch | None:
    if record is None:
        return watch
    recording = RecordingWatch(record)
    return recording if watch is None else Watches(recording, watch)


def _project(
    x: torch.Tensor, weight_ih: torch.Tensor, bias_ih: torch.Tensor | None, watch: StepWatch | None
) -> torch.Tensor:
    projected = F.linear(x, weight_ih, bias_ih)  # (T, B, G*H)
    if watch is not None:
        watch.input(x, projected)
    return projected


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
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh). Returns (output (T,B,H), h_T)."""
    act = ACTIVATIONS.get(activation)
    watch = _watch(watch, record)
    projected = _project(x, weight_ih, bias_ih, watch)
    h = h0
    outputs = []
    for t, p_t in enumerate(projected.unbind(0)):
        u_t = F.linear(h, weight_hh, bias_hh)
        h_t = rnn_cell(p_t, u_t, act, slope)
        if watch is not None:
            watch.step(t, h, u_t, h_t)
        outputs.append(h_t)
        h = h_t
    return torch.stack(outputs), h


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
    """torch.nn.LSTM's cell (``cells.lstm_cell``) over all steps, with the projection ``weight_hr``
    (P, H) when given. Returns (output (T,B,P or H), (h_T, c_T))."""
    watch = _watch(watch, record)
    projected = _project(x, weight_ih, bias_ih, watch)
    h, c = state
    outputs = []
    for t, p_t in enumerate(projected.unbind(0)):
        u_t = F.linear(h, weight_hh, bias_hh)
        h_t, c = lstm_cell(p_t, u_t, c, weight_hr)
        if watch is not None:
            watch.step(t, h, u_t, h_t, c)
        outputs.append(h_t)
        h = h_t
    return torch.stack(outputs), (h, c)


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
    """torch.nn.GRU's cell (``cells.gru_cell``) over all steps. Returns (output (T,B,H), h_T)."""
    watch = _watch(watch, record)
    projected = _project(x, weight_ih, bias_ih, watch)
    h = h0
    outputs = []
    for t, p_t in enumerate(projected.unbind(0)):
        u_t = F.linear(h, weight_hh, bias_hh)
        h_t = gru_cell(p_t, u_t, h)
        if watch is not None:
            watch.step(t, h, u_t, h_t)
        outputs.append(h_t)
        h = h_t
    return torch.stack(outputs), h
