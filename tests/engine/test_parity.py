"""The fast engine against the reference loop and torch.nn (float32, copied state dicts)."""

import pytest
import torch
from torch import nn

import bptt
from bptt.engine import ACTIVATIONS, DEFAULT_ENGINE, ENGINES, Activation, common, compiled

IN, HID, BATCH, STEPS = 3, 6, 4, 7
TORCH_TWINS = {
    "rnn-tanh": (bptt.RNN, nn.RNN, {"nonlinearity": "tanh"}),
    "rnn-relu": (bptt.RNN, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (bptt.LSTM, nn.LSTM, {}),
    "gru": (bptt.GRU, nn.GRU, {}),
}
ALL_CELLS = {
    **{f"rnn-{a}": (bptt.RNN, {"activation": a}) for a in ("sigmoid", "tanh", "relu", "leaky_relu", "prelu")},
    "rnn-leaky-negative": (bptt.RNN, {"activation": "leaky_relu", "negative_slope": -0.2}),
    "lstm": (bptt.LSTM, {}),
    "gru": (bptt.GRU, {}),
}


def _state(is_lstm, num_layers):
    h0 = torch.randn(num_layers, BATCH, HID)
    return (h0, torch.randn(num_layers, BATCH, HID)) if is_lstm else h0


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


def _run(model, x, state, weights):
    """Outputs, final states, and the gradients of x, h0 (c0) and every parameter."""
    x = x.clone().requires_grad_()
    state = [s.clone().requires_grad_() for s in _flat(state)]
    out, final = model(x, tuple(state) if len(state) == 2 else state[0])
    loss = (out * weights).sum() + sum((s * s).sum() for s in _flat(final))
    loss.backward()
    grads = {f"param {n}": p.grad for n, p in model.named_parameters()}
    grads.update({"x": x.grad, **{f"state {i}": s.grad for i, s in enumerate(state)}})
    return out, _flat(final), grads


def _compare(a, b, **tol):
    out_a, final_a, grads_a = a
    out_b, final_b, grads_b = b
    torch.testing.assert_close(out_a, out_b, **tol)
    for u, v in zip(final_a, final_b):
        torch.testing.assert_close(u, v, **tol)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], **tol, msg=lambda m: f"{name}: {m}")


def test_auto_is_the_default_engine_and_picks_per_call():
    assert DEFAULT_ENGINE == "auto" and "fast" in ENGINES and "reference" in ENGINES
    rnn, lstm = bptt.RNN(2, 3), bptt.LSTM(2, 3)
    assert rnn.engine == lstm.engine == "auto"
    x = torch.randn(4, 2, 2)
    # On a CPU: the compiled loops for every cell, recording or not, faster than torch.nn's kernels
    # (bptt.engine.choice); where they cannot be built, the Python loops for the RNN, and for the LSTM
    # torch.nn's kernel unless a record is open (the probe for dL/dh_t alone).
    ours = "compiled" if compiled.available() else "fast"
    assert rnn.engine_for(x) == ours and lstm.engine_for(x) == ("compiled" if ours == "compiled" else "vendor")
    assert lstm.engine_for(x, recording=True) == ours
    with bptt.record_gradients(lstm, cells=False):  # dL/dh_t alone
        assert lstm.engine_for(x) == ("compiled" if ours == "compiled" else "probe")
    with bptt.record_gradients(lstm) as rec:
        assert lstm.engine_for(x) == ours
        lstm(x)[0].sum().backward()
    assert rec.hidden is not None and lstm.last_engine == ours
    assert bptt.LSTM(2, 3, residual=True).engine_for(x) == ours  # the vendor has no skip connections
    with bptt.modules.watch_steps(rnn, lambda *a: None):
        assert rnn.engine_for(x) == "reference"


