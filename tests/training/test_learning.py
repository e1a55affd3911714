"""End to end: the vanishing-gradient claims, on small budgets."""

import pytest

from bptt.config import build_config
from bptt.training import train


@pytest.mark.slow
def test_lstm_solves_adding_at_length_50():
    # Whether one run leaves the plateau in 800 steps depends on its seed (5 of seeds 0-7 do),
    # so the claim is tested as most seeds, not one lucky seed.
    solved = 0
    for seed in (0, 1, 2):
        config = build_config(
            {
                "task": "adding",
                "seq_len": 50,
                "cell": "lstm",
                "forget_bias": 1.0,
                "clip_norm": 1.0,
                "hidden_size": 32,
                "batch_size": 32,
                "lr": 0.01,
                "steps": 800,
                "eval_size": 500,
                "eval_every": 800,
                "progress": False,
                "seed": seed,
            }
        )
        result = train(config)
        solved += result.final.test_loss < 0.3 * result.final.baseline
    assert solved >= 2


def _sentiment(delay, steps=300, seed=0):
    # The plain sigmoid RNN of the notes: no remedy, so no clipping either.
    return build_config(
        {
            "task": "sentiment",
            "delay": delay,
            "cell": "rnn",
            "activation": "sigmoid",
            "clip_norm": None,
            "hidden_size": 32,
            "batch_size": 32,
            "lr": 0.03,
            "steps": steps,
            "eval_size": 500,
            "eval_every": steps,
            "progress": False,
            "seed": seed,
        }
    )


@pytest.mark.slow
def test_sigmoid_rnn_learns_a_short_delay_but_stays_at_chance_at_delay_60():
    # Half the sentences negate their polar word; reading the polar word alone scores 75 %.
    for seed in (0, 1):
        assert train(_sentiment(delay=4, steps=600, seed=seed)).final.test_metric > 0.7
    long = train(_sentiment(delay=60, steps=600))
    assert abs(long.final.test_metric - 0.5) < 0.06
