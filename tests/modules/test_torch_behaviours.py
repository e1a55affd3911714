"""What torch.nn's recurrent layers do at the edges, done by bptt's on every engine, against the torch.nn
twin with the same state dict: no steps, no sequences, autocast, a loss on one output only, and the
behaviours PyTorch's own tests hold its layers to (test_nn.py): a zero initial state, dropout changed
after construction, retain_graph, non-contiguous input, frozen weights, inference mode, weight norm,
copies and pickles."""

import copy
import pickle

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

import bptt

TWINS = {"RNN": (nn.RNN, bptt.RNN), "LSTM": (nn.LSTM, bptt.LSTM), "GRU": (nn.GRU, bptt.GRU)}
CASES = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {}), ("LSTM", {"proj_size": 3})]
ENGINES = ["fast", "reference", "probe", "vendor", "auto"]
IN, HID, LAYERS, T, B = 4, 6, 2, 5, 3
IDS = [f"{kind}{'-' + '-'.join(map(str, extra.values())) if extra else ''}" for kind, extra in CASES]

every_layer = pytest.mark.parametrize("kind,extra", CASES, ids=IDS)
every_engine = pytest.mark.parametrize("engine", ENGINES)


def pair(kind, engine, extra, dtype=torch.float64, **kwargs):
    theirs_cls, ours_cls = TWINS[kind]
    theirs = theirs_cls(IN, HID, LAYERS, **extra, **kwargs).to(dtype)
    ours = ours_cls(IN, HID, LAYERS, engine=engine, **extra, **kwargs).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


def states(result):
    return result if isinstance(result, tuple) else (result,)


def grads(module, loss_of, x, *extra_leaves):
    """The output, final states and the gradients of ``loss_of(output, states)`` for the input, the extra
    leaves and every parameter (None where the loss does not reach one)."""
    module.zero_grad(set_to_none=True)
    out, state = module(x)
    leaves = [x, *extra_leaves, *module.parameters()]
    return out, states(state), torch.autograd.grad(loss_of(out, states(state)), leaves, allow_unused=True)


def assert_same(theirs, ours, **tolerance):
    for a, b in zip(theirs, ours, strict=True):
        if isinstance(a, (tuple, list)):
            assert_same(a, b, **tolerance)
        elif a is None:
            assert b is None
        else:
            assert b is not None and b.dtype == a.dtype and b.shape == a.shape
            torch.testing.assert_close(b, a, **tolerance)


@every_engine
@every_layer
def test_no_steps_is_torchs_own_error(engine, kind, extra):
    theirs, ours = pair(kind, engine, extra)
    for x in (torch.zeros(0, B, IN), torch.zeros(0, IN), torch.zeros(0, B, IN, dtype=torch.float64)):
        for module in (theirs, ours):
            with pytest.raises(RuntimeError, match="^Expected sequence length to be larger than 0 in RNN$"):
                module(x.to(torch.float64))
    _, ours_first = pair(kind, engine, extra, batch_first=True)
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
        ours_first(torch.zeros(B, 0, IN, dtype=torch.float64))


@every_engine
@every_layer
def test_a_batch_of_no_sequences_runs_forward_and_backward_as_torchs(engine, kind, extra):
    theirs, ours = pair(kind, engine, extra)
    x = torch.zeros(T, 0, IN, dtype=torch.float64, requires_grad=True)
    loss = lambda out, s: out.sum() + sum(v.sum() for v in s)  # noqa: E731
    assert_same(grads(theirs, loss, x), grads(ours, loss, x))


@every_engine
@every_layer
def test_cpu_autocast_to_bfloat16_gives_torchs_dtypes(engine, kind, extra):
    theirs, ours = pair(kind, engine, extra, dtype=torch.float32)
    x = torch.randn(T, B, IN, requires_grad=True)
    uneven = pack_sequence([torch.randn(T, IN), torch.randn(T - 2, IN)])  # a packed LSTM stays float32
    even = pack_sequence([torch.randn(T, IN), torch.randn(T, IN)])
    loss = lambda out, s: (out.float() ** 2).sum() + sum((v.float() ** 2).sum() for v in s)  # noqa: E731
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want, got = grads(theirs, loss, x), grads(ours, loss, x)
        packed = [(theirs(p), ours(p)) for p in (uneven, even)]
    assert_same(want, got, atol=0.05, rtol=0.05)  # bfloat16 holds about 3 digits
    for (want_out, want_state), (got_out, got_state) in packed:
        assert got_out.data.dtype == want_out.data.dtype
        assert [s.dtype for s in states(got_state)] == [s.dtype for s in states(want_state)]
        torch.testing.assert_close(got_out.data.float(), want_out.data.float(), atol=0.05, rtol=0.05)


