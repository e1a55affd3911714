"""The measured keep gate of a gated cell, the reach beside the memory horizon, and a verdict that tells a
profile that dips and rises again from one that falls for good."""

import dataclasses
import math

import pytest
import torch

from bptt.build import make_model, make_task
from bptt.config import build_config
from bptt.diagnostics import diagnose
from bptt.diagnostics.gates import gate_keep
from bptt.diagnostics.profile import GradientProfile, memory_horizon, memory_reach
from bptt.modules import GRU, LSTM, RNN


def test_the_reach_is_the_last_lag_above_epsilon_and_the_horizon_the_first_below():
    dips = torch.tensor([1.0, 0.1, 5e-4, 2e-4, 3e-3, 2e-3, 1e-5])
    assert memory_horizon(dips) == 1 and memory_reach(dips) == 5
    falls = torch.tensor([1.0, 0.1, 1e-2, 1e-4, 1e-5])
    assert memory_horizon(falls) == memory_reach(falls) == 2
    assert memory_reach(torch.tensor([0.0, 1.0])) == 0 and memory_reach(torch.tensor([1.0, 1.0])) == 1
    with pytest.raises(ValueError, match="epsilon must lie in"):
        memory_reach(dips, 1.0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_keep_gate_product_is_each_units_product_of_its_gate(cell):
    torch.manual_seed(0)
    layer = (LSTM if cell == "lstm" else GRU)(3, 5).double()
    x = torch.randn(12, 4, 3, dtype=torch.float64)
    lengths = torch.tensor([12, 12, 9, 4])
    keep = gate_keep(layer, x, lengths=lengths)
    # The gate, from torch.nn's own cell run on each sequence's real steps alone.
    twin = (torch.nn.LSTMCell if cell == "lstm" else torch.nn.GRUCell)(3, 5).double()
    twin.load_state_dict({k.replace("_l0", ""): v for k, v in layer.state_dict().items()})
    H = 5
    products = []  # (sequence, lag, unit)
    for b, length in enumerate(lengths.tolist()):
        h = torch.zeros(1, H, dtype=torch.float64)
        c = torch.zeros(1, H, dtype=torch.float64)
        gates = []
        for t in range(length):
            gates_all = x[t, b : b + 1] @ twin.weight_ih.T + twin.bias_ih + h @ twin.weight_hh.T + twin.bias_hh
            gates.append(torch.sigmoid(gates_all[0, H : 2 * H]))
            h, c = twin(x[t, b : b + 1], (h, c)) if cell == "lstm" else (twin(x[t, b : b + 1], h), c)
        by_lag = torch.stack(gates[::-1])
        products.append(torch.cat([torch.ones(1, H, dtype=torch.float64), by_lag.cumprod(0)[:-1]]))
    for k in (0, 3, 8, 11):
        rows = [p[k] for p in products if k < len(p)]
        assert keep.mean[k] == pytest.approx(float(torch.stack(rows).mean()), rel=1e-12)
        assert keep.best[k] == pytest.approx(float(torch.stack([r.max() for r in rows]).mean()), rel=1e-12)
    assert keep.gate == ("forget" if cell == "lstm" else "update") and keep.at(100) == keep.at(11)


def test_a_plain_rnn_has_no_keep_gate():
    assert gate_keep(RNN(2, 4), torch.zeros(3, 1, 2)) is None


def _lstm_diagnosis():
    config = build_config(
        {
            "task": "sentiment",
            "delay": 12,
            "cell": "lstm",
            "hidden_size": 8,
            "batch_size": 8,
            "eval_size": 16,
            "steps": 1,
            "progress": False,
            "forget_bias": 2.0,
        }
    )
    task = make_task(config)
    torch.manual_seed(0)
    return diagnose(make_model(config, task), task, examples=8, label="LSTM", lag=10)


def test_an_lstm_verdict_reads_its_cell_state_and_its_measured_forget_gates():
    d = _lstm_diagnosis()
    mean, best = d.keep.at(d.lag_used)
    verdict = d.verdict()
    assert f"along the cell state dL/dc at lag 10 is {d.cell_ratio:.2g} of lag 0" in verdict
    assert f"the trained forget gates keep {mean:.2g} of the state over the last 10 steps" in verdict
    assert f"the best-kept unit {best:.2g}" in verdict
    assert 0 < mean <= best <= 1 and math.isfinite(d.cell_ratio)
    record = d.to_dict()
    assert record["memory_reach"] == d.reach and record["gate_keep"]["gate"] == "forget"


def test_a_profile_that_dips_and_rises_again_is_told_apart():
    d = _lstm_diagnosis()
    T = d.seq_len
    hidden = torch.full((1, T), 2e-3, dtype=torch.float64)
    hidden[0, 0], hidden[0, 3:6] = 1.0, 5e-4  # below epsilon at lags 3-5, above it again after
    dipping = dataclasses.replace(
        d, profile=GradientProfile(hidden, d.profile.cell), horizon=[memory_horizon(hidden[0])]
    )
    assert dipping.horizon == [2] and dipping.reach == [T - 1]
    assert (
        f"memory horizon 2 steps (epsilon 0.001), yet a reach of {T - 1} steps (the whole sequence)"
        in dipping.verdict()
    )
    assert "dips below epsilon at lag 3 and rises above it again" in dipping.verdict()
    falling = dataclasses.replace(
        d, profile=GradientProfile(hidden.clone().fill_(1e-5).index_fill_(1, torch.tensor([0]), 1.0)), horizon=[0]
    )
    assert "reach" not in falling.verdict()
