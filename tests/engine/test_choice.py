"""What auto runs (bptt.engine.choice): the measured table, the rules that are facts, and on a layer."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import bptt
from bptt.engine import choice, compiled
from bptt.modules import twins

CALL = {"vendor_has": True, "whole_stack": True, "packed": False}


def test_on_a_cpu_the_compiled_loops_run_everything_they_beat_the_vendor_at():
    for cell in ("RNN", "LSTM", "GRU"):
        for packed in (False, True):
            for wants in choice.WANTS:
                got = choice.choose("cpu", cell, **{**CALL, "packed": packed}, wants=wants, ours="compiled")
                assert got == "compiled", (cell, packed, wants)


def test_without_the_compiled_loops_a_cpu_keeps_the_vendor_lstm_and_its_probe():
    assert choice.choose("cpu", "LSTM", **CALL, wants="nothing", ours="fast") == "vendor"
    assert choice.choose("cpu", "LSTM", **CALL, wants="hidden", ours="fast") == "probe"
    assert choice.choose("cpu", "LSTM", **{**CALL, "packed": True}, wants="nothing", ours="fast") == "fast"
    assert choice.choose("cpu", "RNN", **CALL, wants="nothing", ours="fast") == "fast"


def test_on_a_gpu_the_vendor_runs_unrecorded_steps_and_the_probe_recorded_ones():
    for cell in ("RNN", "LSTM", "GRU"):
        for packed in (False, True):
            assert choice.choose("cuda", cell, **{**CALL, "packed": packed}, wants="nothing", ours="fast") == "vendor"
    assert choice.choose("cuda", "LSTM", **CALL, wants="cells", ours="fast") == "probe"
    assert choice.choose("cuda", "RNN", **CALL, wants="hidden", ours="triton") == "probe"
    assert choice.choose("cuda", "GRU", **CALL, wants="hidden", ours="fast") == "fast"  # no probe for the GRU
    assert choice.choose("cuda", "LSTM", **CALL, wants="updates", ours="fast") == "fast"  # nor for W_hh's terms
    sigmoid = {**CALL, "vendor_has": False}
    assert choice.choose("cuda", "RNN", **sigmoid, wants="nothing", ours="triton") == "triton"
    assert choice.choose("cuda", "LSTM", **{**CALL, "whole_stack": False}, wants="nothing", ours="fast") == "fast"


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_steps_that_do_not_fit_run_on_recompute(device):
    for cell in ("LSTM", "GRU"):
        for wants in choice.WANTS:
            assert choice.choose(device, cell, **CALL, wants=wants, ours="fast", fits=False) == "recompute"
    assert choice.choose(device, "RNN", **CALL, wants="updates", ours="fast", fits=False) == "fast"


def test_a_layer_picks_recompute_when_its_stored_steps_would_not_fit(monkeypatch):
    lstm = bptt.LSTM(3, 8)
    x = torch.randn(50, 4, 3)
    monkeypatch.setattr(twins.TorchTwin, "SMALL_STORE", 0)
    monkeypatch.setattr(twins, "fits", lambda needed, device: needed < 1000)
    assert lstm.engine_for(x) == "recompute"
    with bptt.record_gradients(lstm) as rec:
        lstm(x)[0].sum().backward()
    assert lstm.last_engine == "recompute" and rec.hidden.shape == (1, 50) and rec.cell is not None
    monkeypatch.setattr(twins, "fits", lambda needed, device: True)
    assert lstm.engine_for(x) == ("compiled" if compiled.available() else "vendor")


@pytest.mark.parametrize("cls,twin", [(bptt.RNN, nn.RNN), (bptt.LSTM, nn.LSTM), (bptt.GRU, nn.GRU)])
def test_a_packed_batch_runs_on_our_engine_on_a_cpu_and_matches_torch_nn(cls, twin):
    """torch.nn's packed path on a CPU is the slow one: auto runs ours, with torch.nn's numbers."""
    theirs = twin(3, 5, 2, bidirectional=True)
    ours = cls(3, 5, 2, bidirectional=True)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(9, 4, 3)
    packed = pack_padded_sequence(x, torch.tensor([9, 3, 7, 5]), enforce_sorted=False)
    results = []
    for layer in (ours, theirs):
        out, state = layer(packed)
        h = state[0] if isinstance(state, tuple) else state
        (out.data.sin().sum() + (h**2).sum()).backward()
        results.append([out.data, h, *[p.grad for p in layer.parameters()]])
    assert ours.last_engine == ("compiled" if compiled.available() else "fast")
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)
