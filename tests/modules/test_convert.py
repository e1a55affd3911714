"""bptt.convert: torch.nn's recurrent layers to bptt's in any module tree, and back."""

import warnings

import pytest
import torch
from torch import nn

import bptt


class Model(nn.Module):
    """The shape of a language model: embedding, recurrent stack, decoder."""

    def __init__(self, kind="LSTM", **kwargs):
        super().__init__()
        self.encoder = nn.Embedding(20, 6)
        self.rnn = getattr(nn, kind)(6, 8, 2, **kwargs)
        self.decoder = nn.Linear(8 * (2 if kwargs.get("bidirectional") else 1), 20)

    def forward(self, tokens):
        out, _ = self.rnn(self.encoder(tokens))
        return self.decoder(out)


@pytest.mark.parametrize(
    "kind,kwargs",
    [
        ("LSTM", {}),
        ("GRU", {"bidirectional": True}),
        ("RNN", {"nonlinearity": "relu"}),
        ("LSTM", {"proj_size": 4, "batch_first": True}),
    ],
)
def test_convert_keeps_weights_outputs_mode_and_optimizer(kind, kwargs):
    model = Model(kind, **kwargs)
    if kwargs.get("proj_size"):
        model.decoder = nn.Linear(4, 20)
    model.eval()
    tokens = torch.randint(0, 20, (5, 3))
    before = model(tokens)
    params_before = [id(p) for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    state = torch.get_rng_state()
    assert bptt.convert(model) is model
    assert torch.equal(state, torch.get_rng_state())  # converting draws nothing
    assert isinstance(model.rnn, getattr(bptt, kind)) and not model.rnn.training
    assert [id(p) for p in model.parameters()] == params_before  # the optimizer still steps these
    torch.testing.assert_close(model(tokens), before)
    model(tokens).sum().backward()
    optimizer.step()
    stepped = model(tokens)
    back = bptt.convert(model, back=True)
    assert type(back.rnn) is getattr(nn, kind) and not back.rnn.training
    torch.testing.assert_close(model(tokens), stepped)


def test_convert_carries_hooks_over_and_passes_options():
    model = Model("GRU")
    seen = []
    handle = model.rnn.register_forward_hook(lambda m, args, out: seen.append(type(m).__name__))
    bptt.convert(model, engine="reference")
    assert model.rnn.engine == "reference"
    model(torch.randint(0, 20, (4, 2)))
    assert seen == ["GRU"] and isinstance(model.rnn, bptt.GRU)
    handle.remove()  # registered anew on the new layer: the old handle no longer reaches it
    model(torch.randint(0, 20, (4, 2)))
    assert seen == ["GRU", "GRU"]


def test_every_kind_of_hook_is_registered_anew_on_the_new_layer():
    layer = nn.LSTM(3, 4)
    calls = []
    layer.register_forward_pre_hook(lambda m, args, kwargs: calls.append(("pre", m)), with_kwargs=True)
    layer.register_forward_hook(lambda m, args, out: calls.append(("forward", m)), always_call=True)
    layer.register_full_backward_pre_hook(lambda m, grad: calls.append(("backward pre", m)))
    layer.register_full_backward_hook(lambda m, grad_in, grad_out: calls.append(("backward", m)))
    layer.register_state_dict_pre_hook(lambda m, prefix, keep: calls.append(("state pre", m)))
    layer.register_state_dict_post_hook(lambda m, state, prefix, meta: calls.append(("state", m)))
    layer.register_load_state_dict_pre_hook(lambda m, *args: calls.append(("load pre", m)))
    layer.register_load_state_dict_post_hook(lambda m, keys: calls.append(("load", m)))
    new = bptt.convert(layer)
    out, _ = new(torch.randn(5, 2, 3, requires_grad=True))
    out.sum().backward()
    new.load_state_dict(new.state_dict())
    kinds = ["pre", "forward", "backward pre", "backward", "state pre", "state", "load pre", "load"]
    assert sorted(kind for kind, _ in calls) == sorted(kinds)
    assert all(m is new for _, m in calls)  # each hook is given the new layer


def test_a_hook_registered_through_torchs_private_methods_is_left_with_a_warning():
    layer = nn.GRU(3, 4)
    layer._register_state_dict_hook(lambda m, state, prefix, meta: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bptt.convert(nn.Sequential(layer))
    assert ["private methods" in str(w.message) for w in caught] == [True]


def test_convert_a_bare_layer_and_refusals():
    layer = bptt.convert(nn.LSTM(3, 4))
    assert isinstance(layer, bptt.LSTM)

    class Custom(nn.LSTM):
        pass

    holder = nn.Sequential(Custom(3, 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bptt.convert(holder)
    assert type(holder[0]) is Custom and "subclass" in str(caught[0].message)
    with pytest.raises(ValueError, match="activation"):
        bptt.convert(nn.Sequential(bptt.RNN(3, 4, activation="sigmoid")), back=True)
    with pytest.raises(ValueError, match="residual"):
        bptt.convert(bptt.GRU(3, 4, 2, residual=True), back=True)
