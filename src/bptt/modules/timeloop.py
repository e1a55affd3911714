"""Running a recurrent layer over time: which engine a forward takes, the stack of layers and
directions, the pieces of a packed batch, truncation, and the calls into the engines.

Tensors are time-major, (T, B, features). A packed batch is run in pieces of
constant batch size, longest sequences first, so each sequence stops at its
own last step (and the reverse direction starts there). A layer names its
engines (``ENGINE_CHOICES``); "auto" (the default) is the cell's choice per call
(``_auto_engine``: for the torch twins the table of ``bptt.engine.choice``, see
``bptt.modules.twins``; for the other cells their hand-written "fast" engine). Every
engine can be asked for by name. While a step watch is open on a layer
(``bptt.modules.watch_steps``), or under a ``torch.func`` transform, it runs on
the reference loop.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch
from torch import nn

from bptt.engine import compiled
from bptt.engine.recording import RECORD_ATTRIBUTE, GradientRecord, LayerRecorders, StepRecorder, TermRecorder
from bptt.engine.reference import StepWatch

#: The attribute of a layer holding its open step watch (see ``bptt.modules.watch_steps``).
WATCH_ATTRIBUTE = "_step_watch"
#: torch.nn's error for an input of no steps, which every engine gives.
NO_STEPS = "Expected sequence length to be larger than 0 in RNN"

State = Any  # a (B, H) tensor, or a tuple of them (an LSTM's (h, c))


def _under_functorch(*tensors: torch.Tensor | None) -> bool:
    """Whether any tensor is wrapped by a torch.func transform (grad, vmap, ...).

    The one read of torch's private state in the layers: torch has no public test for a tensor
    that a transform wraps (``torch.func`` offers none), and the engines must know, because
    their hand-written loops write into buffers that a transform cannot follow.
    """
    return any(t is not None and torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors)


def reverse_steps(x: torch.Tensor, lengths: list[int] | None) -> torch.Tensor:
    """x (T, B, ...) with each sequence's real steps in reverse order (padding stays after the end)."""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    steps = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    ends = torch.tensor(lengths, device=x.device).unsqueeze(0) - 1  # (1, B)
    index = torch.where(steps <= ends, ends - steps, steps)  # (T, B)
    return x.gather(0, index.view(T, -1, *([1] * (x.dim() - 2))).expand_as(x))


def pieces(
    seq_len: int, lengths: list[int] | None, batch: int, truncate: int | None
) -> list[tuple[int, int, int, bool]]:
    """(start, end, rows, cut) pieces covering 0..seq_len-1: each runs the first ``rows`` sequences
    (the ones still running; lengths sorted longest first), and ``cut`` detaches the state before it
    (a truncated-BPTT boundary)."""
    edges = {0, seq_len}
    if truncate is not None:
        edges.update(range(truncate, seq_len, truncate))
    if lengths is not None:
        edges.update(n for n in lengths if 0 < n < seq_len)
    result = []
    for start, end in pairwise(sorted(edges)):
        rows = batch if lengths is None else sum(1 for n in lengths if n > start)
        cut = truncate is not None and start > 0 and start % truncate == 0
        result.append((start, end, rows, cut))
    return result


