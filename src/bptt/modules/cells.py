"""The cells bptt builds by name: one registry entry per cell, everything the rest of bptt asks of it.

``CELLS`` maps a name ("rnn", "lstm", "indrnn", ...) to a ``CellSpec``. The config's ``cell``
choices, ``--cell NAME`` in ``train``, ``diagnose`` and sweeps, the model builder, the memory
estimate, the Trainer's constraint and parameter groups, what ``record_gradients`` names its
series, and the verdict's words all read the entry; nothing else in bptt lists the cells.

Adding a cell is three things:

1. **An engine** in ``bptt.engine`` (``bptt/engine/NAME.py``): a plain autograd loop over one
   layer and direction (the reference, which shows each step to a ``watch`` as
   ``bptt.engine.reference`` describes: ``watch.input(x, projected)`` once, then
   ``watch.step(t, h_prev, recurrent, h, c)``), and where autograd over the loop is slow, a
   hand-written backward (a ``torch.autograd.Function``) that puts dL/dh_t (and a second state's
   gradient) into the ``LayerRecorders`` it is given, beside a float64 gradcheck and a parity test
   against its reference loop.
2. **A layer** in ``bptt.modules`` (``bptt/modules/NAME.py``), a ``RecurrentBase`` subclass:
   ``MODE`` (the name in capitals), ``STATE_NAMES`` (what the state holds: ``("h",)``,
   ``("h", "c")``, ``("y", "z")``; the first is the layer's output, and ``record_gradients``
   records the first as ``hidden`` and a second as ``cell``), ``_state_sizes()`` where a part is
   not ``hidden_size`` wide, ``_parameter_shapes(layer, layer_input)``, ``_initialise(generator)``
   (every value drawn from the generator), ``step(layer, x, state)`` (one plain step, for the
   Jacobian diagnostics), ``_engine_call(engine, layer, direction, x, state, record, watch)``
   (``ENGINE_CHOICES`` lists the engine names; ``_auto_engine`` picks one for "auto", by default
   "fast", or ``GPU_ENGINE`` on a GPU), and
   where they apply ``constrain_()`` (run after each optimiser step), ``parameter_groups()``
   (parameters at a learning rate of their own), ``DIAGONAL = True`` (the step Jacobian is
   diagonal: the diagnostics then report its exact spectrum from ``step``; ``FIXED_DIAGONAL``
   when ``recurrent_matrix`` is the vector of per-unit weights, as IndRNN's u), ``ORTHOGONAL =
   True`` (W_hh orthogonal: the diagnostics say what the activation alone does),
   ``input_weight``/``recurrent_weight`` (the trained tensors whose gradients are the per-layer
   dL/dW_ih and dL/dW_hh) and ``recurrent_matrix`` (what multiplies h_{t-1}) where they are not
   ``weight_ih_l{k}`` and ``weight_hh_l{k}``. A complex state is recorded as the norm of its real
   and imaginary parts together. Its docstring gives the equation, defaults and source.
3. **An entry** below: ``CELLS.add(NAME, CellSpec(...))`` with its layer, a one-line
   ``description``, ``mechanism`` (how it keeps the gradient, as the verdict says it), the
   ``activations`` it takes (the first is its default), its own ``settings`` (each a
   ``CellSetting``: a name, default, choices or positivity, one line of help; they become
   ``cell_options`` on the run's config, ``--NAME`` flags and ``--cell-option NAME=VALUE``),
   named ``presets`` of those settings (a preset named as a task, e.g. "adding", is used for that
   task unless the run names another), ``defaults`` (run settings it trains well with, used
   where a run and its task leave them unset: ``lr``, ``num_layers``, ...), ``stored_per_step``
   (floats per unit and step a training step keeps, for the memory estimate), and
   ``uses_t_max`` where the layer takes the run's ``t_max`` (default: the task's length).

Then add the layer to the README's table of cells, with its equation, defaults and source.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bptt.engine import ACTIVATIONS
from bptt.engine.indrnn import INDRNN_ACTIVATIONS
from bptt.modules.base import RecurrentBase
from bptt.modules.cornn import CORNN_PRESETS, CoRNN
from bptt.modules.exprnn import EXPRNN_ACTIVATIONS, ORTHOGONAL_INITS, ORTHOGONAL_MAPS, ExpRNN
from bptt.modules.gru import GRU
from bptt.modules.indrnn import IndRNN
from bptt.modules.lnlstm import LayerNormLSTM
from bptt.modules.lru import LR_FACTOR, LRU, LRU_PRESETS, MAX_PHASE, R_MAX, R_MIN
from bptt.modules.lstm import LSTM
from bptt.modules.minrnn import MinGRU, MinLSTM
from bptt.modules.rnn import RNN
from bptt.registry import Registry

Value = bool | int | float | str


@dataclass(frozen=True)
class CellSetting:
    """One setting of a cell's own: its name, default and what it accepts."""

    name: str
    default: Value
    help: str
    choices: tuple[str, ...] | None = None
    above: float | None = None  # numbers must lie above this
    at_least: float | None = None  # ... or at least this
    below: float | None = None  # ... and below this

    def check(self, value: Any) -> Value:
        """``value`` as this setting's type (text from a flag is converted); ValueError saying what is allowed."""
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(f"must be one of {', '.join(self.choices)}")
            return value
        default = self.default
        if isinstance(default, bool):
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        if isinstance(default, str):  # free text: a text setting without choices
            if not isinstance(value, str):
                raise ValueError("must be text")
            return value
        kind = type(default)
        try:
            number = kind(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or (kind is int and isinstance(value, float) and value != number):
            raise ValueError(f"must be {'an integer' if kind is int else 'a number'}")
        low = (self.above is not None and number <= self.above) or (
            self.at_least is not None and number < self.at_least
        )
        if not math.isfinite(number) or low or (self.below is not None and number >= self.below):
            bounds = [f"above {self.above:g}"] if self.above is not None else []
            bounds += [f"at least {self.at_least:g}"] if self.at_least is not None else []
            bounds += [f"below {self.below:g}"] if self.below is not None else []
            raise ValueError("must be a finite number" + (" " + " and ".join(bounds) if bounds else ""))
        return number


@dataclass(frozen=True)
class CellSpec:
    """Everything bptt needs to know of one cell (see the module docstring)."""

    layer: type[RecurrentBase]
    description: str
    mechanism: str
    activations: tuple[str, ...] = ()
    settings: tuple[CellSetting, ...] = ()
    presets: Mapping[str, Mapping[str, Value]] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    stored_per_step: int = 4
    uses_t_max: bool = False
    #: The run settings shared with other cells that it takes beyond the common ones (the torch
    #: twins: init, init_scale, t_max for init "chrono"; the LSTM: forget_bias).
    options: frozenset[str] = frozenset()
    #: Builds the layer's own keyword arguments from the run's values (``layer_arguments``).
    arguments: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None

    def setting(self, name: str) -> CellSetting | None:
        return next((s for s in self.settings if s.name == name), None)

    def options_for(self, preset: str | None, given: Mapping[str, Any]) -> dict[str, Value]:
        """The cell's settings for a run: the defaults, then the preset's values, then ``given``."""
        values: dict[str, Any] = {s.name: s.default for s in self.settings}
        if preset is not None and preset in self.presets:
            values.update(self.presets[preset])
        values.update(given)
        return values

    def layer_arguments(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The layer's own keyword arguments from a run's values (``activation``, ``t_max``, the
        ``cell_options``, ...)."""
        if self.arguments is not None:
            return self.arguments(values)
        kwargs: dict[str, Any] = dict(values.get("cell_options") or {})
        if self.activations:
            kwargs["activation"] = values["activation"]
        if self.uses_t_max:
            kwargs["t_max"] = values.get("t_max")
        return kwargs


def _twin_arguments(values: Mapping[str, Any]) -> dict[str, Any]:
    chrono = values["init"] == "chrono"
    return {"init": values["init"], "init_scale": values["init_scale"], "t_max": values["t_max"] if chrono else None}


CELLS: Registry[CellSpec] = Registry("cell")
TWIN_OPTIONS = frozenset({"init", "init_scale", "t_max"})
GATED = "gated cell: the forget/update gate sets the decay, so the bound gamma^k sigma_max^k does not apply"

CELLS.add(
    "rnn",
    CellSpec(
        RNN,
        "Elman RNN, h = act(x W_ih^T + h W_hh^T + b)",
        "the product of act'(a_t) W_hh over the lag sets the decay (Pascanu's bound)",
        activations=("tanh", *(a for a in ACTIVATIONS.names() if a != "tanh")),
        defaults={"lr": 1e-3},
        stored_per_step=4,
        options=TWIN_OPTIONS | {"negative_slope"},
        arguments=lambda v: {
            **_twin_arguments(v),
            "activation": v["activation"],
            "negative_slope": v["negative_slope"],
        },
    ),
)
CELLS.add(
    "lstm",
    CellSpec(
        LSTM,
        "LSTM (torch.nn's gates i, f, g, o)",
        GATED,
        defaults={"lr": 1e-2},
        stored_per_step=7,
        options=TWIN_OPTIONS | {"forget_bias"},
        arguments=lambda v: {**_twin_arguments(v), "forget_bias": v["forget_bias"]},
    ),
)
CELLS.add(
    "gru",
    CellSpec(
        GRU,
        "GRU (torch.nn's gates r, z, n)",
        GATED,
        defaults={"lr": 1e-2},
        stored_per_step=6,
        options=TWIN_OPTIONS,
        arguments=_twin_arguments,
    ),
)
CELLS.add(
    "indrnn",
    CellSpec(
        IndRNN,
        "IndRNN (Li et al. 2018), h = act(x W_ih^T + u * h + b), |u| <= 2^(1/t_max)",
        "IndRNN: each unit keeps its state through its own weight u_i (|u_i| <= M^(1/t_max), clamped "
        "after each step), so dh_t/dh_{t-1} = diag(act'(a_t) u) and an active ReLU unit carries its "
        "gradient |u_i|^k over k steps",
        activations=INDRNN_ACTIVATIONS,
        settings=(CellSetting("magnitude", 2.0, "IndRNN: |u| <= magnitude^(1/t_max) (the paper's M)", above=1.0),),
        defaults={"lr": 2e-4, "num_layers": 2, "batch_size": 32},
        stored_per_step=4,
        uses_t_max=True,
    ),
)
CELLS.add(
    "exprnn",
    CellSpec(
        ExpRNN,
        "expRNN (Lezcano-Casado & Martinez-Rubio 2019), W_hh = B exp(A) orthogonal throughout training",
        "expRNN: W_hh stays orthogonal (every singular value 1), so dh_t/dh_{t-1} = diag(act'(a_t)) W_hh "
        "shrinks a gradient only where act' < 1",
        activations=EXPRNN_ACTIVATIONS,
        settings=(
            CellSetting(
                "orthogonal_map", "matrix_exp", "exprnn: matrix_exp (expRNN) or cayley (scoRNN-style)", ORTHOGONAL_MAPS
            ),
            CellSetting(
                "orthogonal_init",
                "henaff",
                "exprnn: the base's init, henaff (copy) or cayley (MNIST)",
                ORTHOGONAL_INITS,
            ),
            CellSetting(
                "orthogonal_lr_scale", 0.1, "exprnn: the skew matrix's learning rate over the run's", above=0.0
            ),
        ),
        presets={
            "copy": {"orthogonal_init": "henaff"},
            "mnist": {"orthogonal_init": "cayley"},
            "pmnist": {"orthogonal_init": "cayley"},
        },
        defaults={"lr": 1e-3},
        stored_per_step=4,
    ),
)

CELLS.add(
    "cornn",
    CellSpec(
        CoRNN,
        "coRNN (Rusch & Mishra 2021), coupled damped oscillators (y, z) stepped with dt",
        "coRNN: each unit a damped oscillator whose state (y, z) moves by dt per step, so the gradient "
        "neither explodes nor decays exponentially with the lag (bounded below by the paper's theorem)",
        settings=(
            CellSetting("dt", 0.042, "cornn: the time step", above=0.0),
            CellSetting("gamma", 2.7, "cornn: the stiffness, pulling y back to 0", above=0.0),
            CellSetting("epsilon", 4.7, "cornn: the damping of z", above=0.0),
        ),
        presets=CORNN_PRESETS,
        defaults={"lr": 2.1e-3},
        stored_per_step=6,
    ),
)

CELLS.add(
    "lru",
    CellSpec(
        LRU,
        "LRU (Orvieto et al. 2023), x = lambda * x + gamma * B u, y = Re(C x) + D u, in blocks with a GLU",
        "LRU: a linear recurrence with a complex diagonal state, dx_t/dx_{t-1} = diag(lambda) at every step "
        "whatever the input, so dL/dx decays exactly as |lambda_n|^k per state value (|lambda| < 1, trained, "
        "started on a ring near 1)",
        settings=(
            CellSetting("state_size", 0, "LRU: complex state values N per block (0: hidden_size)", at_least=0),
            CellSetting("r_min", R_MIN, "LRU: smallest |lambda| of the ring init", at_least=0, below=1),
            CellSetting("r_max", R_MAX, "LRU: largest |lambda| of the ring init (at least r_min)", at_least=0, below=1),
            CellSetting("max_phase", MAX_PHASE, "LRU: largest phase of lambda at init (radians)", above=0),
            CellSetting("lr_factor", LR_FACTOR, "LRU: learning-rate factor of nu, theta, gamma and B", above=0),
        ),
        presets=LRU_PRESETS,
        defaults={"lr": 3e-3, "num_layers": 2},
        stored_per_step=12,
        arguments=lambda v: {
            **{k: val for k, val in v["cell_options"].items() if k != "state_size"},
            "state_size": v["cell_options"].get("state_size") or None,
        },
    ),
)
CELLS.add(
    "mingru",
    CellSpec(
        MinGRU,
        "minGRU (Feng et al. 2024), h = (1 - z) * h + z * g(W_h x), z = sigmoid(W_z x): no W_hh",
        "minGRU: the gates read x_t alone, so dh_t/dh_{t-1} = diag(1 - z_t): a unit carries its gradient "
        "through the product of its own retentions 1 - z, which the input sets (near 1 where it writes nothing)",
        defaults={"lr": 3e-3},
        stored_per_step=3,
        uses_t_max=True,
    ),
)
CELLS.add(
    "minlstm",
    CellSpec(
        MinLSTM,
        "minLSTM (Feng et al. 2024), h = f' * h + i' * g(W_h x), f' + i' = 1: no W_hh, no output gate",
        "minLSTM: the gates read x_t alone, so dh_t/dh_{t-1} = diag(f'_t): a unit carries its gradient "
        "through the product of its own normalised forget gates, which the input sets",
        defaults={"lr": 3e-3},
        stored_per_step=4,
        uses_t_max=True,
    ),
)

CELLS.add(
    "lnlstm",
    CellSpec(
        LayerNormLSTM,
        "layer-normalised LSTM (Ba et al. 2016) in Haste's formulation",
        "layer-normalised LSTM: " + GATED + "; layer normalisation fixes the scale of the gate inputs",
        settings=(CellSetting("forget_bias", 1.0, "lnlstm: the forget-gate bias at init"),),
        defaults={"lr": 1e-2},
        stored_per_step=12,
    ),
)

#: Adam's learning rate of each cell when a run and its task leave it unset: the gated cells learn the
#: shipped tasks fastest at 0.01 (with clipping at norm 1); a plain RNN at that rate does not learn
#: even ``digits``, and learns at 0.001; IndRNN trains at the paper's 2e-4.
CELL_LR = {name: CELLS.get(name).defaults["lr"] for name in CELLS.in_order()}
