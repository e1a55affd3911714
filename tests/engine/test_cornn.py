"""coRNN's hand-written BPTT and the modReLU activation: gradcheck in float64, parity with the plain loop."""

import pytest
import torch

from bptt.engine.cornn import cornn_layer, reference_layer
from bptt.engine.rnn import rnn_layer

CONSTANTS = (0.06, 2.0, 3.0)  # dt, gamma, epsilon


def _inputs(T=6, B=3, I=2, H=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    make = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()  # noqa: E731
    return make(T, B, I), make(B, H), make(B, H), make(H, I), make(H, H), make(H, H), make(H)


def _flat(out):
    output, (y, z) = out
    return output, y, z


@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_and_gradgradcheck(bias):
    x, y0, z0, w_ih, w_z, w_y, b = _inputs()
    args = (x, y0, z0, w_ih, w_z, w_y, b if bias else None)
    f = lambda x, y0, z0, *w: _flat(cornn_layer(x, (y0, z0), *w, *CONSTANTS))  # noqa: E731
    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)


@pytest.mark.parametrize("which", ["output", "final", "both"])
def test_parity_with_the_plain_loop(which, monkeypatch):
    monkeypatch.setattr("bptt.engine.common.CHUNK_ELEMENTS", 8)  # several backward chunks
    x, y0, z0, w_ih, w_z, w_y, b = _inputs(T=11)
    results = []
    for layer in (cornn_layer, reference_layer):
        out, (y, z) = layer(x, (y0, z0), w_ih, w_z, w_y, b, *CONSTANTS)
        losses = {"output": (out * out.detach().cos()).sum(), "final": y.square().sum() + (z * 3).sum()}
        loss = losses.get(which, losses["output"] + losses["final"])
        results.append((out, y, z, torch.autograd.grad(loss, (x, y0, z0, w_ih, w_z, w_y, b))))
    for a, c in zip(results[0][:3], results[1][:3]):
        torch.testing.assert_close(a, c)
    for a, c in zip(results[0][3], results[1][3]):
        torch.testing.assert_close(a, c)


def test_modrelu_runs_on_the_fast_rnn_engine_with_its_learned_bias():
    g = torch.Generator().manual_seed(1)
    make = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()  # noqa: E731
    args = (make(6, 3, 2), make(3, 4), make(4, 2), make(4, 4), make(4), None)
    bias = (torch.rand(4, generator=g, dtype=torch.float64) * 0.2 - 0.1).requires_grad_()
    f = lambda x, h0, w_ih, w_hh, b, m: rnn_layer(x, h0, w_ih, w_hh, b, None, "modrelu", m)  # noqa: E731
    assert torch.autograd.gradcheck(f, (*args[:5], bias))
    from bptt.engine.reference import rnn_layer as reference_rnn

    x, h0, w_ih, w_hh, b = args[:5]
    fast = rnn_layer(x, h0, w_ih, w_hh, b, None, "modrelu", bias)
    plain = reference_rnn(x, h0, w_ih, w_hh, b, None, "modrelu", bias)
    torch.testing.assert_close(fast[0], plain[0])