class TimeLoop:
    """The running half of ``RecurrentBase``: everything between a checked input and its outputs."""

    #: What "auto" runs where a cell does not decide otherwise (``_auto_engine``): ``CPU_ENGINE`` on a CPU
    #: ("compiled" falls back to "fast" where the compiled loops do not run the input), ``GPU_ENGINE`` on a GPU.
    CPU_ENGINE = "fast"
    GPU_ENGINE = "fast"

    @staticmethod
    def _detach(state: State) -> State:
        return state.detach() if isinstance(state, torch.Tensor) else tuple(s.detach() for s in state)

    @staticmethod
    def _rows(state: State, rows: int) -> State:
        return state[:rows] if isinstance(state, torch.Tensor) else tuple(s[:rows] for s in state)

    @staticmethod
    def _merge_rows(new: State, old: State, rows: int) -> State:
        """The state with its first ``rows`` sequences advanced (``new``) and the rest as they were."""
        if isinstance(new, torch.Tensor):
            return new if rows == old.shape[0] else torch.cat([new, old[rows:]])
        return tuple(TimeLoop._merge_rows(n, o, rows) for n, o in zip(new, old))

    # -- which engine ----------------------------------------------------------------------
    def engine_for(self, input: torch.Tensor | None = None, recording: bool | None = None, packed: bool = False) -> str:
        """The engine a forward on ``input`` runs now: "vendor", "probe", "compiled", "fast", "triton",
        "recompute" or "reference".

        ``recording``: whether a per-step record is wanted (default: whether one is open on this layer
        now, as ``bptt.record_gradients`` or ``bptt.watch`` opens it); ``packed``: the input is a packed
        batch (``input`` its padded (T, B, I) form). Under "auto" the cell decides (``_auto_engine``; for
        the torch twins ``bptt.engine.choice``'s table, from the layer's settings, the input's device,
        sizes and packing, what is open, and the free memory).
        """
        if getattr(self, WATCH_ATTRIBUTE, None) is not None:
            return "reference"
        if _under_functorch(input, *self.parameters()):
            return "reference"  # the hand-written loops write into buffers, which transforms cannot follow
        if self.engine != "auto":
            return self.engine
        record = getattr(self, RECORD_ATTRIBUTE, None)
        recording = record is not None if recording is None else recording
        return self._auto_engine(input, recording, record, packed)

    def _auto_engine(
        self, input: torch.Tensor | None, recording: bool, record: GradientRecord | None, packed: bool
    ) -> str:
        """What "auto" runs on ``input`` (None: on the layer's device), with a record wanted or not
        (``record``: the open one), for a packed batch or not: ``GPU_ENGINE`` on a GPU, else ``CPU_ENGINE``."""
        if self.CPU_ENGINE == self.GPU_ENGINE == "fast":
            return self.CPU_ENGINE
        like = input if input is not None else next(self.parameters())
        if like.device.type == "cuda":
            return self.GPU_ENGINE
        if self.CPU_ENGINE == "compiled" and not compiled.runs_on(like):
            return "fast"
        return self.CPU_ENGINE

    def _autocast_dtypes(
        self, x: torch.Tensor, state: State, lengths: list[int] | None
    ) -> tuple[torch.dtype, ...] | None:
        """The dtypes of the output and each final state under an open autocast, where a cell has a
        rule for them (the torch twins take torch.nn's); None: the engines' own dtypes."""
        return None

    def _run_stack(
        self, x: torch.Tensor, lengths: list[int] | None, state: State, engine: str = "fast"
    ) -> tuple[torch.Tensor, State]:
        """Every layer and direction over the (T, B, I) input; returns the top output and the stacked final
        states, in the dtypes torch.nn gives under autocast."""
        if x.shape[0] == 0:
            raise RuntimeError(NO_STEPS)
        dtypes = self._autocast_dtypes(x, state, lengths)
        output, final = self._run_layers(x, lengths, state, engine)
        if dtypes is None:
            return output, final
        if isinstance(final, tuple):
            return output.to(dtypes[0]), tuple(f.to(d) for f, d in zip(final, dtypes[1:]))
        return output.to(dtypes[0]), final.to(dtypes[1])

    def _run_layers(
        self, x: torch.Tensor, lengths: list[int] | None, state: State, engine: str
    ) -> tuple[torch.Tensor, State]:
        finals = []
        for layer in range(self.num_layers):
            layer_input = x
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                output, final = self._run_direction(
                    layer, direction, layer_input, lengths, self._state_at(state, index), engine
                )
                outputs.append(output)
                finals.append(final)
            x = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
            if self.residual:
                skip = getattr(self, f"residual_weight_l{layer}", None)
                x = x + (layer_input if skip is None else nn.functional.linear(layer_input, skip))
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout, training=True)
        return x, self._stack_states(finals)

    def _run_direction(
        self, layer: int, direction: int, x: torch.Tensor, lengths: list[int] | None, state: State, engine: str
    ) -> tuple[torch.Tensor, State]:
        """One layer in one direction, piece by piece (see ``pieces``); padded steps come out as zeros."""
        if direction == 1:
            x = reverse_steps(x, lengths)
        seq_len, batch = x.shape[0], x.shape[1]
        parts = pieces(seq_len, lengths, batch, self.truncate)
        lengths_tensor = None if lengths is None else torch.tensor(lengths, device=x.device)
        outputs = []
        for start, end, rows, cut in parts:
            if cut:
                state = self._detach(state)
            output, advanced = self._call_engine(
                engine,
                layer,
                direction,
                x[start:end, :rows],
                self._rows(state, rows),
                start,
                seq_len,
                batch,
                lengths_tensor,
            )
            state = self._merge_rows(advanced, state, rows)
            if rows < batch:
                output = nn.functional.pad(output, (0, 0, 0, batch - rows))
            outputs.append(output)
        output = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        if direction == 1:
            output = reverse_steps(output, lengths)
        return output, state

    #: The engine the latest forward ran (see ``engine_for``), or None before the first.
    last_engine: str | None = None

    #: Pass per-step recorders to the engine. The fast engine fills them in its backward
    #: loop at no cost when no record is active; the reference engine hooks every h_t
    #: (about 15 microseconds a step). False times the bare reference loop.
    record_steps = True

    def _recorders(
        self, layer: int, direction: int, offset: int, seq_len: int, batch: int, lengths: torch.Tensor | None
    ) -> LayerRecorders | None:
        """Where this call's backward reports dL/dh_t (and dL/dc_t) for ``bptt.record_gradients``."""
        if not (self.record_steps and torch.is_grad_enabled()):
            return None

        def recorder(field: str) -> StepRecorder:
            return StepRecorder(self, layer, offset, seq_len, field, direction=direction, batch=batch, lengths=lengths)

        terms = TermRecorder(self, layer, offset, seq_len) if direction == 0 else None
        second = recorder("cell") if len(self.STATE_NAMES) > 1 else None
        return LayerRecorders(recorder("hidden"), second, terms)

    def _call_engine(
        self,
        engine: str,
        layer: int,
        direction: int,
        x: torch.Tensor,
        state: State,
        offset: int,
        seq_len: int,
        batch: int,
        lengths: torch.Tensor | None,
    ) -> tuple[torch.Tensor, State]:
        """Run one layer and direction on steps offset .. offset + len(x) - 1 of ``seq_len``."""
        record = self._recorders(layer, direction, offset, seq_len, batch, lengths)
        watch_for = getattr(self, WATCH_ATTRIBUTE, None)
        watch = None if watch_for is None else watch_for(layer, direction, offset)
        if watch is not None:
            return self._engine_call("reference", layer, direction, x, state, record, watch=watch)
        if (
            engine == "reference"
            or x.shape[1] == 0  # no sequence: nothing for a hand-written loop to do, and autograd does it right
            or _under_functorch(x, *(state if isinstance(state, tuple) else (state,)))
        ):
            return self._engine_call("reference", layer, direction, x, state, record)
        return self._engine_call(engine, layer, direction, x, state, record)

    def _engine_call(
        self,
        engine: str,
        layer: int,
        direction: int,
        x: torch.Tensor,
        state: State,
        record: LayerRecorders | None,
        watch: StepWatch | None = None,
    ) -> tuple[torch.Tensor, State]:
        """The cell's call into the engine named ``engine`` (``watch``: the reference engine only)."""
        raise NotImplementedError
