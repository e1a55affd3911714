"""What the drop-in recurrent layers share: parameters, the checks torch.nn makes, initial states,
the stack of layers and directions over time, packed sequences, truncation, and the call into an engine.

Same constructor arguments, shapes, state-dict names (``weight_ih_l{k}``,
``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, ``*_reverse`` for the
reverse direction, ``weight_hr_l{k}`` for an LSTM's projection) and gate order as
torch.nn, so ``ours.load_state_dict(theirs.state_dict())`` gives the same outputs
and gradients. The layers are ``torch.nn.RNNBase`` instances and keep its API
(``flatten_parameters``, ``all_weights``, ``_flat_weights``, ``mode``,
``check_forward_args``) and its error contract. On top: ``init``, ``init_scale``,
``t_max``, ``residual``, ``engine`` and ``truncate``; the cells add their own.

Engines (``bptt.engine``): "auto" (the default), "fast" (hand-written BPTT),
"reference" (the plain autograd loop), "probe" (the vendor's kernel with a
per-step gradient probe) and "vendor" (torch.nn's own kernel for the whole
stack). ``engine_for`` says which one a forward runs: "auto" takes the vendor's
kernel where it is the fastest and no per-step record is open (on a GPU, every
cell it has; on a CPU, the LSTM, where torch.nn's loop beats ours), the probe
for a record that needs only dL/dh_t on a GPU, and "fast" otherwise. While a
step watch is open on a layer (``bptt.modules.watch_steps``), or under a
``torch.func`` transform, it runs on the reference loop.

Inside, tensors are time-major: (T, B, features). A packed batch is run in
pieces of constant batch size, longest sequences first, so each sequence stops
at its own last step (and the reverse direction starts there).
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from bptt.checks import positive_int
from bptt.engine import DEFAULT_ENGINE, ENGINE_NAMES, ENGINES, Engine
from bptt.engine.recording import RECORD_ATTRIBUTE, LayerRecorders, StepRecorder, TermRecorder
from bptt.engine.vendor import VENDOR_ACTIVATIONS, run_stack
from bptt.engine.reference import StepWatch
from bptt.modules.init import GATE_INITS, INIT_NAMES, chrono_bias, init_layer, pytorch_uniform

#: The attribute of a layer holding its open step watch (see ``bptt.modules.watch_steps``).
WATCH_ATTRIBUTE = "_step_watch"
#: The modes torch.nn's own kernels run (cuDNN, oneDNN, native).
VENDOR_MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")

State = Any  # a (B, H) tensor, or (h, c) for an LSTM


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")


def _under_functorch(*tensors: torch.Tensor | None) -> bool:
    """Whether any tensor is wrapped by a torch.func transform (grad, vmap, ...)."""
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


def pieces(seq_len: int, lengths: list[int] | None, batch: int, truncate: int | None) -> list[tuple[int, int, int, bool]]:
    """(start, end, rows, cut) pieces covering 0..seq_len-1: each runs the first ``rows`` sequences
    (the ones still running; lengths sorted longest first), and ``cut`` detaches the state before it
    (a truncated-BPTT boundary)."""
    edges = {0, seq_len}
    if truncate is not None:
        edges.update(range(truncate, seq_len, truncate))
    if lengths is not None:
        edges.update(n for n in lengths if 0 < n < seq_len)
    edges = sorted(edges)
    result = []
    for start, end in zip(edges, edges[1:]):
        rows = batch if lengths is None else sum(1 for n in lengths if n > start)
        cut = truncate is not None and start > 0 and start % truncate == 0
        result.append((start, end, rows, cut))
    return result


class RecurrentBase(nn.RNNBase):
    """The shared machinery of ``bptt.RNN``, ``bptt.LSTM`` and ``bptt.GRU`` (see the module docstring)."""

    GATES = 1
    MODE = "RNN"  # the cell family; ``mode`` is torch.nn's name for the layer

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        proj_size: int = 0,
        init: str = "pytorch",
        init_scale: float = 1.0,
        t_max: int | None = None,
        residual: bool = False,
        engine: str | None = None,
        truncate: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        nn.Module.__init__(self)
        for name, value in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional),
                            ("residual", residual)):
            _check_bool(name, value)
        positive_int("input_size", input_size)
        positive_int("hidden_size", hidden_size)
        positive_int("num_layers", num_layers)
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             f"element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=3)
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if init not in INIT_NAMES:
            raise ValueError(f"unknown init {init!r}; allowed: {', '.join(INIT_NAMES)}")
        if init in GATE_INITS and self.MODE == "RNN":
            raise ValueError(f"init {init!r} sets gate biases: it applies to LSTM and GRU; allowed for RNN: "
                             f"{', '.join(n for n in INIT_NAMES if n not in GATE_INITS)}")
        if init == "chrono":
            if t_max is None:
                raise ValueError("init 'chrono' needs t_max, the longest dependency expected (e.g. the sequence length)")
            chrono_bias(1, t_max, None)  # checks t_max
        elif t_max is not None:
            raise ValueError(f"t_max applies to init 'chrono' only, got init {init!r}")
        engine = DEFAULT_ENGINE if engine is None else engine
        if engine not in ENGINE_NAMES:
            raise ValueError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINE_NAMES)}")
        self.mode = self._torch_mode()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.init = init
        self.init_scale = float(init_scale)
        self.t_max = t_max
        self.residual = residual
        self.engine = engine
        self.truncate = truncate
        self._flat_weight_refs = []
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        factory = {"device": device, "dtype": dtype}
        gate_size, out_size, D = self.GATES * hidden_size, self.output_size, self.num_directions
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else out_size * D
            for direction in range(D):
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, out_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size:
                    shapes += [("weight_hr", (proj_size, hidden_size))]
                names = []
                for stem, shape in shapes:
                    name = self._name(stem, layer, direction)
                    setattr(self, name, nn.Parameter(torch.empty(shape, **factory)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
            if residual and layer_input != out_size * D:
                # Projection of the skip path where the sizes differ (layer 0 only).
                self.register_parameter(f"residual_weight_l{layer}",
                                        nn.Parameter(torch.empty(out_size * D, layer_input, **factory)))
        self._extra_parameters(factory)
        self._init_flat_weights()
        self.reset_parameters(generator)

    # -- what the layer is -----------------------------------------------------------------
    def _torch_mode(self) -> str:
        return self.MODE

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """The size of h_t: ``proj_size`` with a projection, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    @staticmethod
    def _name(stem: str, layer: int, direction: int = 0) -> str:
        return f"{stem}_l{layer}{'_reverse' if direction else ''}"

    def _extra_parameters(self, factory: dict[str, Any]) -> None:
        pass

    @property
    def truncate(self) -> int | None:
        """Truncated BPTT: cut the gradient every ``truncate`` steps (None: full BPTT).

        The state is carried across the cut, detached: each layer runs on
        chunks of ``truncate`` steps, h (and c) passed on with ``.detach()``.
        """
        return self._truncate

    @truncate.setter
    def truncate(self, value: int | None) -> None:
        if value is not None:
            positive_int("truncate", value)
        self._truncate = value

    def layer_parameters(self, layer: int, direction: int = 0) -> tuple[torch.Tensor, torch.Tensor,
                                                                       torch.Tensor | None, torch.Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction."""
        return tuple(getattr(self, self._name(stem, layer, direction), None)  # type: ignore[return-value]
                     for stem in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def flatten_parameters(self) -> None:
        """torch.nn.RNNBase's: on a GPU with cuDNN, the weights the vendor kernel reads become one
        block of memory; elsewhere, and for cells the vendor does not run, a no-op."""
        if self.mode in VENDOR_MODES:
            super().flatten_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        recurrent = [p for n, p in self.named_parameters() if n.startswith(("weight_", "bias_"))]
        pytorch_uniform(recurrent, self.hidden_size, generator)
        if self.init not in ("pytorch", *GATE_INITS):
            for layer in range(self.num_layers):
                for direction in range(self.num_directions):
                    w_ih, w_hh, b_ih, b_hh = self.layer_parameters(layer, direction)
                    biases = [b for b in (b_ih, b_hh) if b is not None]
                    init_layer(self.init, w_ih, w_hh, biases, self.GATES, self.init_scale, generator)
        for name, p in self.named_parameters():
            if name.startswith("residual_weight_"):
                bound = math.sqrt(6.0 / (p.shape[0] + p.shape[1]))
                p.uniform_(-bound, bound, generator=generator)
        self._reset_extra()
        if self.init == "chrono" and self.bias:
            for layer in range(self.num_layers):
                for direction in range(self.num_directions):
                    _, _, b_ih, b_hh = self.layer_parameters(layer, direction)
                    b_ih.zero_()
                    b_hh.zero_()
                    self._chrono(b_ih, chrono_bias(self.hidden_size, self.t_max, generator).to(b_ih))

    def _reset_extra(self) -> None:
        pass

    def _chrono(self, bias_ih: torch.Tensor, keep: torch.Tensor) -> None:
        """Put the chrono biases ``keep`` (one per unit) into a layer's input-side bias."""
        raise NotImplementedError

    def __prepare_scriptable__(self) -> nn.Module:
        raise RuntimeError(f"torch.jit.script cannot compile bptt.{type(self).__name__} (a Python time loop; "
                           "TorchScript is deprecated): use torch.compile(model), or "
                           "bptt.convert(model, back=True) for torch.nn layers to script")

    # -- states ----------------------------------------------------------------------------
    def _zero_state(self, batch: int, like: torch.Tensor) -> State:
        return like.new_zeros(self.num_layers * self.num_directions, batch, self.output_size)

    def _state_at(self, state: State, index: int) -> State:
        return state[index]

    def _stack_states(self, states: list[State]) -> State:
        return torch.stack(states)

    def _check_state_dims(self, hx: State, batched: bool) -> State:
        """torch.nn's check that hx has the input's batchedness; an unbatched hx gains its batch axis."""
        want = 3 if batched else 2
        if hx.dim() != want:
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise RuntimeError(f"For {kind} input, hx should also be {want}-D but got {hx.dim()}-D tensor")
        return hx if batched else hx.unsqueeze(1)

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
        return tuple(RecurrentBase._merge_rows(n, o, rows) for n, o in zip(new, old))

    def _unbatch_state(self, state: State) -> State:
        return state.squeeze(1)

    # -- forward ---------------------------------------------------------------------------
    @torch.compiler.disable
    def forward(self, input: torch.Tensor | PackedSequence, hx: State | None = None) -> tuple[Any, State]:
        if torch.jit.is_tracing():
            raise RuntimeError(f"torch.jit.trace cannot record bptt.{type(self).__name__} (its time loop is Python): "
                               "use torch.compile(model), or bptt.convert(model, back=True) for torch.nn layers")
        self._update_flat_weights()
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            self.check_input(data, batch_sizes)
            # Longest first: the packed order, so each piece runs the first rows of the batch.
            x, lengths_tensor = pad_packed_sequence(PackedSequence(data, batch_sizes))
            lengths = lengths_tensor.tolist()
            if hx is not None:
                hx = self.permute_hidden(hx, sorted_indices)
                self.check_forward_args(data, hx, batch_sizes)
            state = self._zero_state(x.shape[1], x) if hx is None else hx
            engine = self.last_engine = self.engine_for(data)
            if engine == "vendor":
                packed, h_n = self._run_vendor(data, state, batch_sizes)
            else:
                output, h_n = self._run_stack(x, lengths, state, engine)
                packed = pack_padded_sequence(output, lengths_tensor).data
            return (PackedSequence(packed, batch_sizes, sorted_indices, unsorted_indices),
                    self.permute_hidden(h_n, unsorted_indices))
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D tensor instead")
        batched = input.dim() == 3
        if not batched:
            input = input.unsqueeze(0 if self.batch_first else 1)
        if hx is not None:
            hx = self._check_state_dims(hx, batched)
            self.check_forward_args(input, hx, None)
        else:
            self.check_input(input, None)
        x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
        state = self._zero_state(x.shape[1], x) if hx is None else hx
        engine = self.last_engine = self.engine_for(x)
        if engine == "vendor":
            output, h_n = self._run_vendor(x, state)
        else:
            output, h_n = self._run_stack(x, None, state, engine)
        output = output.transpose(0, 1) if self.batch_first else output
        if not batched:
            return output.squeeze(0 if self.batch_first else 1), self._unbatch_state(h_n)
        return output, h_n

    # -- which engine ----------------------------------------------------------------------
    def engine_for(self, input: torch.Tensor | None = None, recording: bool | None = None) -> str:
        """The engine a forward on ``input`` runs now: "vendor", "probe", "fast" or "reference".

        ``recording``: whether a per-step record is wanted (default: whether one is open on this
        layer now, as ``bptt.record_gradients`` or ``bptt.watch`` opens it). Deterministic: it
        depends on the layer's settings, the input's device and what is open, nothing else.
        """
        if getattr(self, WATCH_ATTRIBUTE, None) is not None:
            return "reference"
        if _under_functorch(input, *self._flat_weights):
            return "reference"  # the hand-written loops write into buffers, which transforms cannot follow
        if self.engine != "auto":
            return self.engine
        record = getattr(self, RECORD_ATTRIBUTE, None)
        recording = record is not None if recording is None else recording
        device = (input if input is not None else self._flat_weights[0]).device
        if recording:
            probe = self.mode in ("RNN_TANH", "RNN_RELU", "LSTM")
            only_hidden = record is None or not (record.updates or (record.cells and self.MODE == "LSTM"))
            return "probe" if device.type == "cuda" and probe and only_hidden else "fast"
        whole_stack = self.mode in VENDOR_MODES and not self.residual and self.truncate is None
        if whole_stack and (device.type == "cuda" or self.MODE == "LSTM"):
            return "vendor"
        return "fast"

    def _run_vendor(self, x: torch.Tensor, state: State, batch_sizes: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """torch.nn's kernel over the whole stack (time-major ``x``, or packed data with ``batch_sizes``)."""
        return run_stack(self.mode, x, state, self._flat_weights, self.bias, self.num_layers, self.dropout,
                         self.training, self.bidirectional, batch_sizes)

    def _run_stack(self, x: torch.Tensor, lengths: list[int] | None, state: State,
                   engine: str = "fast") -> tuple[torch.Tensor, State]:
        """Every layer and direction over the (T, B, I) input; returns the top output and the stacked final states."""
        finals = []
        for layer in range(self.num_layers):
            layer_input = x
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                output, final = self._run_direction(layer, direction, layer_input, lengths,
                                                    self._state_at(state, index), engine)
                outputs.append(output)
                finals.append(final)
            x = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
            if self.residual:
                skip = getattr(self, f"residual_weight_l{layer}", None)
                x = x + (layer_input if skip is None else nn.functional.linear(layer_input, skip))
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout, training=True)
        return x, self._stack_states(finals)

    def _run_direction(self, layer: int, direction: int, x: torch.Tensor, lengths: list[int] | None,
                       state: State, engine: str) -> tuple[torch.Tensor, State]:
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
            output, advanced = self._call_engine(engine, layer, direction, x[start:end, :rows], self._rows(state, rows),
                                                 start, seq_len, batch, lengths_tensor)
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

    def _recorders(self, layer: int, direction: int, offset: int, seq_len: int, batch: int,
                   lengths: torch.Tensor | None) -> LayerRecorders | None:
        """Where this call's backward reports dL/dh_t (and dL/dc_t) for ``bptt.record_gradients``."""
        if not (self.record_steps and torch.is_grad_enabled()):
            return None

        def recorder(field: str) -> StepRecorder:
            return StepRecorder(self, layer, offset, seq_len, field, direction=direction, batch=batch, lengths=lengths)

        terms = TermRecorder(self, layer, offset, seq_len) if direction == 0 else None
        return LayerRecorders(recorder("hidden"), recorder("cell") if self.MODE == "LSTM" else None, terms)

    def _call_engine(self, engine: str, layer: int, direction: int, x: torch.Tensor, state: State, offset: int,
                     seq_len: int, batch: int, lengths: torch.Tensor | None) -> tuple[torch.Tensor, State]:
        """Run one layer and direction on steps offset .. offset + len(x) - 1 of ``seq_len``."""
        record = self._recorders(layer, direction, offset, seq_len, batch, lengths)
        watch_for = getattr(self, WATCH_ATTRIBUTE, None)
        watch = None if watch_for is None else watch_for(layer, direction, offset)
        if watch is not None:
            return self._engine_call(ENGINES.get("reference"), layer, direction, x, state, record, watch=watch)
        if engine == "reference" or _under_functorch(x, *(state if isinstance(state, tuple) else (state,))):
            return self._engine_call(ENGINES.get("reference"), layer, direction, x, state, record)
        return self._engine_call(ENGINES.get(engine), layer, direction, x, state, record)

    def _engine_call(self, engine: Engine, layer: int, direction: int, x: torch.Tensor, state: State,
                     record: LayerRecorders | None, watch: StepWatch | None = None) -> tuple[torch.Tensor, State]:
        """The cell family's call into ``engine`` (``watch``: the reference engine only)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.init != "pytorch":
            s += f", init={self.init!r}"
            if self.t_max is not None:
                s += f", t_max={self.t_max}"
            if self.init_scale != 1.0:
                s += f", init_scale={self.init_scale}"
        if self.residual:
            s += ", residual=True"
        if self.engine != DEFAULT_ENGINE:
            s += f", engine={self.engine!r}"
        if self.truncate is not None:
            s += f", truncate={self.truncate}"
        return s
