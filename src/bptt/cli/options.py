"""Shared CLI plumbing: run settings as options generated from RunConfig, one-line errors."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click
import yaml

from bptt.config import RunConfig
from bptt.store import Database

HIDDEN = {"progress"}


def run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per RunConfig field (``seq_len`` -> ``--seq-len``).

    Options carry no defaults of their own: an option left out is simply not
    set, so the defaults stay in RunConfig and a YAML file's values stand.
    Values are passed through as text and validated by RunConfig, so a bad
    value on the command line reads exactly like a bad value in a file.
    """
    for name, field in reversed(list(RunConfig.model_fields.items())):
        if name in HIDDEN:
            continue
        flag = "--" + name.replace("_", "-")
        help_text = field.description + ("" if field.default is None else f" [default: {field.default}]")
        if name == "task_options":
            option = click.option("--task-option", name, multiple=True, metavar="KEY=VALUE",
                                  callback=_parse_task_options, help=field.description)
        elif field.annotation is bool:
            option = click.option(f"{flag}/--no-{name.replace('_', '-')}", name, default=None, help=help_text)
        else:
            option = click.option(flag, name, default=None, metavar="VALUE", help=help_text)
        command = option(command)
    return command


def _parse_task_options(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict | None:
    if not values:
        return None
    options = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--task-option")
        try:
            options[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise click.BadParameter(f"malformed value in {item!r}", param_hint="--task-option") from None
    return options


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The run settings the user actually set on the command line."""
    return {k: v for k, v in values.items() if k in RunConfig.model_fields and v is not None}


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
        raise click.UsageError(f"--sweep: no runs of sweep {sweep!r} in {db.path}; "
                               f"sweeps here: {', '.join(db.sweeps()) or 'none'}")
