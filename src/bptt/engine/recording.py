"""Per-step gradient recording: the norm of dL/dh_t at every step, for every sequence.

For each layer l, direction d and step t the recorder keeps, for every sequence b,

    ||dL/dh_t[b, :]||_2

where dL/dh_t is the *total* gradient reaching h_t: from the output at step t
(the layer above, or the loss) and from the next step through W_hh. For an
LSTM the same is kept for the cell state c_t (the gradient from h_t through
o_t * tanh(c_t) plus the one from c_{t+1} through f_{t+1}). A ``GradientRecord``
turns them into batch means by step t and by lag.

Steps are always the input's own steps t = 0 .. T-1, in both directions. With
true lengths (a packed batch), step t of sequence b is real for t < lengths[b];
means count only real steps. The forward direction's lag is k = lengths[b] - 1 - t
(steps back from its last step, where a sequence-to-one loss reads it); the
reverse direction runs from each sequence's last step to t = 0, so its lag is
k = t.

The fast engine computes the norms inside its backward loop from buffers it
already holds; the reference engine attaches a tensor hook to every h_t and
c_t (``RecordingWatch``). Both read the active record at backward time, so it
is enough for the ``with`` block of ``bptt.record_gradients`` (which lives with
the layers, in ``bptt.modules``) to enclose ``loss.backward()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

#: The attribute of a layer that holds its active ``GradientRecord`` while a block records.
RECORD_ATTRIBUTE = "_gradient_record"


def _step_mask(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(T, B) True at the real steps t < lengths[b]."""
    return torch.arange(seq_len, device=lengths.device).unsqueeze(1) < lengths.unsqueeze(0)


@dataclass
class GradientRecord:
    """What one ``record_gradients`` block saw.

    hidden: (num_layers, T) batch-mean ||dL/dh_t||_2 of the forward direction by step t
        (the mean over the sequences whose step t is real), or None if no backward ran
        through the layer inside the block.
    hidden_reverse: the same for the reverse direction of a bidirectional layer, else None.
    cell, cell_reverse: the same for an LSTM's cell state c_t, else None.
    lengths: (B,) the true lengths of the recorded batch (in the layer's internal order:
        longest first for a packed batch), or None when every sequence has T steps.

    names: what the layer's state holds, e.g. ("h",), ("h", "c") for an LSTM, ("y", "z") for coRNN:
        the first part is recorded as ``hidden``, a second as ``cell`` (``series`` takes either name).

    ``per_sample`` gives the norms of every sequence and ``by_lag`` the means by lag.
    ``cells`` says whether an LSTM's dL/dc_t is wanted (the probe engine records dL/dh_t only).
    With ``updates``, the backward also records each step's term of dL/dW_hh,
    ||delta_t^T h_{t-1}||_F (``update_terms``; forward direction), for the share of the
    recurrent weight update that each step contributes.
    Norms are computed and kept in float64 and reported in the gradients' dtype
    (``dtype``). When several backward passes run inside one block, each step keeps the
    value of the last pass that reached it.
    """

    num_layers: int
    num_directions: int = 1
    updates: bool = False
    cells: bool = True
    names: tuple[str, ...] = ("h", "c")
    lengths: torch.Tensor | None = None
    dtype: torch.dtype = torch.float64
    tables: dict[str, torch.Tensor] = field(default_factory=dict)  # field -> (layers, directions, T, B)

    def table(
        self, name: str, seq_len: int, batch: int, lengths: torch.Tensor | None, like: torch.Tensor
    ) -> torch.Tensor:
        """The (layers, directions, T, B) table of ``name`` ("hidden" or "cell"), fresh when the shape changed."""
        table = self.tables.get(name)
        shape = (self.num_layers, self.num_directions, seq_len, batch)
        if table is None or tuple(table.shape) != shape or table.device != like.device:
            table = torch.zeros(shape, dtype=torch.float64, device=like.device)
            self.tables[name] = table
            self.lengths = None if lengths is None else lengths.to(like.device)
        return table

    def per_sample(self, name: str = "hidden", direction: int = 0) -> torch.Tensor | None:
        """(num_layers, T, B) ||dL/dh_t[b]||_2 (or c_t), 0 at padded steps; None if not recorded."""
        table = self.tables.get(name)
        return None if table is None else table[:, direction]

    def _mask(self, table: torch.Tensor) -> torch.Tensor:
        seq_len, batch = table.shape[-2:]
        if self.lengths is None:
            return torch.ones(seq_len, batch, dtype=torch.bool, device=table.device)
        return _step_mask(self.lengths, seq_len)

    def mean(self, name: str = "hidden", direction: int = 0) -> torch.Tensor | None:
        """(num_layers, T) the batch mean over real steps, by step t."""
        table = self.per_sample(name, direction)
        if table is None:
            return None
        mask = self._mask(table)
        return ((table * mask).sum(-1) / mask.sum(-1).clamp(min=1)).to(self.dtype)

    def by_lag(self, name: str = "hidden", direction: int = 0) -> torch.Tensor | None:
        """(num_layers, T) the batch mean by lag k (see the module docstring for each direction's lag),
        over the sequences that have a step at that lag."""
        table = self.per_sample(name, direction)
        if table is None:
            return None
        seq_len, _batch = table.shape[-2:]
        if direction == 1:
            return self.mean(name, direction)  # lag k is step t
        if self.lengths is None:
            return table.mean(-1).flip(-1).to(self.dtype)
        lags = torch.arange(seq_len, device=table.device).unsqueeze(1)  # (T, 1)
        steps = self.lengths.unsqueeze(0) - 1 - lags  # (T, B): the step at lag k of each sequence
        real = steps >= 0
        aligned = table.gather(1, steps.clamp(min=0).unsqueeze(0).expand(table.shape[0], -1, -1))
        return ((aligned * real).sum(-1) / real.sum(-1).clamp(min=1)).to(self.dtype)

    def update_terms(self) -> torch.Tensor | None:
        """(num_layers, T) ||delta_t^T h_{t-1}||_F of the forward direction by step t, or None."""
        table = self.tables.get("update")
        return None if table is None else table[:, 0, :, 0]

    def table_name(self, series: str) -> str:
        """The table of the state part named ``series`` ("h", "c", "y", "z", ...): "hidden" or "cell"."""
        if series in ("hidden", "cell"):
            return series
        if series not in self.names:
            raise ValueError(f"unknown series {series!r}; this layer's state holds {', '.join(self.names)}")
        return ("hidden", "cell")[self.names.index(series)]

    def series(self, name: str, direction: int = 0) -> torch.Tensor | None:
        """(num_layers, T) the batch mean of ||dL/d{name}_t|| by step t, for a part of the state by its name."""
        return self.mean(self.table_name(name), direction)

    @property
    def hidden(self) -> torch.Tensor | None:
        return self.mean("hidden", 0)

    @property
    def hidden_reverse(self) -> torch.Tensor | None:
        return self.mean("hidden", 1) if self.num_directions == 2 else None

    @property
    def cell(self) -> torch.Tensor | None:
        return self.mean("cell", 0)

    @property
    def cell_reverse(self) -> torch.Tensor | None:
        return self.mean("cell", 1) if self.num_directions == 2 else None


