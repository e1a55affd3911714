"""Builders: a run's config to its task and to its model.

Randomness flows from ``config.seed`` through ``torch.Generator`` streams
(``bptt.tasks.generator``): the task's data and fixed sets draw from theirs,
the model's initial weights from ``MODEL_STREAM``. Building touches no global
random state.
"""

from __future__ import annotations

from bptt.config import RunConfig
from bptt.models import SequenceModel
from bptt.tasks import Task, TaskSettings, build_task, generator

#: The generator stream of a model's initial weights (tasks use 0-2 and 101-102).
MODEL_STREAM = 3


def task_settings(config: RunConfig) -> TaskSettings:
    return TaskSettings(
        seq_len=config.seq_len,
        delay=config.delay,
        variant=config.task_variant,
        data_dir=config.data_dir,
        eval_size=config.eval_size,
        seed=config.seed,
        options=dict(config.task_options),
    )


def make_task(config: RunConfig) -> Task:
    """The task a config names, with its settings checked (a ``TaskError`` names a bad one)."""
    return build_task(config.task, task_settings(config))


def make_model(config: RunConfig, task: Task) -> SequenceModel:
    """The model of a run, initialised from ``config.seed`` and placed on ``config.device``."""
    model = SequenceModel(config, task, generator=generator(config.seed, MODEL_STREAM))
    return model.to(config.device)
