"""The one base of every bptt recurrent layer: arguments, parameters, states, the forward (input,
packed sequences and states in, outputs out), the checks torch.nn makes and ``extra_repr``.

A layer is a stack of ``num_layers`` layers, each run in one or two directions
over a time-major input (``bptt.modules.timeloop`` runs them). What a cell adds:

- ``MODE``: the cell family ("RNN", "LSTM", "INDRNN", ...); ``mode`` is torch.nn's own
  attribute and exists on the torch twins only;
- ``STATE_NAMES``: the state it carries, the first being the layer's output h_t, e.g.
  ``("h",)``, ``("h", "c")`` for an LSTM, ``("y", "z")`` for coRNN; a state of one part
  is a tensor, of two a tuple. ``record_gradients`` records the first as ``hidden`` and
  a second as ``cell``. ``OUTPUT_IS_STATE = False`` where the output is read from the state
  rather than being its first part (the LRU: y_t = Re(C x_t) + D u_t);
- ``_parameter_shapes(layer, layer_input)``: the stems and shapes of one layer and direction's
  parameters, named ``{stem}_l{layer}`` (``_reverse`` for the reverse direction), and
  ``_initialise(generator)``, which draws their values;
- ``_engine_call``: one layer and direction on a named engine (``ENGINE_CHOICES``).

Parameters are made on the meta device and then given storage with the public
``to_empty``, so building draws nothing from torch's global random state: every value
comes from ``generator``. The torch twins (``bptt.modules.twins``) make theirs through
``torch.nn.RNNBase.__init__`` itself.

How a forward runs over time, and on which engine, is ``bptt.modules.timeloop``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from bptt.checks import positive_int
from bptt.engine import DEFAULT_ENGINE
from bptt.modules.states import StateContract
from bptt.modules.timeloop import State, TimeLoop


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")


def dropout_warning(dropout: float, num_layers: int) -> None:
    """torch.nn's warning for dropout on a single layer, in its words."""
    warnings.warn(
        "dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
        f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
        stacklevel=4,
    )