class StepRecorder:
    """Where one layer and direction of one module reports the gradients of h_t (or c_t) in its backward.

    The fast engine passes whole chunks of gradients to ``put`` from its backward
    loop; on the reference loop, ``RecordingWatch`` hooks each h_t and c_t so that
    their gradients reach ``put`` one step at a time.

    offset: the call's first step in the direction's own order (non-zero for the
        later pieces of truncated BPTT or of a packed batch); seq_len, batch: the full
        input's T and B (a call may cover only the first rows, the sequences still
        running); lengths: the true lengths, or None; direction 1 maps its steps back
        to the input's (the reverse direction's step s of sequence b is t = lengths[b] - 1 - s).
    """

    __slots__ = ("batch", "direction", "field", "layer", "lengths", "module", "offset", "seq_len")

    def __init__(
        self,
        module: nn.Module,
        layer: int,
        offset: int,
        seq_len: int,
        field: str,
        *,
        direction: int = 0,
        batch: int | None = None,
        lengths: torch.Tensor | None = None,
    ) -> None:
        self.module = module
        self.layer = layer
        self.direction = direction
        self.offset = offset
        self.seq_len = seq_len
        self.batch = batch
        self.lengths = lengths
        self.field = field

    def active(self) -> GradientRecord | None:
        return getattr(self.module, RECORD_ATTRIBUTE, None)

    def put(self, start: int, grads: torch.Tensor) -> None:
        """Record steps start .. start + K - 1 of this call from their gradients ``grads`` (K, rows, H)."""
        if self.active() is None:
            return
        # In float64: squaring a float32 gradient below ~1e-19 underflows, and vanishing
        # gradients are exactly the values that go that low.
        self.put_norms(start, torch.linalg.vector_norm(grads, dim=-1, dtype=torch.float64), grads.dtype)

    def put_norms(self, start: int, norms: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
        """Record steps start .. start + K - 1 of this call from their norms, (K, rows) ||dL/dh_t[b]||_2
        in float64 (a kernel may compute them itself); ``dtype`` is the gradients' own."""
        record = self.active()
        if record is None:
            return
        rows = norms.shape[1]
        table = record.table(self.field, self.seq_len, self.batch or rows, self.lengths, norms)
        record.dtype = dtype
        table = table[self.layer, self.direction]  # (T, B)
        first = self.offset + start
        if self.direction == 0:
            table[first : first + norms.shape[0], :rows] = norms
            return
        steps = torch.arange(first, first + norms.shape[0], device=norms.device).unsqueeze(1)  # (K, 1)
        ends = (
            torch.full((rows,), self.seq_len, device=norms.device)
            if self.lengths is None
            else self.lengths[:rows].to(norms.device)
        ) - 1
        table[ends.unsqueeze(0) - steps, torch.arange(rows, device=norms.device)] = norms

    def hook(self, t: int, state: torch.Tensor) -> None:
        """Have the gradient of ``state``, step t of this call, recorded when the backward reaches it."""
        if state.requires_grad:
            state.register_hook(lambda grad: self.put(t, grad.unsqueeze(0)))


class TermRecorder:
    """Where one layer's backward reports ||delta_t^T h_{t-1}||_F, the Frobenius norm of step t's term
    of dL/dW_hh (delta_t the gradient of the recurrent projection h_{t-1} W_hh^T + b_hh), when the
    open record asks for it (``GradientRecord.updates``)."""

    __slots__ = ("layer", "module", "offset", "seq_len")

    def __init__(self, module: nn.Module, layer: int, offset: int, seq_len: int) -> None:
        self.module, self.layer, self.offset, self.seq_len = module, layer, offset, seq_len

    def wanted(self) -> bool:
        record = getattr(self.module, RECORD_ATTRIBUTE, None)
        return record is not None and record.updates

    def put(self, start: int, delta: torch.Tensor, h_prev: torch.Tensor) -> None:
        """Steps start .. start + K - 1 from delta (K, rows, G*H) and h_{t-1} (K, rows, H).

        ||delta^T h||_F^2 = sum_{b,b'} (delta_b . delta_b') (h_b . h_b'): two (rows, rows) Gram
        matrices per step, cheaper than forming the (G*H, H) term when rows < H; in float64, so
        that tiny terms do not underflow.
        """
        record = getattr(self.module, RECORD_ATTRIBUTE, None)
        if record is None or not record.updates:
            return
        d, h = delta.double(), h_prev.double()
        squares = (torch.bmm(d, d.transpose(1, 2)) * torch.bmm(h, h.transpose(1, 2))).sum((1, 2))
        self.put_norms(start, squares.clamp(min=0).sqrt())

    def put_norms(self, start: int, norms: torch.Tensor) -> None:
        """Steps start .. start + K - 1 from their term norms (K,), in float64: for a cell whose recurrent
        weight is not a matrix (IndRNN's vector u: the term is sum_b delta_t[b] * h_{t-1}[b])."""
        record = getattr(self.module, RECORD_ATTRIBUTE, None)
        if record is None or not record.updates:
            return
        table = record.table("update", self.seq_len, 1, None, norms)[self.layer, 0, :, 0]
        first = self.offset + start
        table[first : first + norms.shape[0]] = norms


@dataclass(frozen=True)
class LayerRecorders:
    """The recorders of one layer's call: h_t always, c_t for an LSTM, and the W_hh terms of the
    forward direction."""

    hidden: StepRecorder
    cell: StepRecorder | None = None
    updates: TermRecorder | None = None

    def active(self) -> bool:
        """Whether a record is open now (the backward reads this to skip the norms when none is)."""
        return self.hidden.active() is not None

    def terms(self) -> TermRecorder | None:
        """The term recorder when the open record asks for terms, else None."""
        return self.updates if self.updates is not None and self.updates.wanted() else None


class RecordingWatch:
    """The reference loop's side of recording: hooks every h_t (and c_t) of one layer's call."""

    def __init__(self, recorders: LayerRecorders) -> None:
        self.recorders = recorders

    def input(self, x: torch.Tensor, projected: torch.Tensor) -> None:
        pass

    def step(
        self, t: int, h_prev: torch.Tensor, recurrent: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None
    ) -> None:
        if c is not None and self.recorders.cell is not None:
            self.recorders.cell.hook(t, c)
        self.recorders.hidden.hook(t, h)
        terms = self.recorders.updates
        if terms is not None and recurrent.requires_grad:
            kept = h_prev.detach()
            recurrent.register_hook(lambda grad: terms.put(t, grad.unsqueeze(0), kept.unsqueeze(0)))
