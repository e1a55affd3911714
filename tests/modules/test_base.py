"""The one base: the torch twins keep torch.nn.RNNBase's state consistent through its public API, and
building a layer draws nothing from torch's global random state."""

import copy
import io
import pickle

import pytest
import torch
from torch import nn
from torch.func import functional_call

import bptt
from bptt.modules.base import RecurrentBase

TWINS = [(bptt.RNN, nn.RNN), (bptt.LSTM, nn.LSTM), (bptt.GRU, nn.GRU)]


def _flat_in_step(layer):
    """torch's own flat-weight list holds exactly the layer's current Parameters."""
    named = [getattr(layer, name) for name in layer._flat_weights_names]
    return len(named) == len(layer._flat_weights) and all(a is b for a, b in zip(layer._flat_weights, named))


@pytest.mark.parametrize("ours_cls,theirs_cls", TWINS, ids=["rnn", "lstm", "gru"])
def test_twins_are_rnnbase_layers_whose_flat_weights_torch_keeps(ours_cls, theirs_cls):
    ours = ours_cls(3, 5, 2, bidirectional=True)
    theirs = theirs_cls(3, 5, 2, bidirectional=True)
    assert isinstance(ours, nn.RNNBase) and isinstance(ours, RecurrentBase)
    assert ours._flat_weights_names == theirs._flat_weights_names and _flat_in_step(ours)
    ours.weight_hh_l1 = nn.Parameter(torch.zeros_like(ours.weight_hh_l1))  # nn.RNNBase.__setattr__
    assert _flat_in_step(ours)
    ours.load_state_dict(theirs.state_dict(), assign=True)
    assert _flat_in_step(ours) and ours.weight_ih_l0 is not theirs.weight_ih_l0
    ours.double()  # nn.RNNBase._apply
    assert _flat_in_step(ours) and ours._flat_weights[0].dtype == torch.float64
    for clone in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert _flat_in_step(clone) and torch.equal(clone.weight_ih_l0, ours.weight_ih_l0)


def test_functional_call_runs_on_the_weights_it_is_given():
    layer = bptt.LSTM(3, 4)
    x = torch.randn(6, 2, 3)
    zeros = {name: torch.zeros_like(p) for name, p in layer.named_parameters()}
    for engine in ("fast", "vendor"):
        layer.engine = engine
        out, _ = functional_call(layer, zeros, (x,))
        assert torch.equal(out, torch.zeros_like(out)), engine


@pytest.mark.parametrize("cls", [bptt.RNN, bptt.LSTM, bptt.GRU])
def test_building_draws_nothing_from_the_global_random_state(cls):
    state = torch.get_rng_state()
    generator = torch.Generator().manual_seed(5)
    first = cls(3, 4, 2, generator=generator, residual=True)
    assert torch.equal(torch.get_rng_state(), state)
    second = cls(3, 4, 2, generator=torch.Generator().manual_seed(5), residual=True)
    for (name, a), b in zip(first.named_parameters(), second.parameters()):
        assert torch.equal(a, b), name


def test_a_layer_built_on_the_meta_device_takes_storage_with_to_empty():
    layer = bptt.GRU(3, 4, device="meta")
    assert all(p.is_meta for p in layer.parameters())
    layer.to_empty(device="cpu")
    layer.reset_parameters(torch.Generator().manual_seed(0))
    assert _flat_in_step(layer) and layer(torch.randn(5, 2, 3))[0].shape == (5, 2, 4)


def test_a_whole_saved_layer_loads_with_weights_only():
    layer = bptt.RNN(2, 3, activation="sigmoid")
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert loaded.mode == "RNN_SIGMOID" and _flat_in_step(loaded)