class RecurrentBase(TimeLoop, StateContract, nn.Module):
    """What every bptt recurrent layer shares (see the module docstring)."""

    MODE = "RNN"
    GATES = 1
    STATE_NAMES: tuple[str, ...] = ("h",)
    #: Whether the layer's output at step t is the first part of its state (then a model may read its
    #: final state h_n instead of the last output).
    OUTPUT_IS_STATE = True
    #: The engines this cell runs on, by name ("auto" picks among them per call).
    ENGINE_CHOICES: tuple[str, ...] = ("auto", "fast", "reference")

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
        residual: bool = False,
        engine: str | None = None,
        truncate: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
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
        engine = DEFAULT_ENGINE if engine is None else engine
        if engine not in self.ENGINE_CHOICES:
            raise ValueError(f"unknown engine {engine!r}; allowed: {', '.join(self.ENGINE_CHOICES)}")
        if truncate is not None:
            positive_int("truncate", truncate)
        self._create_module(
            input_size, hidden_size, num_layers, bias, batch_first, float(dropout), bidirectional, dtype
        )
        self.residual = residual
        self.engine = engine
        self.truncate = truncate
        meta = {"device": "meta", "dtype": dtype}
        out_size, D = self.output_size, self.num_directions
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else out_size * D
            if residual and layer_input != out_size * D:
                # Projection of the skip path where the sizes differ (layer 0 only).
                self.register_parameter(
                    f"residual_weight_l{layer}", nn.Parameter(torch.empty(out_size * D, layer_input, **meta))
                )
        self._extra_parameters(meta)
        # A generator draws on its own device: give the parameters storage there, initialise, then
        # move (e.g. a CPU generator for a CUDA layer, so the same seed gives the same weights on
        # every device).
        target = torch.get_default_device() if device is None else torch.device(device)
        staged = generator is not None and target.type not in ("meta", generator.device.type)
        self.to_empty(device=generator.device if staged else target)
        self.reset_parameters(generator)
        if staged:
            self.to(target)

    def _create_module(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        dtype: torch.dtype | None,
    ) -> None:
        """Start the module and make every layer and direction's parameters on the meta device."""
        nn.Module.__init__(self)
        if dropout > 0 and num_layers == 1:
            dropout_warning(dropout, num_layers)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, bidirectional
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else self.output_size * self.num_directions
            for direction in range(self.num_directions):
                for stem, shape in self._parameter_shapes(layer, layer_input):
                    empty = torch.empty(shape, device="meta", dtype=dtype)
                    self.register_parameter(self._name(stem, layer, direction), nn.Parameter(empty))

    def _parameter_shapes(self, layer: int, layer_input: int) -> list[tuple[str, tuple[int, ...]]]:
        """(stem, shape) of each parameter of one layer and direction that reads ``layer_input`` features."""
        raise NotImplementedError

    # -- what the layer is -----------------------------------------------------------------
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """The size of h_t."""
        return self.hidden_size

    @staticmethod
    def _name(stem: str, layer: int, direction: int = 0) -> str:
        return f"{stem}_l{layer}{'_reverse' if direction else ''}"

    def _param(self, stem: str, layer: int, direction: int = 0) -> torch.Tensor:
        """The parameter ``stem`` of one layer and direction, one every layer of the cell has."""
        return getattr(self, self._name(stem, layer, direction))

    def _optional(self, stem: str, layer: int, direction: int = 0) -> torch.Tensor | None:
        """The parameter ``stem`` of one layer and direction where the layer has it (a bias), else None."""
        return getattr(self, self._name(stem, layer, direction), None)

    def _extra_parameters(self, factory: dict[str, Any]) -> None:
        """Parameters beyond the per-layer ones (e.g. a learned activation slope), made with ``factory``."""

    @property
    def truncate(self) -> int | None:
        """Truncated BPTT: cut the gradient every ``truncate`` steps (None: full BPTT).

        The state is carried across the cut, detached: each layer runs on
        chunks of ``truncate`` steps, its state passed on with ``.detach()``.
        """
        return self._truncate

    @truncate.setter
    def truncate(self, value: int | None) -> None:
        if value is not None:
            positive_int("truncate", value)
        self._truncate = value

    def layer_parameters(self, layer: int, direction: int = 0) -> tuple[torch.Tensor | None, ...]:
        """The parameters of one layer and direction, in the order of ``_parameter_shapes``. A cell
        whose tuple has a fixed place for an optional parameter (a bias) holds None there when the
        layer lacks it."""
        layer_input = self.input_size if layer == 0 else self.output_size * self.num_directions
        return tuple(
            getattr(self, self._name(stem, layer, direction)) for stem, _ in self._parameter_shapes(layer, layer_input)
        )

    def input_weight(self, layer: int, direction: int = 0) -> torch.Tensor:
        """The weight that reads the layer's input (its gradient is the per-layer ``dL/dW_ih``)."""
        return getattr(self, self._name("weight_ih", layer, direction))

    def recurrent_weight(self, layer: int, direction: int = 0) -> torch.Tensor:
        """The trained tensor that carries the recurrence (its gradient is the per-layer ``dL/dW_hh``)."""
        return getattr(self, self._name("weight_hh", layer, direction))

    @property
    def projection_width(self) -> int:
        """The width of the input projection a step watch is shown (``watch.input``'s ``projected``):
        G * hidden_size for G gate blocks (the LRU: its state_size)."""
        return self.GATES * self.hidden_size

    def recurrent_matrix(self, layer: int, direction: int = 0) -> torch.Tensor:
        """What multiplies h_{t-1} (a matrix, or a vector for a diagonal recurrence), for Pascanu's bound."""
        return self.recurrent_weight(layer, direction)

    def step(self, layer: int, x: torch.Tensor, state: State, direction: int = 0) -> State:
        """One step of one layer and direction from x_t (B, I) and the state, in plain autograd (the
        Jacobian diagnostics differentiate it)."""
        raise NotImplementedError

    def constrain_(self) -> None:
        """Put the parameters back inside the set the cell allows; the Trainer calls it after each
        optimiser step (``bptt.modules.constrain``). Cells without a constraint do nothing."""

    def parameter_groups(self) -> list[tuple[list[nn.Parameter], float]]:
        """(parameters, learning-rate factor) for parameters the cell trains at a rate of its own;
        the rest train at the run's rate."""
        return []

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw every parameter from ``generator`` (torch's global one when None). Meta tensors hold no
        values: a layer on the meta device is left as it is."""
        if any(p.is_meta for p in self.parameters()):
            return
        self._initialise(generator)
        for name, p in self.named_parameters():
            if name.startswith("residual_weight_"):
                bound = math.sqrt(6.0 / (p.shape[0] + p.shape[1]))
                p.uniform_(-bound, bound, generator=generator)

    def _initialise(self, generator: torch.Generator | None) -> None:
        raise NotImplementedError

    def __prepare_scriptable__(self) -> nn.Module:
        raise RuntimeError(
            f"torch.jit.script cannot compile bptt.{type(self).__name__} (a Python time loop; "
            "TorchScript is deprecated): use torch.compile(model), or "
            "bptt.convert(model, back=True) for torch.nn layers to script"
        )

    # -- forward ---------------------------------------------------------------------------
    @torch.compiler.disable
    def forward(self, input: torch.Tensor | PackedSequence, hx: State | None = None) -> tuple[Any, State]:
        if torch.jit.is_tracing():
            raise RuntimeError(
                f"torch.jit.trace cannot record bptt.{type(self).__name__} (its time loop is Python): "
                "use torch.compile(model), or bptt.convert(model, back=True) for torch.nn layers"
            )
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

    def _run_vendor(
        self, x: torch.Tensor, state: State, batch_sizes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        raise RuntimeError(f"bptt.{type(self).__name__} has no vendor kernel")

    # -- how it prints ---------------------------------------------------------------------
    def _repr_sizes(self) -> str:
        """The part of ``extra_repr`` between the sizes and ``num_layers`` (an LSTM's projection)."""
        return ""

    def _repr_settings(self) -> str:
        """The part of ``extra_repr`` between ``bidirectional`` and ``residual`` (the init)."""
        return ""

    def _repr_cell(self) -> str:
        """The cell's own settings, at the end of ``extra_repr``."""
        return ""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}" + self._repr_sizes()
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
        s += self._repr_settings()
        if self.residual:
            s += ", residual=True"
        if self.engine != DEFAULT_ENGINE:
            s += f", engine={self.engine!r}"
        if self.truncate is not None:
            s += f", truncate={self.truncate}"
        return s + self._repr_cell()
