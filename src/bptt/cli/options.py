"""Shared CLI plumbing: run settings as options generated from RunConfig, one-line errors."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import click
import yaml

from bptt.config import (
    CELL_DEPENDENT_FIELDS,
    INTERNAL_FIELDS,
    TRAINING_FIELDS,
    ConfigError,
    RunConfig,
    field_choices,
    load_config,
)
from bptt.modules.cells import CELLS
from bptt.store import Database
from bptt.tasks import TaskError

#: Nullable settings whose default is on: ``none`` switches them off.
SWITCHED_OFF_BY_NONE = frozenset({"clip_norm", "forget_bias"})
#: The names task errors use for the run settings ``task_variant`` and ``task_options``.
TASK_ALIASES = {"variant": "task_variant", "options": "task_options"}


#: The prefix of the parameters that hold one of a cell's own settings (``--magnitude`` -> ``cell__magnitude``).
CELL_SETTING = "cell__"


def flag(name: str) -> str:
    """The command-line spelling of a setting: ``seq_len`` -> ``--seq-len``."""
    special = {"task_options": "--task-option", "cell_options": "--cell-option"}
    return special.get(name, "--" + name.replace("_", "-"))


def _cell_setting_options(reserved: Collection[str]) -> list[Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """One option per setting of the cells' own (``--magnitude``, ...), each into ``cell_options``;
    a name in ``reserved`` (a command's own option) is given with ``--cell-option NAME=VALUE`` only."""
    settings: dict[str, list[tuple[str, Any]]] = {}
    for cell in CELLS.in_order():
        for setting in CELLS.get(cell).settings:
            settings.setdefault(setting.name, []).append((cell, setting))
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = []
    for name, owners in settings.items():
        if name in reserved or name in RunConfig.model_fields:
            continue
        choices = owners[0][1].choices
        metavar = "[" + "|".join(choices) + "]" if choices else type(owners[0][1].default).__name__.upper()
        text = "; ".join(f"{s.help} [{cell} default: {s.default}]" for cell, s in owners)
        options.append(click.option(flag(name), CELL_SETTING + name, default=None, metavar=metavar, help=text))
    return options


def _metavar(name: str) -> str:
    """What a setting's option takes: its choices, or INTEGER / FLOAT / TEXT (``|none`` where that switches it off)."""
    choices = field_choices(name)
    if choices is not None:
        return "[" + "|".join(choices) + "]"
    annotation = str(RunConfig.model_fields[name].annotation)
    kind = "INTEGER" if "int" in annotation else "FLOAT" if "float" in annotation else "TEXT"
    return kind + ("|none" if name in SWITCHED_OFF_BY_NONE else "")


def _options(
    names: Collection[str], reserved: Collection[str] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding one option per named RunConfig field (``seq_len`` -> ``--seq-len``).

    Options carry no defaults of their own: an option left out is simply not
    set, so the defaults stay in RunConfig and a YAML file's values stand.
    Values are passed through as text and validated by RunConfig, so a bad
    value on the command line reads exactly like a bad value in a file; the
    metavar only shows the type or the choices.
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(_cell_setting_options(reserved)):
            command = option(command)
        for name, field in reversed(list(RunConfig.model_fields.items())):
            if name not in names or name in INTERNAL_FIELDS:
                continue
            shown = field.default is not None and name not in CELL_DEPENDENT_FIELDS
            help_text = (field.description or "") + (f"  [default: {field.default}]" if shown else "")
            if name in ("task_options", "cell_options"):
                option = click.option(
                    flag(name),
                    name,
                    multiple=True,
                    metavar="KEY=VALUE",
                    callback=_parse_task_options,
                    help=field.description,
                )
            elif field.annotation is bool:
                option = click.option(f"{flag(name)}/--no-{name.replace('_', '-')}", name, default=None, help=help_text)
            else:
                option = click.option(flag(name), name, default=None, metavar=_metavar(name), help=help_text)
            command = option(command)
        return command

    return decorate


#: Every run setting as an option (``bptt train``, ``bptt reproduce``...).
run_options = _options(RunConfig.model_fields)
#: The settings that shape a model as built, for ``bptt diagnose``: the task, the model, seed and device.
model_options = _options(
    [name for name in RunConfig.model_fields if name not in TRAINING_FIELDS], reserved=("epsilon", "lag", "recent")
)


def _parse_task_options(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict | None:
    if not values:
        return None
    options = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=flag(param.name))
        try:
            options[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise click.BadParameter(f"malformed value in {item!r}", param_hint=flag(param.name)) from None
    return options


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The run settings the user actually set on the command line (a cell's own settings in ``cell_options``)."""
    settings = {k: v for k, v in values.items() if k in RunConfig.model_fields and v is not None}
    own = {k.removeprefix(CELL_SETTING): v for k, v in values.items() if k.startswith(CELL_SETTING) and v is not None}
    if own:
        settings["cell_options"] = {**settings.get("cell_options", {}), **own}
    return settings


def spelled_as_flags(message: str, flags: Collection[str]) -> str:
    """``message`` with the settings that came from flags named as the flags: the leading
    setting (``seq_len: ...`` -> ``--seq-len: ...``, ``config: activation applies ...`` ->
    ``--activation applies ...``) and every snake_case one in the text."""
    parts = re.match(r"(config: )?([a-z_]*)(\.?)(.*)", message, re.DOTALL)
    assert parts is not None  # every group may be empty: the pattern matches any text
    whole, head, dot, rest = parts.groups()
    name = TASK_ALIASES.get(head, head)
    if name in flags:
        whole, head, dot = "", flag(name) + (" " if dot else ""), ""
    for name in flags:
        if "_" in name:
            rest = re.sub(rf"(?<![-\w.']){name}(?![\w'])", flag(name), rest)
    return (whole or "") + head + dot + rest


@contextmanager
def as_flags(flags: Collection[str]) -> Iterator[None]:
    """Config and task errors raised inside name the settings in ``flags`` as the flags they came from."""
    try:
        yield
    except ConfigError as error:
        raise ConfigError(spelled_as_flags(str(error), flags), error.field) from None
    except TaskError as error:
        raise TaskError(spelled_as_flags(str(error), flags)) from None


def config_from(config_path: str | None, settings: dict[str, Any]) -> RunConfig:
    """The run config of a YAML file (optional) and the flags given, flags on top; an error names the flag."""
    flags = given(settings)
    with as_flags(flags):
        return load_config(config_path, **flags)


class FiniteFloatRange(click.FloatRange):
    """A ``click.FloatRange`` that refuses nan and inf, which pass its comparisons unseen."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def require_sweep(db: Database, sweep: str | None) -> None:
    """Refuse ``--sweep`` naming a sweep the database holds no runs of, listing the ones it does."""
    if sweep is not None and sweep not in db.sweeps():
        raise click.UsageError(
            f"--sweep: no runs of sweep {sweep!r} in {db.path}; sweeps here: {', '.join(db.sweeps()) or 'none'}"
        )
