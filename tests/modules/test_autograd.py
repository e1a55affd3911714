"""The layers under autograd's other uses: torch.func, double backward, torch.compile, TorchScript,
and saving a whole model."""

import io

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

import bptt

IN, HID, T, B = 3, 5, 6, 4
CELLS = [
    (bptt.RNN, {}),
    (bptt.RNN, {"activation": "prelu"}),
    (bptt.LSTM, {}),
    (bptt.LSTM, {"proj_size": 2}),
    (bptt.GRU, {}),
]


def _layer(cls, extra, engine="fast", **kwargs):
    return cls(IN, HID, 2, engine=engine, dtype=torch.float64, **extra, **kwargs)


def _loss(out, state):
    h = state[0] if isinstance(state, tuple) else state
    return (out.sin()).sum() + (h**2).sum()


@pytest.mark.parametrize("cls,extra", CELLS)
def test_torch_func_grad_matches_autograd(cls, extra):
    layer = _layer(cls, extra)
    x = torch.randn(T, B, IN, dtype=torch.float64)
    params = dict(layer.named_parameters())
    got = grad(lambda p: _loss(*functional_call(layer, p, (x,))))(params)
    _loss(*layer(x)).backward()
    for name, p in layer.named_parameters():
        torch.testing.assert_close(got[name], p.grad)


@pytest.mark.parametrize("cls,extra", CELLS)
def test_torch_func_vmap_over_sequences_matches_a_batch(cls, extra):
    layer = _layer(cls, extra, bidirectional=True)
    x = torch.randn(B, T, IN, dtype=torch.float64)  # B unbatched sequences
    mapped, _ = vmap(layer)(x)
    batched, _ = layer(x.transpose(0, 1))
    torch.testing.assert_close(mapped, batched.transpose(0, 1))


@pytest.mark.parametrize("cls,extra", CELLS)
def test_double_backward_takes_a_differentiable_path(cls, extra):
    """The gradient penalty ||dL/dW||^2 differentiated once more, against the reference loop."""
    results = []
    x = torch.randn(T, B, IN, dtype=torch.float64, requires_grad=True)
    fast = _layer(cls, extra)
    reference = _layer(cls, extra, engine="reference")
    reference.load_state_dict(fast.state_dict())
    for layer in (fast, reference):
        params = list(layer.parameters())
        first = torch.autograd.grad(_loss(*layer(x)), [x, *params], create_graph=True)
        penalty = sum((g**2).sum() for g in first)
        results.append(torch.autograd.grad(penalty, [x, *params]))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cls,extra", CELLS)
def test_gradgradcheck_on_the_fast_engine(cls, extra):
    extra = {**extra, "proj_size": 1} if "proj_size" in extra else extra
    layer = cls(2, 3, engine="fast", dtype=torch.float64, **extra)
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    params = tuple(layer.parameters())

    def run(x, *weights):
        return functional_call(layer, dict(zip([n for n, _ in layer.named_parameters()], weights)), (x,))[0]

    assert torch.autograd.gradgradcheck(run, (x, *params))


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("cls,extra", CELLS)
def test_a_loss_on_one_output_only_leaves_the_other_gradient_none(engine, cls, extra):
    layer = _layer(cls, extra, engine=engine)
    x = torch.randn(T, B, IN, dtype=torch.float64, requires_grad=True)
    out, state = layer(x)
    h = state[0] if isinstance(state, tuple) else state
    (g_h,) = torch.autograd.grad(h.sum(), x)
    out, _ = layer(x)
    (g_out,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(g_h).all() and torch.isfinite(g_out).all() and not torch.equal(g_h, g_out)


def test_torchscript_refuses_with_the_alternative():
    layer = bptt.LSTM(IN, HID)
    with pytest.raises(RuntimeError, match="torch.compile"):
        torch.jit.script(layer)
    with pytest.raises(RuntimeError, match="torch.compile"):
        torch.jit.trace(layer, torch.randn(T, B, IN))


def test_a_whole_saved_model_loads_with_weights_only():
    modules = (
        nn.Sequential(nn.Linear(IN, IN), bptt.LSTM(IN, HID, 2, bidirectional=True, proj_size=2)),
        bptt.RNN(IN, HID, activation="prelu", residual=True),
        bptt.GRU(IN, HID, init="chrono", t_max=10),
    )
    for module in modules:
        buffer = io.BytesIO()
        torch.save(module, buffer)
        buffer.seek(0)
        # torch's own classes are the caller's to allow, as for any whole model; bptt's need nothing.
        with torch.serialization.safe_globals([nn.Sequential, nn.Linear]):
            loaded = torch.load(buffer, weights_only=True)
        assert type(loaded) is type(module)
        x = torch.randn(T, B, IN)
        torch.testing.assert_close(loaded(x)[0], module(x)[0])
        bptt.modules.find_recurrent(loaded).flatten_parameters()
        assert [n for n, _ in loaded.named_parameters()] == [n for n, _ in module.named_parameters()]


class _Wrapped(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = bptt.GRU(IN, HID)
        self.head = nn.Linear(HID, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out).squeeze(-1)


@pytest.mark.slow
def test_torch_compile_runs_the_layer_eagerly_in_a_graph_break():
    torch._dynamo.reset()
    model = _Wrapped()
    compiled = torch.compile(model)
    for steps in (6, 11):  # a second length: the layer's loop is not unrolled into a graph
        x = torch.randn(steps, B, IN)
        torch.testing.assert_close(compiled(x), model(x))
        compiled(x).sum().backward()
    explanation = torch._dynamo.explain(model)(torch.randn(40, B, IN))
    assert explanation.op_count < 20  # the head only: 40 unrolled steps would be hundreds
