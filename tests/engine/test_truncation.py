"""Truncated BPTT: the state is carried, the gradient is cut every `truncate` steps."""

import pytest
import torch

import bptt
from bptt.engine import reference

IN, HID, BATCH, STEPS, LAYERS = 3, 5, 4, 10, 2
CELLS = {"rnn": (bptt.RNN, {"activation": "relu"}), "lstm": (bptt.LSTM, {}), "gru": (bptt.GRU, {})}


def _detached_loop(model, x, state, chunk):
    """The reference loop, by hand, with the state detached every `chunk` steps."""
    layer_input, finals = x, []
    for layer in range(LAYERS):
        params = model.layer_parameters(layer)
        s = tuple(t[layer] for t in state) if isinstance(state, tuple) else state[layer]
        outputs = []
        for start in range(0, STEPS, chunk):
            if start:
                s = tuple(t.detach() for t in s) if isinstance(s, tuple) else s.detach()
            piece = layer_input[start : start + chunk]
            if isinstance(model, bptt.LSTM):
                out, s = reference.lstm_layer(piece, s, *params)
            elif isinstance(model, bptt.GRU):
                out, s = reference.gru_layer(piece, s, *params)
            else:
                out, s = reference.rnn_layer(piece, s, *params, model.activation, model.slope(layer))
            outputs.append(out)
        layer_input = torch.cat(outputs)
        finals.append(s[0] if isinstance(s, tuple) else s)
    return layer_input, torch.stack(finals)


def _grads(model, x, state, forward):
    for p in model.parameters():
        p.grad = None
    x = x.clone().requires_grad_()
    state = (
        tuple(s.clone().requires_grad_() for s in state) if isinstance(state, tuple) else state.clone().requires_grad_()
    )
    out, h_n = forward(x, state)
    h_n = h_n[0] if isinstance(h_n, tuple) else h_n
    weights = torch.linspace(-1, 1, out.numel()).view_as(out)
    ((out * weights).sum() + (h_n**2).sum()).backward()
    states = state if isinstance(state, tuple) else (state,)
    return [out.detach(), x.grad, *[s.grad for s in states], *[p.grad for p in model.parameters()]]


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("chunk", [1, 3, 5])
def test_truncated_gradients_equal_the_detached_loop(cell, engine, chunk):
    cls, kwargs = CELLS[cell]
    model = cls(IN, HID, LAYERS, engine=engine, **kwargs)
    x = torch.randn(STEPS, BATCH, IN)
    h0 = torch.randn(LAYERS, BATCH, HID)
    state = (h0, torch.randn(LAYERS, BATCH, HID)) if cls is bptt.LSTM else h0
    expected = _grads(model, x, state, lambda x, s: _detached_loop(model, x, s, chunk))
    model.truncate = chunk
    got = _grads(model, x, state, model)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    model.truncate = None
    full = _grads(model, x, state, model)
    torch.testing.assert_close(full[0], got[0])  # same forward
    assert not torch.allclose(full[-3], got[-3])  # weight_hh of the last layer: the cut changes it


def test_truncate_longer_than_the_sequence_is_full_bptt():
    model = bptt.GRU(IN, HID, truncate=100)
    assert "truncate=100" in repr(model)
    x = torch.randn(STEPS, BATCH, IN)
    out, _ = model(x)
    assert out.shape == (STEPS, BATCH, HID)


@pytest.mark.parametrize("bad,error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)])
def test_truncate_must_be_a_positive_int(bad, error):
    with pytest.raises(error, match="truncate"):
        bptt.RNN(IN, HID, truncate=bad)
    model = bptt.RNN(IN, HID)
    with pytest.raises(error, match="truncate"):
        model.truncate = bad