@pytest.mark.parametrize("name", list(TORCH_TWINS))
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("engine", ["fast", "compiled", "recompute"])
def test_parity_with_torch_nn(name, num_layers, batch_first, engine):
    ours_cls, theirs_cls, kwargs = TORCH_TWINS[name]
    theirs = theirs_cls(IN, HID, num_layers, batch_first=batch_first, **kwargs)
    ours = ours_cls(IN, HID, num_layers, batch_first=batch_first, engine=engine, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(BATCH, STEPS, IN) if batch_first else torch.randn(STEPS, BATCH, IN)
    state = _state(theirs_cls is nn.LSTM, num_layers)
    weights = torch.randn((*x.shape[:2], HID))
    _compare(_run(ours, x, state, weights), _run(theirs, x, state, weights))


@pytest.mark.parametrize("name", list(ALL_CELLS))
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("engine", ["fast", "compiled", "recompute"])
def test_parity_with_reference(name, num_layers, batch_first, engine):
    cls, kwargs = ALL_CELLS[name]
    fast = cls(IN, HID, num_layers, batch_first=batch_first, engine=engine, **kwargs)
    reference = cls(IN, HID, num_layers, batch_first=batch_first, engine="reference", **kwargs)
    reference.load_state_dict(fast.state_dict())
    x = torch.randn(BATCH, STEPS, IN) if batch_first else torch.randn(STEPS, BATCH, IN)
    state = _state(cls is bptt.LSTM, num_layers)
    weights = torch.randn((*x.shape[:2], HID))
    _compare(_run(fast, x, state, weights), _run(reference, x, state, weights))


@pytest.mark.parametrize("name", ["rnn-prelu", "lstm", "gru"])
@pytest.mark.parametrize("engine", ["fast", "compiled", "recompute"])
def test_parity_with_options(name, engine, monkeypatch):
    """Residual, dropout (same seed), no bias, many backward chunks: still the reference's numbers."""
    monkeypatch.setattr(common, "CHUNK_ELEMENTS", BATCH * HID * 2)
    cls, kwargs = ALL_CELLS[name]
    models = [
        cls(IN, HID, 3, bias=False, residual=True, dropout=0.3, engine=e, **kwargs) for e in (engine, "reference")
    ]
    models[1].load_state_dict(models[0].state_dict())
    x = torch.randn(STEPS, BATCH, IN)
    state = _state(cls is bptt.LSTM, 3)
    weights = torch.randn(STEPS, BATCH, HID)
    results = []
    for model in models:
        torch.manual_seed(5)
        results.append(_run(model, x, state, weights))
    _compare(*results)


@pytest.mark.parametrize("name", ["rnn-tanh", "lstm", "gru"])
def test_loss_on_final_state_only(name):
    """Only h_n reaches the loss: the output gradient is absent, not a zero buffer."""
    cls, kwargs = ALL_CELLS[name]
    fast = cls(IN, HID, 2, **kwargs)
    reference = cls(IN, HID, 2, engine="reference", **kwargs)
    reference.load_state_dict(fast.state_dict())
    x = torch.randn(STEPS, BATCH, IN)
    for model in (fast, reference):
        _, final = model(x)
        _flat(final)[0].sum().backward()
    for (name_, p), q in zip(fast.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=lambda m: f"{name_}: {m}")


def test_unbatched_and_float64():
    fast = bptt.GRU(IN, HID, 2, dtype=torch.float64)
    reference = bptt.GRU(IN, HID, 2, engine="reference", dtype=torch.float64)
    reference.load_state_dict(fast.state_dict())
    x = torch.randn(STEPS, IN, dtype=torch.float64)
    out_f, h_f = fast(x)
    out_r, h_r = reference(x)
    assert out_f.dtype == torch.float64 and out_f.shape == (STEPS, HID) and h_f.shape == (2, HID)
    torch.testing.assert_close(out_f, out_r)
    torch.testing.assert_close(h_f, h_r)


def test_no_grad_forward():
    model = bptt.LSTM(IN, HID)
    with torch.no_grad():
        out, (_h, _c) = model(torch.randn(STEPS, BATCH, IN))
    assert not out.requires_grad and out.shape == (STEPS, BATCH, HID)


class _Seen:
    def __init__(self):
        self.steps = []

    def input(self, x, projected):
        pass

    def step(self, t, h_prev, recurrent, h, c=None):
        self.steps.append(h.grad_fn is not None and recurrent.grad_fn is not None)


def test_a_step_watch_runs_the_reference_loop():
    """A watch needs per-step graph nodes: a fast layer runs the reference loop while it is open."""
    layer = bptt.RNN(IN, HID)
    seen = _Seen()
    with bptt.modules.watch_steps(layer, lambda index, direction, offset: seen):
        out, _ = layer(torch.randn(STEPS, BATCH, IN))
    assert seen.steps == [True] * STEPS
    assert "RNNFunction" not in type(out.grad_fn).__name__
    assert "RNNFunction" in type(layer(torch.randn(STEPS, BATCH, IN))[0].grad_fn).__name__  # closed: fast again


def test_a_newly_registered_activation_with_a_derivative_runs_on_the_fast_engine(monkeypatch):
    """softsign(a) = a / (1 + |a|), softsign'(a) = 1 / (1 + |a|)^2 from the kept pre-activation."""

    def derivative(h, a, slope, out):
        torch.abs(a, out=out).add_(1).square_().reciprocal_()

    monkeypatch.setitem(
        ACTIVATIONS._entries,
        "softsign",
        Activation(
            "softsign",
            lambda a, s: torch.nn.functional.softsign(a),
            1.0,
            derivative,
            keeps_preactivation=lambda s: True,
        ),
    )
    fast = bptt.RNN(3, 4, activation="softsign", dtype=torch.float64)
    reference_rnn = bptt.RNN(3, 4, activation="softsign", engine="reference", dtype=torch.float64)
    reference_rnn.load_state_dict(fast.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    out = fast(x)[0]
    assert "RNNFunction" in type(out.grad_fn).__name__
    torch.testing.assert_close(out, reference_rnn(x)[0])
    params = list(fast.parameters())
    assert torch.autograd.gradcheck(lambda x, *p: fast(x)[0], (x, *params))


def test_a_newly_registered_activation_runs_on_the_fast_engine_through_the_reference_loop(monkeypatch):
    monkeypatch.setitem(
        ACTIVATIONS._entries, "softsign", Activation("softsign", lambda a, s: torch.nn.functional.softsign(a), 1.0)
    )
    fast = bptt.RNN(3, 4, activation="softsign")
    reference_rnn = bptt.RNN(3, 4, activation="softsign", engine="reference")
    reference_rnn.load_state_dict(fast.state_dict())
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(fast(x)[0], reference_rnn(x)[0])
    torch.testing.assert_close(
        fast(x)[0][-1],
        torch.nn.functional.softsign(
            x[-1] @ fast.weight_ih_l0.T + fast.bias_ih_l0 + fast(x[:-1])[1][0] @ fast.weight_hh_l0.T + fast.bias_hh_l0
        ),
    )


@pytest.mark.parametrize("hidden", [1, 3])
def test_the_forward_leaves_the_weights_untouched(hidden):
    """The LSTM scales a transposed copy of W_hh in place; with a side of 1, .contiguous() would be W_hh itself."""
    for layer in (bptt.LSTM(2, hidden), bptt.LSTM(2, 2, proj_size=1), bptt.GRU(2, hidden), bptt.RNN(2, hidden)):
        before = {n: p.detach().clone() for n, p in layer.named_parameters()}
        layer(torch.randn(4, 3, 2))[0].sum().backward()
        for name, p in layer.named_parameters():
            assert torch.equal(p.detach(), before[name]), name
