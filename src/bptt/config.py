"""Run settings: one frozen, validated object, built the same way from YAML and the CLI.

Defaults live here and nowhere else. Unknown keys are rejected; every error
names the field and the allowed values.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from bptt import yamlfile
from bptt.cell_settings import (
    ALL_ACTIVATIONS,
    activations_by_cell,
    cell_label,
    check_cell_settings,
    fill_cell_settings,
    without_empty_added_fields,
)
from bptt.checks import available_devices, brief, has_device, is_torch_device
from bptt.engine import DEFAULT_SLOPE, ENGINE_NAMES
from bptt.modules.cells import CELL_LR, CELLS
from bptt.modules.init import GATE_INITS, INIT_NAMES
from bptt.tasks import TASKS, task_names

#: Settings that say how long or how often, not what is trained: a run keeps its
#: identity when they change, so ``--resume`` can extend a run to more steps.
SCHEDULE_FIELDS = frozenset(
    {"steps", "target_metric", "target_loss", "eval_every", "checkpoint_every", "record_every", "progress", "device"}
)
#: How a model is trained, not what is built: ``bptt diagnose`` (which measures a model as built) takes none.
TRAINING_FIELDS = frozenset(
    {
        "optimizer",
        "lr",
        "momentum",
        "batch_size",
        "steps",
        "target_metric",
        "target_loss",
        "clip_norm",
        "clip_value",
        "nonfinite",
        "eval_every",
        "record_every",
        "checkpoint_every",
        "progress",
    }
)
#: Internal settings: set by the program, never offered as an option or suggested for a typo.
INTERNAL_FIELDS = frozenset({"progress"})
#: Settings whose value when unset depends on another (the cell, or the task's recommendation):
#: no single default to show.
CELL_DEPENDENT_FIELDS = frozenset({"lr", "forget_bias", "steps", "activation", "num_layers"})
#: Seeds run from 0 to 2^32 - 1 (NumPy's range); every generator stream of a run is derived from one.
SEED_MAX = 2**32 - 1
#: Deeper stacks than this are refused before anything is built.
MAX_LAYERS = 1000

#: An LSTM's forget-gate bias when a config leaves it unset: the gate starts mostly open,
#: so the cell state (and its gradient) is carried across steps from the first update
#: (Gers et al. 2000; Jozefowicz et al. 2015). ``forget_bias: null`` keeps torch's init.
LSTM_FORGET_BIAS = 1.0

#: The settings checked against a registry's names rather than a ``Literal``: their allowed values.
NAMED_CHOICES = {"activation": ALL_ACTIVATIONS, "init": INIT_NAMES, "engine": ENGINE_NAMES, "cell": CELLS.in_order()}


class ConfigError(ValueError):
    """A bad setting: one line naming the field and what is allowed (``field``, when one setting is at fault)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def unknown_setting(key: object) -> str:
    """Why ``key`` is refused: the closest setting names, or where to find them all."""
    names = [name for name in RunConfig.model_fields if name not in INTERNAL_FIELDS]
    close = difflib.get_close_matches(str(key), names, n=1) if isinstance(key, str) else []
    hint = f"did you mean {close[0]!r}?" if close else "the settings are listed by `bptt train --help`"
    return f"unknown setting {brief(key)}; {hint}"


def field_choices(name: str) -> tuple[str, ...] | None:
    """The values a named setting takes, when they form a fixed set (a ``Literal`` or a registry's names)."""
    if name in NAMED_CHOICES:
        return tuple(NAMED_CHOICES[name])
    annotation = RunConfig.model_fields[name].annotation
    return tuple(get_args(annotation)) if get_origin(annotation) is Literal else None


def recommended_settings(task: str) -> dict[str, Any]:
    """The run settings a task recommends (``Task.recommended``), for a task name or ``ucr:NAME``."""
    family = task.partition(":")[0] + ":" if ":" in task else task
    return dict(TASKS.get(family).recommended) if family in TASKS else {}


def _recommendations(name: str) -> str:
    """The tasks that recommend their own value of setting ``name``, for its description."""
    values = {task: TASKS.get(task).recommended[name] for task in TASKS if name in TASKS.get(task).recommended}
    if not values:
        return ""
    shown = ", ".join(f"{task.replace(':', ':NAME')} {value:g}" for task, value in values.items())
    return f"; a task's own recommendation first: {shown}"


