"""The run settings that depend on the cell: filled from its registry entry where a run leaves them
unset, and checked against it (``bptt.config`` calls both; ``bptt.modules.cells`` holds the entries).

Filled, in this order, where the run (and its task's recommendations) leave them unset: the
entry's ``defaults`` (learning rate, layers, ...), its first activation, and its own settings
(``cell_options``): their defaults, then the preset the run names, or the one named as the task.
Everything filled is set on the config, so a run's record says exactly what was trained.
"""

from __future__ import annotations

from typing import Any

from bptt.engine import ACTIVATIONS
from bptt.modules.cells import CELLS

#: Settings added after run identities were first stored: left out of a run's identity while they
#: hold their empty value, so every run stored before keeps its identity.
ADDED_FIELDS: dict[str, object] = {"cell_options": {}, "cell_preset": None}
#: Every activation some cell takes.
ALL_ACTIVATIONS = sorted(set(ACTIVATIONS.names()).union(*(CELLS.get(c).activations for c in CELLS)))


def activations_by_cell() -> str:
    """Which cells take an activation, and each one's default (for the setting's help)."""
    parts = []
    for name in CELLS.in_order():
        choices = CELLS.get(name).activations
        if choices:
            parts.append(f"{name}: {choices[0]} (default)" + "".join(f", {a}" for a in choices[1:]))
    return "; ".join(parts)


def fill_cell_settings(filled: dict[str, Any], cell: Any, task: Any) -> None:
    """Fill, in place, the settings of ``filled`` (a run's raw settings) that its cell decides."""
    if not isinstance(cell, str) or cell not in CELLS:
        return  # the config's own check names the bad cell
    spec = CELLS.get(cell)
    for name, value in spec.defaults.items():
        filled.setdefault(name, value)
    if spec.activations:
        filled.setdefault("activation", spec.activations[0])
    if not spec.settings:
        return
    preset = filled.get("cell_preset")
    family = task.partition(":")[0] if isinstance(task, str) else None
    if preset is None and family in spec.presets:
        filled["cell_preset"] = preset = family
    given = filled.get("cell_options") or {}
    if isinstance(given, dict):
        filled["cell_options"] = spec.options_for(preset if isinstance(preset, str) else None, given)


def _cells_with(test) -> str:
    return ", ".join(name for name in CELLS.in_order() if test(CELLS.get(name)))


def check_cell_settings(config: Any) -> None:
    """A ValueError (one line) for a setting ``config``'s cell does not take; a cell's own settings are
    converted to their types in place (text from a flag)."""
    cell = config.cell
    spec = CELLS.get(cell)
    if config.activation not in (spec.activations or ("tanh",)):
        if not spec.activations:
            takes = _cells_with(lambda s: s.activations)
            raise ValueError(f"activation applies to cells {takes}; cell {cell!r} takes the default 'tanh'")
        raise ValueError(f"activation: cell {cell!r} takes {', '.join(spec.activations)}")
    if (config.init != "pytorch" or config.init_scale != 1.0) and "init" not in spec.options:
        twins = _cells_with(lambda s: "init" in s.options)
        raise ValueError(f"init and init_scale apply to cells {twins}; cell {cell!r} starts from its paper's init")
    if config.t_max is not None and config.init != "chrono" and not spec.uses_t_max:
        bounded = _cells_with(lambda s: s.uses_t_max)
        raise ValueError(f"t_max applies to init 'chrono' only (and to cells {bounded}), got init {config.init!r}")
    if config.engine is not None and config.engine not in spec.layer.ENGINE_CHOICES:
        raise ValueError(f"engine: cell {cell!r} runs on {', '.join(spec.layer.ENGINE_CHOICES)}")
    if config.cell_preset is not None and config.cell_preset not in spec.presets:
        raise ValueError(f"cell_preset: cell {cell!r} has presets {', '.join(spec.presets) or 'none'}")
    for key, value in config.cell_options.items():
        setting = spec.setting(key)
        if setting is None:
            known = ", ".join(s.name for s in spec.settings) or "none"
            raise ValueError(f"cell_options: cell {cell!r} has no setting {key!r}; its settings: {known}")
        try:
            checked = setting.check(value)
        except ValueError as error:
            raise ValueError(f"cell_options.{key}: {error} (got {value!r})") from None
        if checked != value or type(checked) is not type(value):
            config.cell_options[key] = checked


def without_empty_added_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A run's settings for its identity: the ``ADDED_FIELDS`` left out where they are empty."""
    return {k: v for k, v in data.items() if not (k in ADDED_FIELDS and v == ADDED_FIELDS[k])}


def cell_label(config: Any) -> list[str]:
    """What a run's label adds for its cell: an activation other than the cell's default, the preset."""
    spec = CELLS.get(config.cell)
    parts = []
    if config.cell != "rnn" and spec.activations[1:] and config.activation != spec.activations[0]:
        parts.append(config.activation)
    if config.cell_preset is not None:
        parts.append(config.cell_preset)
    return parts
