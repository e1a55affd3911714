"""What the drop-in recurrent layers share: parameters, initial states, the stack of layers over
time, truncation, and the call into an engine.

Same constructor arguments, shapes, state-dict names (``weight_ih_l{k}``,
``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``) and gate order as
torch.nn, so ``ours.load_state_dict(theirs.state_dict())`` gives the same
outputs and gradients. On top: ``init``, ``init_scale``, ``t_max``,
``residual``, ``engine`` and ``truncate``; the cells add their own (``activation``
for the RNN, ``forget_bias`` for the LSTM).

Engines (``bptt.engine.ENGINES``): "fast" (the default, hand-written BPTT) and
"reference" (the plain autograd loop). While a step watch is open on a layer
(``bptt.modules.watch_steps``), it runs on the reference loop, whose per-step
tensors the watch sees.

Inside, tensors are time-major: (T, B, features).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from bptt.checks import positive_int
from bptt.engine import DEFAULT_ENGINE, ENGINES, Engine
from bptt.engine.recording import LayerRecorders, StepRecorder
from bptt.engine.reference import StepWatch
from bptt.modules.init import GATE_INITS, INIT_NAMES, chrono_bias, init_layer, pytorch_uniform

#: The attribute of a layer holding its open step watch (see ``bptt.modules.watch_steps``).
WATCH_ATTRIBUTE = "_step_watch"


class RecurrentBase(nn.Module):
    GATES = 1
    MODE = "RNN"

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
        super().__init__()
        positive_int("input_size", input_size)
        positive_int("hidden_size", hidden_size)
        positive_int("num_layers", num_layers)
        if not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
        if bidirectional:
            raise ValueError("bidirectional=True is not supported; allowed: False")
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
        ENGINES.get(engine)  # unknown engine -> error listing the known ones
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = False
        self.init = init
        self.init_scale = float(init_scale)
        self.t_max = t_max
        self.residual = residual
        self.engine = engine
        self.truncate = truncate
        factory = {"device": device, "dtype": dtype}
        gate_size = self.GATES * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(gate_size, layer_input, **factory)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(gate_size, hidden_size, **factory)))
            if bias:
                self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(gate_size, **factory)))
                self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(gate_size, **factory)))
            if residual and layer_input != hidden_size:
                # Projection of the skip path where the sizes differ (layer 0 only).
                self.register_parameter(
                    f"residual_weight_l{layer}", nn.Parameter(torch.empty(hidden_size, layer_input, **factory))
                )
        self._extra_parameters(factory)
        self.reset_parameters(generator)

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

    def layer_parameters(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer."""
        get = lambda name: getattr(self, f"{name}_l{layer}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        recurrent = [p for n, p in self.named_parameters() if n.startswith(("weight_", "bias_"))]
        pytorch_uniform(recurrent, self.hidden_size, generator)
        if self.init not in ("pytorch", *GATE_INITS):
            for layer in range(self.num_layers):
                w_ih, w_hh, b_ih, b_hh = self.layer_parameters(layer)
                biases = [b for b in (b_ih, b_hh) if b is not None]
                init_layer(self.init, w_ih, w_hh, biases, self.GATES, self.init_scale, generator)
        for name, p in self.named_parameters():
            if name.startswith("residual_weight_"):
                bound = math.sqrt(6.0 / (p.shape[0] + p.shape[1]))
                p.uniform_(-bound, bound, generator=generator)
        self._reset_extra()
        if self.init == "chrono" and self.bias:
            for layer in range(self.num_layers):
                _, _, b_ih, b_hh = self.layer_parameters(layer)
                b_ih.zero_()
                b_hh.zero_()
                self._chrono(b_ih, chrono_bias(self.hidden_size, self.t_max, generator).to(b_ih))

    def _reset_extra(self) -> None:
        pass

    def _chrono(self, bias_ih: torch.Tensor, keep: torch.Tensor) -> None:
        """Put the chrono biases ``keep`` (one per unit) into a layer's input-side bias."""
        raise NotImplementedError

    # -- state ------------------------------------------------------------------------
    def _zero_state(self, batch: int, like: torch.Tensor) -> Any:
        return like.new_zeros(self.num_layers, batch, self.hidden_size)

    def _layer_state(self, state: Any, layer: int) -> Any:
        return state[layer]

    def _stack_states(self, states: list[Any]) -> Any:
        return torch.stack(states)

    def _check_state(self, state: Any, batch: int, unbatched: bool) -> Any:
        return self._check_tensor_state("hx", state, batch, unbatched)

    def _check_tensor_state(self, name: str, state: torch.Tensor, batch: int, unbatched: bool) -> torch.Tensor:
        expected = (self.num_layers, self.hidden_size) if unbatched else (self.num_layers, batch, self.hidden_size)
        if tuple(state.shape) != expected:
            raise ValueError(f"{name} must have shape {expected}, got {tuple(state.shape)}")
        return state.unsqueeze(1) if unbatched else state

    # -- forward ----------------------------------------------------------------------
    def forward(self, input: torch.Tensor, hx: Any = None) -> tuple[torch.Tensor, Any]:
        if input.dim() not in (2, 3):
            raise ValueError(f"input must be 2-D (unbatched) or 3-D, got {input.dim()}-D")
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)  # (T, B, I)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input.size(-1) must be input_size={self.input_size}, got {x.shape[-1]}")
        batch = x.shape[1]
        state = self._zero_state(batch, x) if hx is None else self._check_state(hx, batch, unbatched)
        final_states = []
        for layer in range(self.num_layers):
            layer_input = x
            x, final = self._run_layer(layer, layer_input, self._layer_state(state, layer))
            final_states.append(final)
            if self.residual:
                skip = getattr(self, f"residual_weight_l{layer}", None)
                x = x + (layer_input if skip is None else torch.nn.functional.linear(layer_input, skip))
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = torch.nn.functional.dropout(x, self.dropout, training=True)
        h_n = self._stack_states(final_states)
        if unbatched:
            return x.squeeze(1), self._unbatch_state(h_n)
        return (x.transpose(0, 1) if self.batch_first else x), h_n

    def _unbatch_state(self, state: Any) -> Any:
        return state.squeeze(1)

    def _run_layer(self, layer: int, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        seq_len, chunk = x.shape[0], self.truncate
        if chunk is None or chunk >= seq_len:
            return self._call_engine(layer, x, state, 0, seq_len)
        outputs = []
        for index, piece in enumerate(x.split(chunk)):
            if index:
                state = state.detach() if isinstance(state, torch.Tensor) else tuple(s.detach() for s in state)
            output, state = self._call_engine(layer, piece, state, index * chunk, seq_len)
            outputs.append(output)
        return torch.cat(outputs), state

    #: Pass per-step recorders to the engine. The fast engine fills them in its backward
    #: loop at no cost when no record is active; the reference engine hooks every h_t
    #: (about 15 microseconds a step). False times the bare reference loop.
    record_steps = True

    def _recorders(self, layer: int, offset: int, seq_len: int) -> LayerRecorders | None:
        """Where this call's backward reports dL/dh_t (and dL/dc_t) for ``bptt.record_gradients``."""
        if not (self.record_steps and torch.is_grad_enabled()):
            return None
        cell = StepRecorder(self, layer, offset, seq_len, "cell") if self.MODE == "LSTM" else None
        return LayerRecorders(StepRecorder(self, layer, offset, seq_len, "hidden"), cell)

    def _call_engine(self, layer: int, x: torch.Tensor, state: Any, offset: int, seq_len: int) -> tuple[torch.Tensor, Any]:
        """Run layer ``layer`` on steps offset .. offset + len(x) - 1 of a sequence of ``seq_len``."""
        record = self._recorders(layer, offset, seq_len)
        watch_for = getattr(self, WATCH_ATTRIBUTE, None)
        watch = None if watch_for is None else watch_for(layer, offset)
        if watch is None:
            return self._engine_call(ENGINES.get(self.engine), layer, x, state, record)
        return self._engine_call(ENGINES.get("reference"), layer, x, state, record, watch=watch)

    def _engine_call(self, engine: Engine, layer: int, x: torch.Tensor, state: Any, record: LayerRecorders | None,
                     watch: StepWatch | None = None) -> tuple[torch.Tensor, Any]:
        """The cell family's call into ``engine`` (``watch``: the reference engine only)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
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


