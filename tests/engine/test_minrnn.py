"""minGRU and minLSTM: gradcheck of the fused backwards (Python and compiled loops), parity of the engines,
the record, g."""

import pytest
import torch
import torch.nn.functional as F

from bptt.engine import common, compiled, extension, minrnn
from bptt.engine.minrnn import GATES, g, min_layer, min_reference_layer, min_scan_layer

T, B, H = 7, 3, 4
CELLS = list(GATES)
ENGINES = {
    "fast": min_layer,
    "compiled": compiled.min_layer,
    "scan": min_scan_layer,
    "reference": min_reference_layer,
}
FUSED = ["fast", "compiled"]  # the hand-written backwards


def _inputs(cell, input_size, bias=True, scale=0.7):
    x = torch.randn(T, B, input_size, dtype=torch.float64)
    h0 = torch.rand(B, H, dtype=torch.float64)
    w = torch.randn(GATES[cell] * H, input_size, dtype=torch.float64) * scale
    b = torch.randn(GATES[cell] * H, dtype=torch.float64) if bias else None
    return [t if t is None else t.requires_grad_() for t in (x, h0, w, b)]


@pytest.fixture(params=[False, True], ids=["one-chunk", "many-chunks"])
def chunked(request, monkeypatch):
    """Also run in chunks of one or two steps, so the chunk seams are checked."""
    if request.param:
        monkeypatch.setattr(common, "CHUNK_ELEMENTS", 3 * B * H + 1)
    return request.param


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("input_size", [2, minrnn.RECOMPUTE_INPUT + 1], ids=["recomputed", "stored"])
@pytest.mark.parametrize("which", ["both", "output", "final"])
@pytest.mark.parametrize("engine", FUSED)
def test_gradcheck(cell, input_size, which, engine, chunked):
    def f(x, h0, w, b):
        out, h_n = ENGINES[engine](cell, x, h0, w, b)
        return {"both": (out, h_n), "output": (out,), "final": (h_n,)}[which]

    assert torch.autograd.gradcheck(f, _inputs(cell, input_size))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("engine", FUSED)
def test_gradcheck_without_bias_and_double_backward(cell, engine):
    x, h0, w, _ = _inputs(cell, 3, bias=False)
    layer = ENGINES[engine]
    assert torch.autograd.gradcheck(lambda x, h0, w: layer(cell, x, h0, w, None), [x, h0, w])
    assert torch.autograd.gradgradcheck(lambda x, h0, w: layer(cell, x, h0, w, None), [x, h0, w])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("input_size", [2, minrnn.RECOMPUTE_INPUT + 1], ids=["recomputed", "stored"])
def test_the_compiled_loops_match_the_python_loops_in_float32(cell, input_size, chunked):
    """float32 runs the compiled loops' own exp (about 1 ulp): the same numbers as the Python loops to
    float32's rounding, over gates driven into both of g's branches and far into the sigmoids' tails."""
    if not compiled.available():
        pytest.skip(f"the compiled loops are not available here: {extension.status()}")
    inputs = [None if t is None else (t.detach() * 8).float().requires_grad_() for t in _inputs(cell, input_size)]
    inputs[1] = inputs[1].detach().div(8).requires_grad_()  # h0 in [0, 1)
    weights = torch.randn(T, B, H)
    results = []
    for layer in (compiled.min_layer, min_layer):
        out, h_n = layer(cell, *inputs)
        results.append([out, *torch.autograd.grad((out * weights).sum() + h_n.sum(), inputs)])
    assert results[0][0].grad_fn is not None
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


@pytest.mark.parametrize("cell", CELLS)
def test_gates_far_into_their_tails_give_finite_gradients_in_float64(cell):
    """p_f = -800 (and p_i = +-800): every shifted exponent of minLSTM's z underflows in part; the
    gradients stay finite and equal the plain loop's on both hand-written loops."""
    x, h0, w, _ = (t.detach() for t in _inputs(cell, 2))
    b = torch.zeros(GATES[cell] * H, dtype=torch.float64)
    b[H : 2 * H] = -800.0  # p_z (minGRU) or p_f (minLSTM)
    if cell == "minlstm":
        b[2 * H : 2 * H + 2] = torch.tensor([800.0, -800.0])
    inputs = [t.requires_grad_() for t in (x, h0, w, b)]
    expected = torch.autograd.grad(min_reference_layer(cell, *inputs)[0].sum(), inputs)
    for engine in FUSED:
        grads = torch.autograd.grad(ENGINES[engine](cell, *inputs)[0].sum(), inputs)
        for got, want in zip(grads, expected):
            assert torch.isfinite(got).all(), engine
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize("engine", FUSED)
def test_a_broadcast_or_other_dtype_state_runs_as_the_plain_loop_takes_it(engine):
    x, _, w, b = _inputs("minlstm", 2)
    x32, w32, b32 = (t.detach().float().requires_grad_() for t in (x, w, b))
    for h0 in (torch.rand(1, H, dtype=torch.float32), torch.rand(B, H, dtype=torch.float64)):
        h0.requires_grad_()
        out, h_n = ENGINES[engine]("minlstm", x32, h0, w32, b32)
        ref_out, ref_h_n = min_reference_layer("minlstm", x32, h0.float(), w32, b32)
        torch.testing.assert_close(out, ref_out)
        torch.testing.assert_close(h_n, ref_h_n)
        (grad,) = torch.autograd.grad(out.sum(), h0)
        (want,) = torch.autograd.grad(ref_out.sum(), h0)
        assert grad.shape == h0.shape and grad.dtype == h0.dtype
        torch.testing.assert_close(grad.float(), want.float())