def _by_cell(values: dict[str, float]) -> str:
    """``{"rnn": 1e-3, "lstm": 1e-2, "gru": 1e-2}`` as ``0.001 rnn, 0.01 lstm/gru``."""
    cells: dict[float, list[str]] = {}
    for cell, value in values.items():
        cells.setdefault(value, []).append(cell)
    return ", ".join(f"{value:g} {'/'.join(names)}" for value, names in cells.items())


class RunConfig(BaseModel):
    """Everything that defines a training run.

    Task: ``task`` (a registered name, or ``ucr:NAME``), ``seq_len`` and ``delay``
    (None: the task's default), ``task_variant``, ``task_options`` (options a task
    documents, e.g. ``negation_prob`` of sentiment), ``data_dir``, ``eval_size``.
    Model: ``cell``, ``activation`` and ``negative_slope`` (RNN), ``init`` and
    ``init_scale``, ``t_max`` (init chrono), ``forget_bias`` (LSTM), ``residual``, ``hidden_size``,
    ``num_layers``, ``dropout``, ``readout``, ``embedding_size`` (token tasks), ``engine``.
    Training: ``optimizer``, ``lr``, ``momentum``, ``batch_size``, ``steps``,
    ``target_metric`` (stop early once the validation metric reaches it), ``target_loss`` (once the
    validation loss is at or below it),
    ``clip_norm`` (global L2 norm) and ``clip_value`` (elementwise), ``nonfinite``
    (what a non-finite gradient does: "skip" the step and count it, or "raise"),
    ``tbptt`` (truncate backpropagation every K steps), ``eval_every``,
    ``record_every`` (record dL/dh_t every N steps; 0: never), ``checkpoint_every``, ``seed``,
    ``device``, ``progress`` (a progress bar on a terminal).

    Every float setting must be finite (nan, inf and values past float range such
    as 1e309 are refused).
    A setting left unset takes the task's recommendation where the task has one
    (``recommended_settings``: e.g. more steps for a long synthetic task), else the
    default below; ``lr`` left unset is the cell's (``CELL_LR``), and an LSTM's
    ``forget_bias`` left unset is ``LSTM_FORGET_BIAS``.
    Either way the value is set on the config, so its identity and its record say
    exactly what was trained.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    task: str = Field(default="adding", description="task name: " + ", ".join(task_names()))
    seq_len: int | None = Field(default=None, gt=0, description="sequence length T (default: the task's own)")
    delay: int | None = Field(
        default=None, ge=0, description="steps between the informative token and the end (sentiment)"
    )
    task_variant: str | None = Field(
        default=None, description="a task's named variant (adding: default, hochreiter, tcn)"
    )
    task_options: dict[str, bool | int | float | str] = Field(
        default_factory=dict, description="task-specific options, e.g. negation_prob=0 (sentiment)"
    )
    data_dir: str | None = Field(default=None, description="directory of data files for tasks that read them (mnist)")
    eval_size: int = Field(
        default=1000, gt=0, description="examples in the fixed validation and test sets of generated tasks"
    )

    cell: str = Field(default="rnn", description="recurrent cell: " + ", ".join(CELLS.in_order()))
    cell_options: dict[str, bool | int | float | str] = Field(
        default_factory=dict, description="the cell's own settings, e.g. magnitude=2 (indrnn); unset: its defaults"
    )
    cell_preset: str | None = Field(default=None, description="a named set of them (unset: the one named as the task)")
    activation: str = Field(default="tanh", description="activation (unset: the cell's): " + activations_by_cell())
    negative_slope: float = Field(
        default=DEFAULT_SLOPE, description="slope below zero of leaky_relu, initial slope of prelu"
    )
    init: str = Field(
        default="pytorch",
        description="weight init: pytorch, xavier, orthogonal, identity, kaiming; chrono (LSTM, GRU: gate biases)",
    )
    init_scale: float = Field(default=1.0, gt=0, description="gain of the init (identity: the diagonal value)")
    t_max: int | None = Field(
        default=None,
        ge=2,
        description="init chrono: the longest dependency expected (default: the task's sequence length)",
    )
    forget_bias: float | None = Field(
        default=None,
        description=f"LSTM forget-gate bias at init (unset: {LSTM_FORGET_BIAS:g}, or init chrono's; none: torch's init)",
    )
    residual: bool = Field(default=False, description="skip connections between stacked layers")
    hidden_size: int = Field(default=64, gt=0, description="hidden units per layer")
    num_layers: int = Field(default=1, gt=0, le=MAX_LAYERS, description="stacked recurrent layers")
    dropout: float = Field(default=0.0, ge=0, le=1, description="dropout between stacked layers")
    readout: Literal["last", "mean", "attention"] = Field(
        default="last", description="sequence summary: last, mean or attention"
    )
    embedding_size: int = Field(default=32, gt=0, description="token embedding size (token tasks)")
    engine: str | None = Field(
        default=None,
        description="BPTT engine: auto (default: the fastest that gives what is asked), fast, compiled, recompute, reference, probe, triton, vendor",
    )

    optimizer: Literal["adam", "sgd", "rmsprop"] = Field(default="adam", description="adam, sgd or rmsprop")
    lr: float = Field(
        default=CELL_LR["rnn"],
        gt=0,
        description="learning rate (unset: the cell's: " + _by_cell(CELL_LR) + _recommendations("lr") + ")",
    )
    momentum: float = Field(default=0.0, ge=0, description="momentum (sgd, rmsprop)")
    batch_size: int = Field(default=64, gt=0, description="examples per training step" + _recommendations("batch_size"))
    steps: int = Field(default=1000, gt=0, description="training steps (unset: 1000" + _recommendations("steps") + ")")
    target_metric: float | None = Field(
        default=None,
        description="stop once the validation metric reaches this value (mse: at or below; accuracy: at or above)",
    )
    target_loss: float | None = Field(
        default=None, description="stop once the validation loss is at or below this value"
    )
    clip_norm: float | None = Field(
        default=1.0, gt=0, description="clip the global gradient L2 norm to this value (none: no clipping)"
    )
    clip_value: float | None = Field(default=None, gt=0, description="clip each gradient element to [-v, v]")
    nonfinite: Literal["skip", "raise"] = Field(
        default="skip", description="a nan/inf gradient: skip the step (counted) or raise"
    )
    tbptt: int | None = Field(default=None, gt=0, description="truncate backpropagation every K steps")
    eval_every: int = Field(default=100, gt=0, description="evaluate on the validation set every N steps")
    record_every: int = Field(default=0, ge=0, description="record dL/dh_t at every time step every N steps (0: never)")
    checkpoint_every: int = Field(default=100, gt=0, description="write a checkpoint every N steps")
    seed: int = Field(default=0, ge=0, le=SEED_MAX, description="the one seed all randomness flows from")
    device: str = Field(default="cpu", description="torch device: cpu, cuda, ...")
    progress: bool = Field(default=True, description="progress bar on a terminal")

    @model_validator(mode="before")
    @classmethod
    def _unset_settings(cls, data: Any) -> Any:
        """Fill the settings left unset: the task's recommendations, the cell's learning rate, an LSTM's
        forget-gate bias."""
        if not isinstance(data, dict):
            return data
        task = data.get("task", cls.model_fields["task"].default)
        filled = {**(recommended_settings(task) if isinstance(task, str) else {}), **data}
        cell = filled.get("cell", cls.model_fields["cell"].default)
        fill_cell_settings(filled, cell, task)
        if cell == "lstm" and "forget_bias" not in filled and filled.get("init") != "chrono":
            filled["forget_bias"] = LSTM_FORGET_BIAS
        return filled

    @field_validator("clip_norm", "forget_bias", mode="before")
    @classmethod
    def _none_from_text(cls, value: Any) -> Any:
        """``none`` or ``null`` from the command line switches off a setting whose default is on."""
        return None if isinstance(value, str) and value.strip().lower() in ("none", "null") else value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        """Spelled as torch spells a device: whether this machine has it is checked where work starts."""
        if not is_torch_device(value):
            raise ValueError("must be a torch device such as cpu, cuda, cuda:1 or mps")
        return value

    @field_validator("activation", "init", "engine", "cell")
    @classmethod
    def _named(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A name from its registry (``NAMED_CHOICES``); ``engine`` may be left unset."""
        allowed = NAMED_CHOICES[str(info.field_name)]
        if value is not None and value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    @field_validator("task")
    @classmethod
    def _task(cls, value: str) -> str:
        family = value.partition(":")[0] + ":" if ":" in value else value
        if family not in TASKS:
            raise ValueError(f"must be one of {', '.join(task_names())}")
        return value

    @model_validator(mode="after")
    def _cell_settings(self) -> RunConfig:
        check_cell_settings(self)
        if self.forget_bias is not None and self.cell != "lstm":
            raise ValueError(f"forget_bias applies to cell 'lstm' only, got cell {self.cell!r}")
        if self.init in GATE_INITS and self.cell == "rnn":
            raise ValueError(f"init {self.init!r} sets gate biases: it applies to cells lstm and gru, not rnn")
        if self.init == "chrono" and self.forget_bias is not None:
            raise ValueError("forget_bias and init 'chrono' both set the forget-gate bias; give one")
        if self.momentum and self.optimizer == "adam":
            raise ValueError("momentum applies to optimizer sgd or rmsprop, not adam")
        return self

    # -- identity -------------------------------------------------------------------
    def identity(self) -> str:
        """A stable hash of what is trained (schedule fields excluded), the same in every process."""
        data = without_empty_added_fields({k: v for k, v in self.model_dump().items() if k not in SCHEDULE_FIELDS})
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def label(self) -> str:
        """A short human name: cell, activation and the remedies switched on."""
        parts = [self.activation if self.cell == "rnn" else self.cell]
        parts += cell_label(self)
        if self.init != "pytorch":
            parts.append(self.init if self.t_max is None else f"{self.init}{self.t_max}")
        if self.forget_bias is not None:
            parts.append(f"fb{self.forget_bias:g}")
        if self.clip_norm is not None:
            parts.append(f"clip{self.clip_norm:g}")
        if self.clip_value is not None:
            parts.append(f"clipv{self.clip_value:g}")
        if self.residual:
            parts.append("residual")
        if self.readout != "last":
            parts.append(self.readout)
        if self.num_layers > 1:
            parts.append(f"x{self.num_layers}")
        return "+".join(parts)


