"""What the drop-in recurrent layers share: parameters, the checks torch.nn makes, initial states
and the forward: input, packed sequences and states in, outputs out.

Same constructor arguments, shapes, state-dict names (``weight_ih_l{k}``,
``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, ``*_reverse`` for the
reverse direction, ``weight_hr_l{k}`` for an LSTM's projection) and gate order as
torch.nn, so ``ours.load_state_dict(theirs.state_dict())`` gives the same outputs
and gradients. The layers are ``torch.nn.RNNBase`` instances and keep its API
(``flatten_parameters``, ``all_weights``, ``_flat_weights``, ``mode``,
``check_forward_args``) and its error contract. On top: ``init``, ``init_scale``,
``t_max``, ``residual``, ``engine`` and ``truncate``; the cells add their own.

How a forward runs over time, and on which engine, is ``bptt.modules.timeloop``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from bptt.checks import is_int, positive_int
from bptt.engine import DEFAULT_ENGINE, ENGINE_NAMES
from bptt.modules.init import GATE_INITS, INIT_NAMES, chrono_bias, init_layer, pytorch_uniform
from bptt.modules.timeloop import VENDOR_MODES, State, TimeLoop


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")


class RecurrentBase(TimeLoop, nn.RNNBase):
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
        for name, value in (
            ("bias", bias),
            ("batch_first", batch_first),
            ("bidirectional", bidirectional),
            ("residual", residual),
        ):
            _check_bool(name, value)
        positive_int("input_size", input_size)
        positive_int("hidden_size", hidden_size)
        positive_int("num_layers", num_layers)
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an "
                f"element being zeroed, got {dropout!r}"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                stacklevel=3,
            )
        if not is_int(proj_size) or proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if init not in INIT_NAMES:
            raise ValueError(f"unknown init {init!r}; allowed: {', '.join(INIT_NAMES)}")
        if init in GATE_INITS and self.MODE == "RNN":
            raise ValueError(
                f"init {init!r} sets gate biases: it applies to LSTM and GRU; allowed for RNN: "
                f"{', '.join(n for n in INIT_NAMES if n not in GATE_INITS)}"
            )
        if init == "chrono":
            if t_max is None:
                raise ValueError(
                    "init 'chrono' needs t_max, the longest dependency expected (e.g. the sequence length)"
                )
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
        # A generator draws on its own device: build there, initialise, then move (e.g. a CPU generator
        # for a CUDA layer, so the same seed gives the same weights on every device).
        target = None if device is None else torch.device(device)
        staged = (
            generator is not None
            and target is not None
            and target.type != "meta"
            and target.type != generator.device.type
        )
        factory = {"device": generator.device if staged else device, "dtype": dtype}
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
                self.register_parameter(
                    f"residual_weight_l{layer}", nn.Parameter(torch.empty(out_size * D, layer_input, **factory))
                )
        self._extra_parameters(factory)
        self._init_flat_weights()
        self.reset_parameters(generator)
        if staged:
            self.to(target)

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

    def layer_parameters(
        self, layer: int, direction: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction."""
        return tuple(
            getattr(self, self._name(stem, layer, direction), None)  # type: ignore[return-value]
            for stem in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )

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
        raise RuntimeError(
            f"torch.jit.script cannot compile bptt.{type(self).__name__} (a Python time loop; "
            "TorchScript is deprecated): use torch.compile(model), or "
            "bptt.convert(model, back=True) for torch.nn layers to script"
        )

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

    def _unbatch_state(self, state: State) -> State:
        return state.squeeze(1)

    # -- forward ---------------------------------------------------------------------------
    @torch.compiler.disable
    def forward(self, input: torch.Tensor | PackedSequence, hx: State | None = None) -> tuple[Any, State]:
        if torch.jit.is_tracing():
            raise RuntimeError(
                f"torch.jit.trace cannot record bptt.{type(self).__name__} (its time loop is Python): "
                "use torch.compile(model), or bptt.convert(model, back=True) for torch.nn layers"
            )
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
            engine = self.last_engine = self.engine_for(x, packed=True)
            if engine == "vendor":
                packed, h_n = self._run_vendor(data, state, batch_sizes)
            else:
                output, h_n = self._run_stack(x, lengths, state, engine)
                packed = pack_padded_sequence(output, lengths_tensor).data
            return (
                PackedSequence(packed, batch_sizes, sorted_indices, unsorted_indices),
                self.permute_hidden(h_n, unsorted_indices),
            )
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