def test_the_compiled_operators_refuse_buffers_of_the_wrong_size():
    if not compiled.available():
        pytest.skip(f"the compiled loops are not available here: {extension.status()}")
    ops = extension.loops()
    n, G = 5, 3
    p, out = torch.randn(G, n, B, H), torch.empty(n, B, H)
    grad_h, delta, state = torch.randn(n, B, H), torch.empty(G, n, B, H), torch.zeros(B, H)
    norms = torch.empty(n, B, dtype=torch.float64)
    ops.min_forward(p, state, out)  # the right sizes run
    ops.min_backward(p, out, state, grad_h, delta, state.clone(), norms)
    with pytest.raises(RuntimeError, match="a state"):
        ops.min_forward(p, torch.zeros(1, H), out)
    with pytest.raises(RuntimeError, match="G 2 or 3"):
        ops.min_forward(p[:1], state, out)
    with pytest.raises(RuntimeError, match="a state"):
        ops.min_backward(p, out, state, grad_h, delta, torch.zeros(1), norms)
    with pytest.raises(RuntimeError, match="norms"):
        ops.min_backward(p, out, state, grad_h, delta, state.clone(), torch.empty(1, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="grad_h"):
        ops.min_backward(p, out, state, grad_h[:1], delta, state.clone(), norms)
    with pytest.raises(RuntimeError, match="gate blocks"):
        ops.min_backward(p, out, state, grad_h, delta[:2], state.clone(), norms)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("engine", ["fast", "compiled", "scan"])
@pytest.mark.parametrize("input_size", [2, minrnn.RECOMPUTE_INPUT + 1], ids=["recomputed", "stored"])
def test_matches_the_plain_loop(cell, engine, input_size, chunked):
    inputs = _inputs(cell, input_size)
    weights = torch.randn(T, B, H, dtype=torch.float64)
    out, h_n = ENGINES[engine](cell, *inputs)
    ref_out, ref_h_n = min_reference_layer(cell, *inputs)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h_n, ref_h_n)
    grads = torch.autograd.grad((out * weights).sum() + h_n.sum(), inputs)
    expected = torch.autograd.grad((ref_out * weights).sum() + ref_h_n.sum(), inputs)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


def test_the_cells_are_the_papers_equations():
    x, h0, w, b = (t.detach() for t in _inputs("minlstm", 2))
    p = F.linear(x, w, b)
    h = h0
    for t in range(T):
        p_h, p_f, p_i = p[t].chunk(3, dim=-1)
        f, i = torch.sigmoid(p_f), torch.sigmoid(p_i)
        h = f / (f + i) * h + i / (f + i) * g(p_h)
    torch.testing.assert_close(min_layer("minlstm", x, h0, w, b)[1], h)
    x, h0, w, b = (t.detach() for t in _inputs("mingru", 2))
    p_h, p_z = F.linear(x, w, b).chunk(2, dim=-1)
    h = h0
    for t in range(T):
        z = torch.sigmoid(p_z[t])
        h = (1 - z) * h + z * g(p_h[t])
    torch.testing.assert_close(min_layer("mingru", x, h0, w, b)[1], h)


def test_g_is_positive_and_its_slope_at_zero_is_one():
    v = torch.tensor([-30.0, -1.0, -0.0, 0.0, 1e-30, 2.0], dtype=torch.float64)
    assert (g(v) > 0).all()
    torch.testing.assert_close(
        g(v), torch.tensor([torch.sigmoid(v[0]), torch.sigmoid(v[1]), 0.5, 0.5, 0.5, 2.5]).double()
    )
    # p_h = 0 exactly (zero input, zero bias): the fused backward takes g's slope there as 1, as autograd does.
    x = torch.zeros(T, B, 2, dtype=torch.float64)
    h0 = torch.rand(B, H, dtype=torch.float64)
    w = torch.randn(2 * H, 2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2 * H, dtype=torch.float64, requires_grad=True)
    expected = torch.autograd.grad(min_reference_layer("mingru", x, h0, w, b)[0].sum(), b)
    for engine in FUSED:
        grads = torch.autograd.grad(ENGINES[engine]("mingru", x, h0, w, b)[0].sum(), b)
        torch.testing.assert_close(grads, expected)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("engine", list(ENGINES))
def test_the_record_is_dl_dh_at_every_step(cell, engine, chunked, open_record, norms_of):
    x, h0, w, b = _inputs(cell, 2)
    weights = torch.randn(T, B, H, dtype=torch.float64)
    record, recorders = open_record(T)
    out, h_n = ENGINES[engine](cell, x, h0, w, b, recorders)
    ((out * weights).sum() + (h_n**2).sum()).backward()
    candidate, z = minrnn.gates(cell, F.linear(x, w, b).detach())
    states, h = [], h0.detach().requires_grad_()
    for t in range(T):
        h = torch.lerp(h, candidate[t], z[t])
        h.retain_grad()
        states.append(h)
    ((torch.stack(states) * weights).sum() + (states[-1] ** 2).sum()).backward()
    torch.testing.assert_close(record.per_sample()[0], norms_of(states))


def test_unknown_cell():
    with pytest.raises(ValueError, match="allowed: mingru, minlstm"):
        min_layer("mingru2", *_inputs("mingru", 2))
