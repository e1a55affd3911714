"""Per-step gradient recording: the batch-mean norm of dL/dh_t at every step.

For each layer l and step t the recorder stores

    hidden[l, t] = (1/B) sum_b || dL/dh_t[b, :] ||_2

where dL/dh_t is the *total* gradient reaching h_t: from the output at step t
(the layer above, or the loss) and from step t+1 through W_hh. For an LSTM,
``cell[l, t]`` is the same quantity for the cell state c_t (the gradient from
h_t through o_t * tanh(c_t) plus the one from c_{t+1} through f_{t+1}).

The fast engine computes these norms inside its backward loop from buffers it
already holds; the reference engine attaches a tensor hook to every h_t and
c_t. Both read the active record at backward time, so it is enough for the
``with`` block to enclose ``loss.backward()``.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

_ATTRIBUTE = "_gradient_record"


@dataclass
class GradientRecord:
    """What one ``record_gradients`` block saw.

    hidden: (num_layers, T) batch-mean ||dL/dh_t||_2, or None if no backward
        ran through the layer inside the block.
    cell: (num_layers, T) batch-mean ||dL/dc_t||_2 for an LSTM, else None.

    When several backward passes run inside one block, each step keeps the
    value of the last pass that reached it.
    """

    num_layers: int
    hidden: torch.Tensor | None = None
    cell: torch.Tensor | None = None

    def _row(self, field: str, layer: int, seq_len: int, like: torch.Tensor) -> torch.Tensor:
        table = getattr(self, field)
        if table is None or table.shape[1] != seq_len or table.device != like.device:
            table = torch.zeros(self.num_layers, seq_len, dtype=like.dtype, device=like.device)
            setattr(self, field, table)
        return table[layer]


class StepRecorder:
    """The ``on_hidden`` / ``on_cell`` callback of one layer of one module.

    Called as ``recorder(t, state)`` by the reference loop, it hooks ``state``
    (h_t or c_t) so its gradient norm lands in the module's active record.
    The fast engine does not call it; it passes whole chunks of gradients to
    ``put`` from its backward loop.

    offset: index of this call's first step in the full sequence (non-zero
        for the later chunks of truncated BPTT); seq_len: the full length.
    """

    __slots__ = ("module", "layer", "offset", "seq_len", "field")

    def __init__(self, module: nn.Module, layer: int, offset: int, seq_len: int, field: str) -> None:
        self.module = module
        self.layer = layer
        self.offset = offset
        self.seq_len = seq_len
        self.field = field

    def active(self) -> GradientRecord | None:
        return getattr(self.module, _ATTRIBUTE, None)

    def put(self, start: int, grads: torch.Tensor) -> None:
        """Record steps start .. start + K - 1 from their gradients ``grads`` (K, B, H)."""
        record = self.active()
        if record is None:
            return
        row = record._row(self.field, self.layer, self.seq_len, grads)
        first = self.offset + start
        # In float64: squaring a float32 gradient below ~1e-19 underflows, and vanishing
        # gradients are exactly the values that go that low.
        norms = torch.linalg.vector_norm(grads, dim=-1, dtype=torch.float64).mean(dim=-1)  # (K,)
        row[first : first + grads.shape[0]] = norms.to(row.dtype)

    def __call__(self, t: int, state: torch.Tensor) -> None:
        if state.requires_grad:
            state.register_hook(lambda grad: self.put(t, grad.unsqueeze(0)))


def find_recurrent(model: nn.Module) -> nn.Module:
    """The first bptt RNN/LSTM/GRU in ``model.modules()`` (``model`` itself if it is one)."""
    from bptt.modules.recurrent import find_recurrent as first_recurrent

    found = first_recurrent(model)
    if found is not None:
        return found
    raise TypeError(f"record_gradients needs a bptt RNN, LSTM or GRU inside the model; found none in {type(model).__name__}")


@contextmanager
def record_gradients(model: nn.Module) -> Iterator[GradientRecord]:
    """Record the batch-mean norm of dL/dh_t (and dL/dc_t for an LSTM) at every step.

    ``model`` is a bptt RNN/LSTM/GRU or any module containing one; with several,
    the first in ``model.modules()`` is recorded. Usage::

        with bptt.record_gradients(model) as rec:
            loss.backward()
        rec.hidden  # (num_layers, T): mean_b ||dL/dh_t[b]||_2

    The forward may run inside or before the block; the backward must run inside.
    Values are as computed (NaN/inf gradients give NaN/inf norms). Costs nothing
    outside the block.
    """
    module = find_recurrent(model)
    previous = getattr(module, _ATTRIBUTE, None)
    record = GradientRecord(num_layers=module.num_layers)
    object.__setattr__(module, _ATTRIBUTE, record)
    try:
        yield record
    finally:
        object.__setattr__(module, _ATTRIBUTE, previous)
