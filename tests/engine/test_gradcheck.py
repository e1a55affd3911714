"""gradcheck (float64) of every hand-written backward in bptt.engine: cells, activations, options, on the
Python loops ("fast"), the compiled ones ("compiled") and those that recompute ("recompute")."""

import pytest
import torch

from bptt.engine import ENGINES, common

T, B, I, H = 4, 3, 2, 4


def _tensor(*shape, scale=0.5):
    return (torch.randn(*shape, dtype=torch.float64) * scale).requires_grad_()


def _params(gates, bias=True):
    w_ih, w_hh = _tensor(gates * H, I), _tensor(gates * H, H)
    b_ih, b_hh = (_tensor(gates * H), _tensor(gates * H)) if bias else (None, None)
    return w_ih, w_hh, b_ih, b_hh


def _select(outputs, which):
    """Use both outputs, only the sequence output, or only the final state."""
    out, final = outputs
    finals = final if isinstance(final, tuple) else (final,)
    if which == "output":
        return (out,)
    if which == "final":
        return finals
    return (out, *finals)


@pytest.fixture(params=[False, True], ids=["one-chunk", "many-chunks"])
def chunked(request, monkeypatch):
    """Also run the backward in chunks of one or two steps, so the chunk seams are checked."""
    if request.param:
        monkeypatch.setattr(common, "CHUNK_ELEMENTS", B * H + 1)
    return request.param


@pytest.fixture(params=["fast", "compiled", "recompute"])
def engine(request):
    return ENGINES.get(request.param)


@pytest.mark.parametrize(
    "activation,slope",
    [
        ("tanh", None),
        ("sigmoid", None),
        ("relu", None),
        ("leaky_relu", 0.1),
        ("leaky_relu", -0.3),
        ("leaky_relu", 0.0),
        ("prelu", "positive"),
        ("prelu", "mixed"),
    ],
)
@pytest.mark.parametrize("which", ["both", "output", "final"])
def test_rnn_gradcheck(activation, slope, which, chunked, engine):
    x, h0 = _tensor(T, B, I), _tensor(B, H)
    w_ih, w_hh, b_ih, b_hh = _params(1)
    inputs = [x, h0, w_ih, w_hh, b_ih, b_hh]
    if activation == "prelu":
        values = torch.full((H,), 0.25, dtype=torch.float64)
        if slope == "mixed":  # a zero and a negative slope: the pre-activations must be kept
            values = torch.tensor([0.25, 0.0, -0.5, 1.5], dtype=torch.float64)
        inputs.append(values.requires_grad_())

    def f(x, h0, w_ih, w_hh, b_ih, b_hh, *prelu):
        s = prelu[0] if prelu else slope
        return _select(engine.rnn_layer(x, h0, w_ih, w_hh, b_ih, b_hh, activation, s), which)

    assert torch.autograd.gradcheck(f, inputs)


def test_rnn_gradcheck_without_bias(chunked, engine):
    x, h0 = _tensor(T, B, I), _tensor(B, H)
    w_ih, w_hh, _, _ = _params(1, bias=False)
    f = lambda x, h0, w_ih, w_hh: engine.rnn_layer(x, h0, w_ih, w_hh, None, None, "tanh")  # noqa: E731
    assert torch.autograd.gradcheck(f, [x, h0, w_ih, w_hh])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("which", ["both", "output", "final"])
def test_lstm_gradcheck(bias, which, chunked, engine):
    x, h0, c0 = _tensor(T, B, I), _tensor(B, H), _tensor(B, H)
    w_ih, w_hh, b_ih, b_hh = _params(4, bias)
    inputs = [x, h0, c0, w_ih, w_hh] + ([b_ih, b_hh] if bias else [])

    def f(x, h0, c0, w_ih, w_hh, *b):
        b_ih, b_hh = b if b else (None, None)
        return _select(engine.lstm_layer(x, (h0, c0), w_ih, w_hh, b_ih, b_hh), which)

    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("which", ["both", "output", "final"])
def test_gru_gradcheck(bias, which, chunked, engine):
    x, h0 = _tensor(T, B, I), _tensor(B, H)
    w_ih, w_hh, b_ih, b_hh = _params(3, bias)
    inputs = [x, h0, w_ih, w_hh] + ([b_ih, b_hh] if bias else [])

    def f(x, h0, w_ih, w_hh, *b):
        b_ih, b_hh = b if b else (None, None)
        return _select(engine.gru_layer(x, h0, w_ih, w_hh, b_ih, b_hh), which)

    assert torch.autograd.gradcheck(f, inputs)


def test_partial_requires_grad(engine):
    """Only some inputs need gradients: the others get None and the rest stay right."""
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.zeros(B, H, dtype=torch.float64)
    w_ih, w_hh, b_ih, b_hh = _params(1)
    b_ih.requires_grad_(False)
    f = lambda w_hh, b_hh: engine.rnn_layer(x, h0, w_ih.detach(), w_hh, b_ih, b_hh, "sigmoid")  # noqa: E731
    assert torch.autograd.gradcheck(f, [w_hh, b_hh])


@pytest.mark.parametrize("which", ["both", "output", "final"])
def test_lstm_projection_gradcheck(which, chunked, engine):
    P = 2
    x, h0, c0 = _tensor(T, B, I), _tensor(B, P), _tensor(B, H)
    w_ih, w_hh, w_hr = _tensor(4 * H, I), _tensor(4 * H, P), _tensor(P, H)
    b_ih, b_hh = _tensor(4 * H), _tensor(4 * H)

    def f(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
        return _select(engine.lstm_layer(x, (h0, c0), w_ih, w_hh, b_ih, b_hh, weight_hr=w_hr), which)

    assert torch.autograd.gradcheck(f, [x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr])
