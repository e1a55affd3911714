"""Builders: a run's config to its task and its model, every draw from the config's seed."""

import random

import numpy as np
import pytest
import torch

from bptt.build import make_model, make_task, task_settings
from bptt.config import build_config
from bptt.tasks import TaskError, TaskSettings

SMALL = {"task": "adding", "seq_len": 12, "hidden_size": 8, "eval_size": 16}


def config(**values):
    return build_config({**SMALL, **values})


def _weights(model):
    return [p.detach().clone() for p in model.parameters()]


def test_task_settings_carry_every_setting_a_task_reads():
    run = config(task="sentiment", seq_len=None, delay=7, task_options={"negation_prob": 0.0}, seed=5, eval_size=9)
    assert task_settings(run) == TaskSettings(
        seq_len=None, delay=7, variant=None, data_dir=None, eval_size=9, seed=5, options={"negation_prob": 0.0}
    )
    assert task_settings(config(task_variant="hochreiter")).variant == "hochreiter"


def test_make_task_builds_the_named_task_with_its_settings():
    task = make_task(config(seq_len=30, task_variant="tcn"))
    assert task.name == "adding" and task.seq_len == 30 and task.describe()["variant"] == "tcn"
    assert torch.equal(
        task.eval_set("test").inputs, make_task(config(seq_len=30, task_variant="tcn")).eval_set().inputs
    )
    with pytest.raises(TaskError, match="seq_len must be an int >= 2"):
        make_task(config(seq_len=1))


def test_the_same_seed_builds_the_same_model_and_another_seed_another():
    run = config(cell="lstm", seed=3)
    first, again = make_model(run, make_task(run)), make_model(run, make_task(run))
    assert all(torch.equal(a, b) for a, b in zip(_weights(first), _weights(again)))
    other = make_model(config(cell="lstm", seed=4), make_task(run))
    assert not all(torch.equal(a, b) for a, b in zip(_weights(first), _weights(other)))


def test_building_draws_nothing_from_the_global_random_state():
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    run = config(cell="gru", init="orthogonal", dropout=0.5, num_layers=2)
    make_model(run, make_task(run)).train()
    assert torch.equal(states[0], torch.get_rng_state())
    assert states[1] == random.getstate() and np.array_equal(states[2], np.random.get_state()[1])


def test_the_models_draws_and_the_tasks_draws_are_separate_streams():
    run = config(seed=7)
    weights = _weights(make_model(run, make_task(run)))
    more_data = config(seed=7, eval_size=64)  # the task draws more, the model's stream is its own
    assert all(torch.equal(a, b) for a, b in zip(weights, _weights(make_model(more_data, make_task(more_data)))))
    wider = config(seed=7, hidden_size=16)
    assert torch.equal(make_task(wider).eval_set().inputs, make_task(run).eval_set().inputs)


def test_the_model_is_placed_on_the_configs_device():
    run = config(device="cpu")
    model = make_model(run, make_task(run))
    assert {p.device.type for p in model.parameters()} == {"cpu"}
