"""The whole torch.nn recurrent surface, against torch.nn side by side with the same state dict:
bidirectional, proj_size, packed sequences, the nn.RNNBase API and torch's error contract."""

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pack_sequence

import bptt

TWINS = {"RNN": (nn.RNN, bptt.RNN), "LSTM": (nn.LSTM, bptt.LSTM), "GRU": (nn.GRU, bptt.GRU)}
IN, HID, LAYERS, T, B = 4, 6, 2, 7, 5


def _pair(kind, engine, **kwargs):
    theirs_cls, ours_cls = TWINS[kind]
    theirs = theirs_cls(IN, HID, LAYERS, **kwargs).double()
    ours = ours_cls(IN, HID, LAYERS, engine=engine, **kwargs).double()
    assert set(ours.state_dict()) == set(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


def _run(module, x, hx):
    """Outputs, final states and every gradient (parameters, input, initial state) of one loss."""
    module.zero_grad(set_to_none=True)
    leaves = [x.data if isinstance(x, PackedSequence) else x, *(hx if isinstance(hx, tuple) else (hx,))]
    out, state = module(x, hx)
    data = out.data if isinstance(out, PackedSequence) else out
    states = state if isinstance(state, tuple) else (state,)
    weights = torch.linspace(-1, 1, data.numel(), dtype=data.dtype).view_as(data)
    loss = (data * weights).sum() + sum((s**2).sum() for s in states)
    grads = torch.autograd.grad(loss, [*leaves, *module.parameters()])
    return out, states, grads


def _assert_same(theirs_result, ours_result):
    (o1, s1, g1), (o2, s2, g2) = theirs_result, ours_result
    if isinstance(o1, PackedSequence):
        assert isinstance(o2, PackedSequence)
        torch.testing.assert_close(o2.batch_sizes, o1.batch_sizes)
        for a, b in ((o1.sorted_indices, o2.sorted_indices), (o1.unsorted_indices, o2.unsorted_indices)):
            assert (a is None and b is None) or torch.equal(a, b)
        o1, o2 = o1.data, o2.data
    torch.testing.assert_close(o2, o1)
    for a, b in zip(s1, s2, strict=True):
        torch.testing.assert_close(b, a)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(b, a)


def _states(kind, batch, directions, proj=0, batched=True, dtype=torch.float64):
    shape = (LAYERS * directions, batch, proj or HID) if batched else (LAYERS * directions, proj or HID)
    h = torch.randn(shape, dtype=dtype, requires_grad=True)
    if kind != "LSTM":
        return h
    c_shape = (*shape[:-1], HID)
    return h, torch.randn(c_shape, dtype=dtype, requires_grad=True)


CASES = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {}), ("LSTM", {"proj_size": 3})]
ENGINES = ["fast", "reference"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind,extra", CASES)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_dense_input_matches_torch(engine, kind, extra, bidirectional, batch_first):
    theirs, ours = _pair(kind, engine, bidirectional=bidirectional, batch_first=batch_first, **extra)
    x = torch.randn((B, T, IN) if batch_first else (T, B, IN), dtype=torch.float64, requires_grad=True)
    hx = _states(kind, B, 2 if bidirectional else 1, extra.get("proj_size", 0))
    _assert_same(_run(theirs, x, hx), _run(ours, x, hx))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind,extra", CASES)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("how", ["sorted", "unsorted", "pack_sequence", "batch_first"])
def test_packed_input_matches_torch(engine, kind, extra, bidirectional, how):
    theirs, ours = _pair(kind, engine, bidirectional=bidirectional, batch_first=how == "batch_first", **extra)
    if how == "pack_sequence":
        x = pack_sequence([torch.randn(n, IN, dtype=torch.float64) for n in (4, 7, 1, 7, 2)], enforce_sorted=False)
    else:
        lengths = torch.tensor([7, 7, 5, 3, 1]) if how == "sorted" else torch.tensor([3, 7, 1, 7, 5])
        padded = torch.randn(T, B, IN, dtype=torch.float64)
        if how == "batch_first":
            padded = padded.transpose(0, 1)
        x = pack_padded_sequence(padded, lengths, batch_first=how == "batch_first", enforce_sorted=how == "sorted")
    x = PackedSequence(x.data.requires_grad_(), x.batch_sizes, x.sorted_indices, x.unsorted_indices)
    hx = _states(kind, B, 2 if bidirectional else 1, extra.get("proj_size", 0))
    _assert_same(_run(theirs, x, hx), _run(ours, x, hx))


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_packed_final_state_is_taken_at_each_sequences_last_step(kind):
    """h_n of a packed batch equals h_n of each sequence run alone, in the caller's order."""
    _, ours = _pair(kind, "fast", bidirectional=True)
    sequences = [torch.randn(n, IN, dtype=torch.float64) for n in (3, 7, 1)]
    _, packed_state = ours(pack_sequence(sequences, enforce_sorted=False))
    for b, sequence in enumerate(sequences):
        _, alone = ours(sequence.unsqueeze(1))
        for got, want in zip(
            packed_state if kind == "LSTM" else (packed_state,), alone if kind == "LSTM" else (alone,)
        ):
            torch.testing.assert_close(got[:, b], want[:, 0])


@pytest.mark.parametrize("kind,extra", CASES)
def test_unbatched_input_matches_torch(kind, extra):
    theirs, ours = _pair(kind, "fast", bidirectional=True, **extra)
    x = torch.randn(T, IN, dtype=torch.float64, requires_grad=True)
    hx = _states(kind, 1, 2, extra.get("proj_size", 0), batched=False)
    _assert_same(_run(theirs, x, hx), _run(ours, x, hx))


@pytest.mark.parametrize("activation", ["sigmoid", "leaky_relu", "prelu"])
@pytest.mark.parametrize("engine", ENGINES)
def test_every_activation_runs_bidirectional_and_packed_like_the_reference_loop(activation, engine):
    """Activations torch.nn lacks have no twin there; the fast engine must agree with the reference loop."""
    fast = bptt.RNN(IN, HID, LAYERS, activation=activation, bidirectional=True, residual=True, dtype=torch.float64)
    other = bptt.RNN(
        IN, HID, LAYERS, activation=activation, bidirectional=True, residual=True, engine=engine, dtype=torch.float64
    )
    other.load_state_dict(fast.state_dict())
    x = pack_padded_sequence(
        torch.randn(T, B, IN, dtype=torch.float64), torch.tensor([2, 7, 4, 7, 1]), enforce_sorted=False
    )
    x = PackedSequence(x.data.requires_grad_(), x.batch_sizes, x.sorted_indices, x.unsorted_indices)
    hx = _states("RNN", B, 2)
    _assert_same(_run(other, x, hx), _run(fast, x, hx))
    assert "prelu_weight_l1_reverse" in fast.state_dict() if activation == "prelu" else True


def test_the_rnnbase_api_that_code_in_the_wild_calls():
    for kind, extra in (("RNN", {}), ("LSTM", {"proj_size": 2}), ("GRU", {})):
        theirs, ours = _pair(kind, "fast", bidirectional=True, **extra)
        assert isinstance(ours, nn.RNNBase)
        assert ours.mode == theirs.mode and ours.proj_size == theirs.proj_size
        ours.flatten_parameters()  # a no-op on a CPU, as torch's
        assert [[p.shape for p in group] for group in ours.all_weights] == [
            [p.shape for p in group] for group in theirs.all_weights
        ]
        assert ours._flat_weights_names == theirs._flat_weights_names
        assert all(a is b for a, b in zip(ours._flat_weights, [getattr(ours, n) for n in ours._flat_weights_names]))
    assert bptt.RNN(2, 3, activation="sigmoid").mode == "RNN_SIGMOID"
    moved = bptt.LSTM(2, 3).double()
    assert all(w.dtype == torch.float64 for w in moved._flat_weights)  # kept up to date by .to()


def _error(make, run):
    try:
        run(make())
    except Exception as error:
        return type(error), str(error)
    return None, None


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("case", ["input size", "input dims", "hx shape", "hx dims", "dtype"])
def test_errors_match_torch(kind, case):
    theirs_cls, ours_cls = TWINS[kind]
    x = torch.randn(T, B, IN)
    lstm = kind == "LSTM"
    bad_state = {
        "hx shape": (torch.zeros(LAYERS, B + 1, HID), torch.zeros(LAYERS, B + 1, HID)),
        "hx dims": (torch.zeros(B, HID), torch.zeros(B, HID)),
    }
    calls = {
        "input size": lambda m: m(torch.randn(T, B, IN + 1)),
        "input dims": lambda m: m(torch.randn(T, B, IN, 2)),
        "hx shape": lambda m: m(x, bad_state["hx shape"] if lstm else bad_state["hx shape"][0]),
        "hx dims": lambda m: m(x, bad_state["hx dims"] if lstm else bad_state["hx dims"][0]),
        "dtype": lambda m: m(x.double()),
    }
    theirs = _error(lambda: theirs_cls(IN, HID, LAYERS), calls[case])
    ours = _error(lambda: ours_cls(IN, HID, LAYERS), calls[case])
    assert theirs[0] is not None and ours[0] is theirs[0], (theirs, ours)
    if case != "input dims":  # torch words the dims message per class; both name the dims
        assert ours[1] == theirs[1]


def test_constructor_errors_and_warnings_match_torch():
    for name in ("bias", "batch_first", "bidirectional"):
        with pytest.raises(TypeError, match=f"{name} should be of type bool"):
            bptt.LSTM(IN, HID, **{name: 1})
    for cls in (bptt.RNN, bptt.GRU):
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
            cls(IN, HID, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        bptt.LSTM(IN, HID, proj_size=HID)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        bptt.GRU(IN, HID, dropout=0.5)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        nn.GRU(IN, HID, dropout=0.5)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    assert [w.category for w in ours] == [w.category for w in theirs] == [UserWarning]