@every_engine
@every_layer
@pytest.mark.parametrize("reaches", ["output", "h_n", "c_n"])
def test_a_loss_that_reaches_one_output_only_gives_torchs_gradients(engine, kind, extra, reaches):
    if reaches == "c_n" and kind != "LSTM":
        pytest.skip("c_n is an LSTM's")
    theirs, ours = pair(kind, engine, extra)
    x = torch.randn(T, B, IN, dtype=torch.float64, requires_grad=True)
    pick = {"output": lambda out, s: out, "h_n": lambda out, s: s[0], "c_n": lambda out, s: s[-1]}[reaches]
    loss = lambda out, s: (pick(out, s) * torch.linspace(-1, 1, pick(out, s).numel()).view_as(pick(out, s))).sum()  # noqa: E731
    assert_same(grads(theirs, loss, x), grads(ours, loss, x))


@every_engine
@every_layer
def test_a_zero_initial_state_is_no_initial_state(engine, kind, extra):
    _, ours = pair(kind, engine, extra)
    x = torch.randn(T, B, IN, dtype=torch.float64)
    out, state = ours(x)
    zeros = tuple(torch.zeros_like(s) for s in states(state))
    again, again_state = ours(x, zeros if kind == "LSTM" else zeros[0])
    assert_same((out, states(state)), (again, states(again_state)), atol=0, rtol=0)


@every_engine
@every_layer
def test_dropout_changed_after_construction_takes_effect_as_torchs(engine, kind, extra):
    theirs, ours = pair(kind, engine, extra)
    x = torch.randn(T, B, IN, dtype=torch.float64)
    for module in (theirs, ours):
        module.train()
        module.dropout = 1.0  # every unit between the layers dropped: the top layer sees zeros
    assert_same(theirs(x), ours(x))
    for module in (theirs, ours):
        module.dropout = 0.0
    assert_same(theirs(x), ours(x))


@every_engine
@every_layer
def test_retain_graph_then_a_second_backward_accumulates_as_torchs(engine, kind, extra):
    theirs, ours = pair(kind, engine, extra)
    x = torch.randn(T, B, IN, dtype=torch.float64)
    accumulated = []
    for module in (theirs, ours):
        module.zero_grad(set_to_none=True)
        out, state = module(x)
        loss = (out**2).sum() + (states(state)[0] ** 2).sum()
        loss.backward(retain_graph=True)
        loss.backward()
        accumulated.append([p.grad for p in module.parameters()])
    assert_same(*accumulated)


@every_engine
@every_layer
def test_a_non_contiguous_input_gives_torchs_outputs_and_gradients(engine, kind, extra):
    theirs, ours = pair(kind, engine, extra)
    wide = torch.randn(B, T, 2 * IN, dtype=torch.float64, requires_grad=True)
    x = wide[:, :, ::2].transpose(0, 1)
    assert not x.is_contiguous()
    loss = lambda out, s: (out**3).sum() + (s[0] ** 2).sum()  # noqa: E731
    assert_same(grads(theirs, loss, x, wide)[:2], grads(ours, loss, x, wide)[:2])
    assert_same(grads(theirs, loss, x, wide)[2], grads(ours, loss, x, wide)[2])


@every_engine
@every_layer
def test_frozen_weights_pass_the_gradient_to_the_input_only(engine, kind, extra):
    theirs, ours = pair(kind, engine, extra)
    for p in (*theirs.parameters(), *ours.parameters()):
        p.requires_grad_(False)
    x = torch.randn(T, B, IN, dtype=torch.float64, requires_grad=True)
    got = [torch.autograd.grad(m(x)[0].sum(), x)[0] for m in (theirs, ours)]
    torch.testing.assert_close(got[1], got[0])


@every_engine
@every_layer
def test_inference_mode_gives_torchs_outputs(engine, kind, extra):
    theirs, ours = pair(kind, engine, extra)
    x = torch.randn(T, B, IN, dtype=torch.float64)
    with torch.inference_mode():
        assert_same(theirs(x), ours(x))


@every_engine
@every_layer
def test_weight_norm_on_the_recurrent_weight_works_as_on_torchs(engine, kind, extra):
    theirs, ours = pair(kind, engine, extra)
    for module in (theirs, ours):
        nn.utils.parametrizations.weight_norm(module, "weight_hh_l0")
        with torch.no_grad():
            module.parametrizations.weight_hh_l0.original0.mul_(1.5)  # the norm changes, the direction stays
    x = torch.randn(T, B, IN, dtype=torch.float64, requires_grad=True)
    loss = lambda out, s: (out**2).sum()  # noqa: E731
    assert_same(grads(theirs, loss, x), grads(ours, loss, x))


@every_engine
@every_layer
def test_a_deep_copy_and_a_pickle_give_the_same_outputs(engine, kind, extra):
    _, ours = pair(kind, engine, extra)
    x = torch.randn(T, B, IN, dtype=torch.float64)
    for copied in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert copied.engine == engine
        assert_same(ours(x), copied(x), atol=0, rtol=0)
