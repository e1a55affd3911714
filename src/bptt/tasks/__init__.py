"""Tasks: seeded generators and datasets, each knowing its loss, metric and baseline.

``build_task(name, settings)`` looks a name up in ``TASKS``; names with a colon
("ucr:GunPoint") pass the part after the colon as ``settings.options["name"]``.
"""

from __future__ import annotations

import dataclasses

# Importing the subpackages registers their tasks; datasets import their
# optional dependencies only when a dataset is built.
from bptt.tasks import datasets, synthetic  # noqa: F401
from bptt.tasks.base import TASKS, Batch, Task, TaskError, TaskSettings, generator


def build_task(name: str, settings: TaskSettings | None = None) -> Task:
    settings = settings or TaskSettings()
    if ":" in name:
        family, _, member = name.partition(":")
        cls = TASKS.get(family + ":")
        settings = dataclasses.replace(settings, options={**settings.options, "name": member})
        return cls(settings)
    return TASKS.get(name)(settings)


def task_names() -> list[str]:
    return [n + "NAME" if n.endswith(":") else n for n in TASKS.names()]


__all__ = ["TASKS", "Batch", "Task", "TaskError", "TaskSettings", "build_task", "generator", "task_names"]
