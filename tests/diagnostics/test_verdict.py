"""The verdict says what was measured and what Pascanu's condition says, and the two never contradict."""

import pytest
import torch

from bptt.build import make_model, make_task
from bptt.config import build_config
from bptt.diagnostics import diagnose

SMALL = {"hidden_size": 16, "batch_size": 8, "eval_size": 16, "steps": 1, "progress": False}


def _diagnosis(**settings):
    config = build_config({**SMALL, "task": "adding", "seq_len": 40, **settings})
    task = make_task(config)
    torch.manual_seed(0)
    return diagnose(make_model(config, task), task, examples=8, label="model")


@pytest.fixture(scope="module")
def saturated():
    # gamma sigma_max(W_hh) = 8 / 4 = 2: the bound says nothing, yet the units saturate and the gradient vanishes.
    return _diagnosis(activation="sigmoid", init="orthogonal", init_scale=8.0)


def test_above_one_over_gamma_the_verdict_says_vanishing_is_possible_not_guaranteed(saturated):
    verdict = saturated.verdict()
    assert verdict.startswith("vanishing: dL/dh at lag 39 is")
    assert not saturated.chain.condition.vanishing_guaranteed
    assert "sufficient condition for vanishing does not hold" in verdict and "must vanish" not in verdict
    assert "measured along one sequence" in verdict and "vanishes all the same" in verdict
    assert saturated.gradient_ratio < saturated.epsilon
    assert "(at initialisation)" in verdict


def test_below_one_over_gamma_the_verdict_says_the_gradient_must_vanish():
    small = _diagnosis(activation="sigmoid", init="orthogonal", init_scale=2.0)
    verdict = small.verdict()
    assert small.chain.condition.vanishing_guaranteed
    assert "Pascanu's sufficient condition holds, so gradients must vanish" in verdict
    assert "measured along one sequence" not in verdict  # the condition already decides