def _problem(error: ValidationError) -> tuple[str | None, str]:
    """The setting at fault in the first problem of a pydantic error (None: several), and the one line."""
    first = error.errors()[0]
    loc = first["loc"]
    field = str(loc[0]) if loc else None
    where = ".".join(str(p) for p in loc) or "config"
    message = first["msg"].removeprefix("Value error, ")
    if loc[:1] == ("task_options",) and len(loc) == 3:  # one error per member of the union
        where = ".".join(str(p) for p in loc[:2])
        message = "must be true or false, a finite number, or text"
    if first["type"] == "extra_forbidden":
        return None, unknown_setting(where)
    if first["type"] == "missing":
        return field, f"{where}: required"
    value = first.get("input")
    shown = "" if isinstance(value, dict) else f" (got {brief(value)})"
    return field, f"{where}: {message}{shown}"


def format_validation_error(error: ValidationError) -> str:
    """The first problem of a pydantic error as one line: ``field: what is wrong``."""
    return _problem(error)[1]


def build_config(values: dict[str, Any]) -> RunConfig:
    for key in values:
        if not isinstance(key, str):
            raise ConfigError(unknown_setting(key))
    try:
        return RunConfig(**values)
    except ValidationError as error:
        field, message = _problem(error)
        raise ConfigError(message, field) from None


def check_device(config: RunConfig) -> RunConfig:
    """``config`` if this machine has its device, else ``ConfigError``: called where work starts (``bptt
    train``, the ``Trainer``, a sweep run here, ``bptt diagnose``), as a config describes a run on any machine."""
    if not has_device(config.device):
        allowed = ", ".join(available_devices())
        raise ConfigError(f"device: must be a device this machine has: {allowed} (got {config.device!r})", "device")
    return config


def on_this_machine(config: RunConfig) -> tuple[RunConfig, str | None]:
    """``config`` with its device, or with the CPU where this machine lacks it, and the one line that says so."""
    if has_device(config.device):
        return config, None
    moved = config.model_copy(update={"device": "cpu"})
    return moved, f"trained on {config.device}, which this machine lacks: loaded on cpu"


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of settings from a file (``yamlfile.read_mapping``), or ConfigError naming what is wrong."""
    try:
        return yamlfile.read_mapping(path)
    except yamlfile.YAMLRefused as error:
        raise ConfigError(f"config: {error}") from None


def load_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Settings from a YAML file (optional) with overrides on top; both validated as one."""
    values = load_yaml(path) if path is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build_config(values)
