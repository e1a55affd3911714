"""The torch twins' half of the base: ``bptt.RNN``, ``bptt.LSTM`` and ``bptt.GRU`` are
``torch.nn.RNNBase`` layers as well as bptt layers.

``TorchTwin.__init__`` runs ``torch.nn.RNNBase.__init__`` itself (on the meta device, so that
its ``reset_parameters`` draws nothing; the parameters get storage through the public
``to_empty`` and their values from the layer's generator), so every attribute torch's own code
reads (``mode``, ``_flat_weights`` and its names, ``_all_weights``) is torch's, made and kept by
torch: ``nn.RNNBase.__setattr__`` and ``_apply`` keep the flat weights in step when a weight is
assigned, loaded with ``assign=True`` or moved. bptt writes none of torch's private attributes
and reads its weights through the public ``all_weights``. Same constructor arguments, shapes,
state-dict names (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``,
``*_reverse``, ``weight_hr_l{k}``), gate order and error contract as torch.nn, so
``ours.load_state_dict(theirs.state_dict())`` gives the same outputs and gradients;
``isinstance(layer, nn.RNNBase)``, ``flatten_parameters()`` and ``all_weights`` are torch's.

The only value bptt sets that torch also sets is ``mode`` for the activations torch.nn lacks
("RNN_SIGMOID", ...; torch.nn.RNNBase.__init__ accepts only its own modes and is given
"RNN_TANH", whose parameter shapes they share). On top of the base's arguments: ``init``,
``init_scale``, ``t_max`` and ``proj_size`` (LSTM).

What "auto" runs (``_auto_engine``): torch.nn's own kernel (cuDNN on a GPU, oneDNN or native
code on a CPU) when no per-step record is open and the vendor has the cell (on a CPU, where
bptt's RNN and GRU beat torch.nn's, only for the LSTM); the probe for a record that needs only
dL/dh_t (on a GPU; on a CPU, for the LSTM); on a GPU our Triton kernels for the simple RNN
where they run; "fast" otherwise. "fast", "reference", "probe", "triton" and "vendor" can be
asked for by name.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bptt.checks import is_int
from bptt.engine import ENGINE_NAMES, cells, compiled, triton_rnn
from bptt.engine.choice import choose
from bptt.engine.memory import fits, kept_bytes
from bptt.engine.recording import GradientRecord
from bptt.engine.vendor import run_stack
from bptt.modules.base import RecurrentBase
from bptt.modules.init import GATE_INITS, INIT_NAMES, chrono_bias, init_layer, pytorch_uniform
from bptt.modules.timeloop import State

#: The modes torch.nn's own kernels run (cuDNN, oneDNN, native).
VENDOR_MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
#: The dtypes of torch.nn's output and final states under autocast, by what decides them (see
#: ``TorchTwin._autocast_dtypes``); None where torch's kernel refuses the case.
_AUTOCAST_DTYPES: dict[tuple[Any, ...], tuple[torch.dtype, ...] | None] = {}


class TorchTwin(RecurrentBase, nn.RNNBase):
    """The shared machinery of ``bptt.RNN``, ``bptt.LSTM`` and ``bptt.GRU`` (see the module docstring)."""

    ENGINE_CHOICES = ENGINE_NAMES

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
        **common: Any,
    ) -> None:
        if not is_int(proj_size) or proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if is_int(hidden_size) and proj_size >= hidden_size:
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
        self.requested_proj_size = proj_size
        self.init = init
        self.init_scale = float(init_scale)
        self.t_max = t_max
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, **common)

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
        """torch.nn.RNNBase.__init__ itself, on the meta device (its reset_parameters then draws nothing)."""
        mode = self._torch_mode()
        nn.RNNBase.__init__(
            self,
            mode if mode in VENDOR_MODES else "RNN_TANH",  # the same shapes as every simple RNN
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            self.requested_proj_size,
            device="meta",
            dtype=dtype,
        )
        self.mode = mode
        del self.requested_proj_size  # torch.nn.RNNBase's proj_size holds it now

    # -- what the layer is -----------------------------------------------------------------
    def _torch_mode(self) -> str:
        """torch.nn's name for the layer ("RNN_TANH", "LSTM", "GRU"; "RNN_SIGMOID" and the like for
        the activations torch.nn lacks)."""
        return self.MODE

    @property
    def output_size(self) -> int:
        """The size of h_t: ``proj_size`` with a projection, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    def layer_parameters(
        self, layer: int, direction: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction."""
        weight_ih, weight_hh = self._param("weight_ih", layer, direction), self._param("weight_hh", layer, direction)
        return (
            weight_ih,
            weight_hh,
            self._optional("bias_ih", layer, direction),
            self._optional("bias_hh", layer, direction),
        )

    def step(self, layer: int, x: torch.Tensor, state: State, direction: int = 0) -> State:
        """One step of the cell (``bptt.engine.cells.step``) from x_t (B, I) and the state, in plain
        autograd (the RNN adds its activation, the LSTM its projection)."""
        return cells.step(self.MODE, x, state, *self.layer_parameters(layer, direction))

    def flatten_parameters(self) -> None:
        """torch.nn.RNNBase's: on a GPU with cuDNN, the weights the vendor kernel reads become one
        block of memory; elsewhere, and for cells the vendor does not run, a no-op."""
        if self.mode in VENDOR_MODES:
            nn.RNNBase.flatten_parameters(self)

    def _weights(self) -> list[torch.Tensor]:
        """Every weight torch.nn's kernel reads, in its order (the public ``all_weights``, flattened)."""
        return [weight for group in self.all_weights for weight in group]

    # -- initialisation --------------------------------------------------------------------
    def _initialise(self, generator: torch.Generator | None) -> None:
        recurrent = [p for n, p in self.named_parameters() if n.startswith(("weight_", "bias_"))]
        pytorch_uniform(recurrent, self.hidden_size, generator)
        if self.init not in ("pytorch", *GATE_INITS):
            for layer in range(self.num_layers):
                for direction in range(self.num_directions):
                    w_ih, w_hh, b_ih, b_hh = self.layer_parameters(layer, direction)
                    biases = [b for b in (b_ih, b_hh) if b is not None]
                    init_layer(self.init, w_ih, w_hh, biases, self.GATES, self.init_scale, generator)
        self._reset_extra(generator)
        if self.init == "chrono" and self.bias:
            for layer in range(self.num_layers):
                for direction in range(self.num_directions):
                    _, _, b_ih, b_hh = self.layer_parameters(layer, direction)
                    b_ih.zero_()
                    b_hh.zero_()
                    self._chrono(b_ih, chrono_bias(self.hidden_size, self.t_max, generator).to(b_ih))

    def _reset_extra(self, generator: torch.Generator | None) -> None:
        """The cell's own parameters and biases, after the weights (e.g. a forget-gate bias)."""

    def _chrono(self, bias_ih: torch.Tensor, keep: torch.Tensor) -> None:
        """Put the chrono biases ``keep`` (one per unit) into a layer's input-side bias."""
        raise NotImplementedError

    # -- which engine ----------------------------------------------------------------------
    def _auto_engine(
        self, input: torch.Tensor | None, recording: bool, record: GradientRecord | None, packed: bool
    ) -> str:
        """``bptt.engine.choice``'s measured table, for this layer, ``input`` and what is open."""
        like = input if input is not None else self._weights()[0]
        cuda = like.device.type == "cuda"
        wants = "nothing"
        if recording:
            # Without an open record, what record_gradients records by default: dL/dc_t too for an LSTM.
            updates, cells = (False, True) if record is None else (record.updates, record.cells)
            wants = "updates" if updates else ("cells" if cells and self.MODE == "LSTM" else "hidden")
        if cuda:
            kernels = (
                self.MODE == "RNN"
                and triton_rnn.available(like)
                and triton_rnn.supports(self.activation, self.hidden_size)
            )
            ours = "triton" if kernels else "fast"
        else:
            ours = "compiled" if compiled.runs_on(like) else "fast"
        return choose(
            like.device.type,
            self.MODE,
            vendor_has=self.mode in VENDOR_MODES,
            whole_stack=self.mode in VENDOR_MODES and not self.residual and self.truncate is None,
            packed=packed,
            wants=wants,
            ours=ours,
            fits=self._stored_steps_fit(input),
        )

    #: Below this many bytes of stored steps, the free memory is not read.
    SMALL_STORE = 1 << 28

    def _stored_steps_fit(self, input: torch.Tensor | None) -> bool:
        """Whether the storing engines' values for ``input`` (T, B, I) fit in the free memory."""
        if input is None or input.dim() != 3:
            return True
        seq_len, batch = input.shape[:2]
        per_layer = kept_bytes(
            self.MODE, "compiled", seq_len, batch, self.hidden_size, self.output_size, input.element_size()
        )
        needed = per_layer * self.num_layers * self.num_directions
        return needed < self.SMALL_STORE or fits(needed, input.device)

    def _autocast_dtypes(
        self, x: torch.Tensor, state: State, lengths: list[int] | None
    ) -> tuple[torch.dtype, ...] | None:
        """The dtypes torch.nn's kernel gives the output and each final state under the autocast open
        for ``x``'s device, or None when none is open (or torch refuses the case).

        torch's answer differs by device, cell and path (on a CPU in bfloat16: the RNN and the LSTM
        give bfloat16, the GRU float32, and a packed LSTM whose sequences differ in length float32),
        so it is asked, not copied: its kernel runs once on zeros of the same kind (one step of one
        sequence, or two sequences of different lengths; no dropout, no gradient), and the answer is
        kept for every later forward of that kind.
        """
        device = x.device.type
        if not torch.is_autocast_enabled(device):
            return None
        states = state if isinstance(state, tuple) else (state,)
        mode = self.mode if self.mode in VENDOR_MODES else "RNN_TANH"  # the same weights, in the same layout
        uneven = lengths is not None and len(set(lengths)) > 1
        key: tuple[Any, ...] = (device, torch.get_autocast_dtype(device), mode, lengths is not None, uneven)
        key += (self.num_layers, self.bidirectional, self.proj_size > 0, self.bias, x.dtype)
        key += (*(s.dtype for s in states), self._weights()[0].dtype)
        if key not in _AUTOCAST_DTYPES:
            sizes = [2, 1] if uneven else [1]
            rows = sizes[0]
            one = tuple(s.new_zeros(s.shape[0], rows, s.shape[-1]) for s in states)
            data = x.new_zeros(sum(sizes), x.shape[-1]) if lengths is not None else x.new_zeros(1, 1, x.shape[-1])
            try:
                with torch.no_grad():
                    output, final = run_stack(
                        mode,
                        data,
                        one if isinstance(state, tuple) else one[0],
                        self._weights(),
                        self.bias,
                        self.num_layers,
                        0.0,
                        False,
                        self.bidirectional,
                        None if lengths is None else torch.tensor(sizes),
                    )
            except RuntimeError:  # e.g. oneDNN's LSTM in float16: torch.nn cannot run it either
                _AUTOCAST_DTYPES[key] = None
            else:
                finals = final if isinstance(final, tuple) else (final,)
                _AUTOCAST_DTYPES[key] = (output.dtype, *(f.dtype for f in finals))
        return _AUTOCAST_DTYPES[key]

    def _run_vendor(
        self, x: torch.Tensor, state: State, batch_sizes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        """torch.nn's kernel over the whole stack (time-major ``x``, or packed data with ``batch_sizes``)."""
        return run_stack(
            self.mode,
            x,
            state,
            self._weights(),
            self.bias,
            self.num_layers,
            self.dropout,
            self.training,
            self.bidirectional,
            batch_sizes,
        )

    # -- how it prints ---------------------------------------------------------------------
    def _repr_sizes(self) -> str:
        return f", proj_size={self.proj_size}" if self.proj_size else ""

    def _repr_settings(self) -> str:
        if self.init == "pytorch":
            return ""
        s = f", init={self.init!r}"
        if self.t_max is not None:
            s += f", t_max={self.t_max}"
        if self.init_scale != 1.0:
            s += f", init_scale={self.init_scale}"
        return s
