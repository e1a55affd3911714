"""Settings checks shared by the tasks: each failure is one ``TaskError`` line
naming the field, the task and what is allowed."""

from __future__ import annotations

from typing import Any

from bptt.checks import is_int, positive_int
from bptt.tasks.base import TaskError, TaskSettings


def require_int(value: Any, field: str, task: str, minimum: int, variant: str | None = None) -> int:
    if not is_int(value) or value < minimum:
        where = f"task {task!r}" if variant in (None, "default") else f"task {task!r} variant {variant!r}"
        raise TaskError(f"{field} must be an int >= {minimum} for {where}, got {value!r}")
    return int(value)


def require_variant(value: str | None, task: str, allowed: tuple[str, ...]) -> str:
    """The variant's name, with None meaning "default"."""
    variant = "default" if value is None else value
    if variant not in allowed:
        raise TaskError(f"variant must be one of {', '.join(allowed)} for task {task!r}, got {value!r}")
    return variant


def reject_unused(settings: TaskSettings, task: str, fields: tuple[str, ...]) -> None:
    """Fields that would change the task but that it does not read must stay None,
    so that a setting is never silently ignored. (``data_dir`` is only a location and
    is ignored by generated tasks.)"""
    for name in fields:
        value = getattr(settings, name)
        if value is not None:
            raise TaskError(f"{name} is not used by task {task!r}; allowed: None, got {value!r}")


def check_options(settings: TaskSettings, task: str, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(settings.options) - set(allowed))
    if unknown:
        raise TaskError(
            f"options {', '.join(map(repr, unknown))} not used by task {task!r}; "
            f"allowed: {', '.join(allowed) if allowed else 'none'}"
        )


def check_common(settings: TaskSettings, task: str) -> None:
    require_int(settings.eval_size, "eval_size", task, 1)
    require_int(settings.seed, "seed", task, 0)


def check_generated(
    settings: TaskSettings,
    task: str,
    *,
    options: tuple[str, ...] = (),
    variants: tuple[str, ...] = ("default",),
    uses_delay: bool = False,
) -> str:
    """The checks every generated task makes first, in this order: ``eval_size`` and ``seed``, no option
    it does not take, no ``delay`` unless it reads one, a variant it has. Returns the variant's name."""
    check_common(settings, task)
    check_options(settings, task, options)
    if not uses_delay:
        reject_unused(settings, task, ("delay",))
    return require_variant(settings.variant, task, variants)


def seq_len_of(settings: TaskSettings, task: str, default: int, minimum: int, variant: str | None = None) -> int:
    """The task's sequence length: the setting's, or ``default`` when unset, an int >= ``minimum``."""
    return require_int(default if settings.seq_len is None else settings.seq_len, "seq_len", task, minimum, variant)


def require_batch_size(batch_size: Any) -> int:
    return positive_int("batch_size", batch_size)
