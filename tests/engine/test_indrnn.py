"""IndRNN's hand-written BPTT: gradcheck in float64, parity with its plain loop, recording."""

import pytest
import torch

from bptt.engine.indrnn import INDRNN_ACTIVATIONS, indrnn_layer, reference_layer
from bptt.engine.recording import RECORD_ATTRIBUTE, GradientRecord, LayerRecorders, StepRecorder, TermRecorder


def _inputs(T=6, B=3, I=2, H=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    make = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()  # noqa: E731
    u = (torch.rand(H, generator=g, dtype=torch.float64) * 1.2).requires_grad_()
    return make(T, B, I), make(B, H), make(H, I), u, make(H)


@pytest.mark.parametrize("activation", INDRNN_ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_and_gradgradcheck(activation, bias):
    x, h0, w, u, b = _inputs()
    args = (x, h0, w, u, b if bias else None)
    f = lambda *a: indrnn_layer(*a, activation)  # noqa: E731
    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)


@pytest.mark.parametrize("activation", INDRNN_ACTIVATIONS)
@pytest.mark.parametrize("which", ["output", "final", "both"])
def test_parity_with_the_plain_loop(activation, which, monkeypatch):
    monkeypatch.setattr("bptt.engine.common.CHUNK_ELEMENTS", 8)  # several backward chunks
    x, h0, w, u, b = _inputs(T=9)
    results = []
    for layer in (indrnn_layer, reference_layer):
        out, h_n = layer(x, h0, w, u, b, activation)
        loss = {"output": (out * out.detach().sin()).sum(), "final": h_n.square().sum()}.get(which)
        loss = loss if loss is not None else out.sum() + h_n.square().sum()
        results.append((out, h_n, torch.autograd.grad(loss, (x, h0, w, u, b))))
    (o1, h1, g1), (o2, h2, g2) = results
    torch.testing.assert_close(o1, o2)
    torch.testing.assert_close(h1, h2)
    for a, c in zip(g1, g2):
        torch.testing.assert_close(a, c)


class _Module(torch.nn.Module):
    pass


def test_the_backward_records_dl_dh_and_the_update_terms_as_the_plain_loop_does():
    x, h0, w, u, b = _inputs(T=8)
    tables = []
    for layer in (indrnn_layer, reference_layer):
        module = _Module()
        record = GradientRecord(num_layers=1, updates=True, names=("h",))
        object.__setattr__(module, RECORD_ATTRIBUTE, record)
        recorders = LayerRecorders(
            StepRecorder(module, 0, 0, 8, "hidden", batch=3), None, TermRecorder(module, 0, 0, 8)
        )
        out, h_n = layer(x, h0, w, u, b, "relu", recorders)
        (out.sum() + h_n.sum()).backward()
        tables.append((record.per_sample("hidden"), record.update_terms()))
    torch.testing.assert_close(tables[0][0], tables[1][0])
    # The plain loop records the terms through the generic matrix formula; the diagonal term is its diagonal.
    assert tables[0][1] is not None and tables[0][1].shape == (1, 8)
