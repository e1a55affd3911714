"""Per-step gradient recording: the batch-mean norm of dL/dh_t at every step.

For each layer l and step t the recorder stores

    hidden[l, t] = (1/B) sum_b || dL/dh_t[b, :] ||_2

where dL/dh_t is the *total* gradient reaching h_t: from the output at step t
(the layer above, or the loss) and from step t+1 through W_hh. For an LSTM,
``cell[l, t]`` is the same quantity for the cell state c_t (the gradient from
h_t through o_t * tanh(c_t) plus the one from c_{t+1} through f_{t+1}).

The fast engine computes these norms inside its backward loop from buffers it
already holds; the reference engine attaches a tensor hook to every h_t and
c_t (``RecordingWatch``). Both read the active record at backward time, so it
is enough for the ``with`` block of ``bptt.record_gradients`` (which lives with
the layers, in ``bptt.modules``) to enclose ``loss.backward()``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: The attribute of a layer that holds its active ``GradientRecord`` while a block records.
RECORD_ATTRIBUTE = "_gradient_record"


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
    """Where one layer of one module reports the gradients of h_t (or c_t) in its backward.

    The fast engine passes whole chunks of gradients to ``put`` from its backward
    loop; on the reference loop, ``RecordingWatch`` hooks each h_t and c_t so that
    their gradients reach ``put`` one step at a time.

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
        return getattr(self.module, RECORD_ATTRIBUTE, None)

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

    def hook(self, t: int, state: torch.Tensor) -> None:
        """Have the gradient of ``state``, step t of this call, recorded when the backward reaches it."""
        if state.requires_grad:
            state.register_hook(lambda grad: self.put(t, grad.unsqueeze(0)))


@dataclass(frozen=True)
class LayerRecorders:
    """The recorders of one layer's call: h_t always, c_t for an LSTM."""

    hidden: StepRecorder
    cell: StepRecorder | None = None

    def active(self) -> bool:
        """Whether a record is open now (the backward reads this to skip the norms when none is)."""
        return self.hidden.active() is not None


class RecordingWatch:
    """The reference loop's side of recording: hooks every h_t (and c_t) of one layer's call."""

    def __init__(self, recorders: LayerRecorders) -> None:
        self.recorders = recorders

    def input(self, x: torch.Tensor, projected: torch.Tensor) -> None:
        pass

    def step(self, t: int, h_prev: torch.Tensor, recurrent: torch.Tensor, h: torch.Tensor,
             c: torch.Tensor | None = None) -> None:
        if c is not None and self.recorders.cell is not None:
            self.recorders.cell.hook(t, c)
        self.recorders.hidden.hook(t, h)
