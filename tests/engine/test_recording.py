"""record_gradients: batch-mean ||dL/dh_t||_2 per layer and step, on both engines."""

import pytest
import torch
from torch import nn

import bptt
from bptt.engine import common, reference

IN, HID, BATCH, STEPS, LAYERS = 3, 5, 4, 9, 2


class _Keep:
    """A step watch that keeps every h_t (and c_t) of a call with retain_grad, at step offset + t."""

    def __init__(self, hidden, cells, offset):
        self.hidden, self.cells, self.offset = hidden, cells, offset

    def input(self, x, projected):
        pass

    def step(self, t, h_prev, recurrent, h, c=None):
        h.retain_grad()
        self.hidden[self.offset + t] = h
        if c is not None:
            c.retain_grad()
            self.cells[self.offset + t] = c


def _manual_profile(model, x, weights, truncate=None):
    """dL/dh_t (and dL/dc_t) by retain_grad on a hand-built reference stack; norms computed here."""
    kind = type(model).__name__
    hidden = [[None] * STEPS for _ in range(LAYERS)]
    cells = [[None] * STEPS for _ in range(LAYERS)]
    layer_input = x
    finals = []
    for layer in range(LAYERS):
        params = model.layer_parameters(layer)
        state = (torch.zeros(BATCH, HID), torch.zeros(BATCH, HID)) if kind == "LSTM" else torch.zeros(BATCH, HID)
        outputs = []
        chunk = truncate or STEPS
        for start in range(0, STEPS, chunk):
            if start:
                state = tuple(s.detach() for s in state) if kind == "LSTM" else state.detach()

            watch = _Keep(hidden[layer], cells[layer], start)
            piece = layer_input[start : start + chunk]
            if kind == "RNN":
                out, state = reference.rnn_layer(
                    piece, state, *params, model.activation, model.slope(layer), watch=watch
                )
            elif kind == "LSTM":
                out, state = reference.lstm_layer(piece, state, *params, watch=watch)
            else:
                out, state = reference.gru_layer(piece, state, *params, watch=watch)
            outputs.append(out)
        layer_input = torch.cat(outputs)
        finals.append(state[0] if kind == "LSTM" else state)
    loss = (layer_input * weights).sum() + (finals[-1] ** 2).sum()
    loss.backward()
    norm = lambda table: torch.tensor([[h.grad.norm(dim=-1).mean().item() for h in row] for row in table])  # noqa: E731
    return norm(hidden), (norm(cells) if kind == "LSTM" else None)


def _recorded(model, x, weights, forward_inside=True):
    if forward_inside:
        with bptt.record_gradients(model) as rec:
            out, state = model(x)
            h_n = state[0] if isinstance(state, tuple) else state
            ((out * weights).sum() + (h_n[-1] ** 2).sum()).backward()
    else:
        out, state = model(x)
        h_n = state[0] if isinstance(state, tuple) else state
        loss = (out * weights).sum() + (h_n[-1] ** 2).sum()
        with bptt.record_gradients(model) as rec:
            loss.backward()
    return rec


CASES = {
    "rnn-tanh": (bptt.RNN, {}),
    "rnn-prelu": (bptt.RNN, {"activation": "prelu"}),
    "rnn-sigmoid": (bptt.RNN, {"activation": "sigmoid"}),
    "lstm": (bptt.LSTM, {}),
    "gru": (bptt.GRU, {}),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("engine", ["fast", "compiled", "recompute", "reference"])
@pytest.mark.parametrize("truncate", [None, 4])
@pytest.mark.parametrize("forward_inside", [True, False])
def test_record_matches_retain_grad(name, engine, truncate, forward_inside, monkeypatch):
    monkeypatch.setattr(common, "CHUNK_ELEMENTS", BATCH * HID * 2)  # several backward chunks
    cls, kwargs = CASES[name]
    model = cls(IN, HID, LAYERS, engine=engine, truncate=truncate, **kwargs)
    x, weights = torch.randn(STEPS, BATCH, IN), torch.randn(STEPS, BATCH, HID)
    expected_hidden, expected_cell = _manual_profile(model, x, weights, truncate)
    rec = _recorded(model, x, weights, forward_inside)
    assert rec.hidden.shape == (LAYERS, STEPS)
    torch.testing.assert_close(rec.hidden, expected_hidden)
    if cls is bptt.LSTM:
        torch.testing.assert_close(rec.cell, expected_cell)
    else:
        assert rec.cell is None


def test_record_through_a_wrapping_module():
    inner = bptt.LSTM(IN, HID, LAYERS)
    model = nn.Sequential(nn.Linear(IN, IN), inner)
    x = torch.randn(STEPS, BATCH, IN)
    with bptt.record_gradients(model) as rec:
        out, _ = model(x)
        out[-1].sum().backward()
    assert rec.hidden.shape == (LAYERS, STEPS) and rec.cell.shape == (LAYERS, STEPS)
    assert torch.all(rec.hidden > 0)


def test_nothing_recorded_outside_the_block():
    model = bptt.RNN(IN, HID)
    x = torch.randn(STEPS, BATCH, IN)
    with bptt.record_gradients(model) as rec:
        pass
    model(x)[0].sum().backward()
    assert rec.hidden is None and rec.cell is None


def test_record_needs_a_recurrent_layer():
    with pytest.raises(TypeError, match="bptt RNN, LSTM or GRU"), bptt.record_gradients(nn.Linear(2, 2)):
        pass


def test_engines_agree_on_a_long_sequence():
    """A vanishing profile over 60 steps: fast and reference record the same numbers."""
    fast = bptt.RNN(2, 16, activation="sigmoid")
    ref = bptt.RNN(2, 16, activation="sigmoid", engine="reference")
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(60, 8, 2)
    profiles = []
    for model in (fast, ref):
        with bptt.record_gradients(model) as rec:
            model(x)[1].sum().backward()
        profiles.append(rec.hidden)
    torch.testing.assert_close(profiles[0], profiles[1])
    assert profiles[0][0, 0] < profiles[0][0, -1]  # the gradient shrinks with lag


def test_record_steps_off_leaves_the_reference_loop_bare():
    model = bptt.RNN(IN, HID, engine="reference")
    model.record_steps = False
    with bptt.record_gradients(model) as rec:
        model(torch.randn(STEPS, BATCH, IN))[0].sum().backward()
    assert rec.hidden is None


def test_tiny_gradients_are_measured_not_rounded_to_zero():
    rnn = bptt.RNN(2, 4, activation="sigmoid")
    x = torch.randn(6, 3, 2)
    _output, h_n = rnn(x)
    with bptt.record_gradients(rnn) as rec:
        (h_n * 1e-30).sum().backward()  # every dL/dh_t is below 1e-30: its square underflows float32
    assert torch.all(rec.hidden > 0)
    # ||dL/dh_T|| = ||(1e-30, 1e-30, 1e-30, 1e-30)|| = 2e-30 for every example.
    assert float(rec.hidden[0, -1]) == pytest.approx(2e-30, rel=1e-5, abs=0)


class _KeepAll(_Keep):
    """_Keep for one direction of a bidirectional layer, whose steps map back through ``to_input``."""

    def __init__(self, hidden, cells, to_input):
        super().__init__(hidden, cells, 0)
        self.to_input = to_input

    def step(self, t, h_prev, recurrent, h, c=None):
        h.retain_grad()
        self.hidden.append((t, h))


@pytest.mark.parametrize("engine", ["fast", "compiled", "recompute", "reference"])
@pytest.mark.parametrize("cls", [bptt.RNN, bptt.LSTM, bptt.GRU])
def test_each_direction_of_a_packed_bidirectional_layer_has_its_own_profile(engine, cls):
    """Against retain_grad on every h_t of a watched reference run: per sequence, per direction, on
    the input's own steps, padded steps excluded from the means."""
    from torch.nn.utils.rnn import pack_padded_sequence

    lengths = torch.tensor([STEPS, 4, STEPS, 2])  # the caller's order; the layer sorts longest first
    layer = cls(IN, HID, 1, bidirectional=True, engine=engine, dtype=torch.float64)
    reference_layer = cls(IN, HID, 1, bidirectional=True, engine="reference", dtype=torch.float64)
    reference_layer.load_state_dict(layer.state_dict())
    x = torch.randn(STEPS, BATCH, IN, dtype=torch.float64)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)

    def loss_of(module):
        out, state = module(packed)
        h = state[0] if isinstance(state, tuple) else state
        return (out.data.sin()).sum() + (h**2).sum()

    with bptt.record_gradients(layer) as rec:
        loss_of(layer).backward()
    # The same gradients, one sequence at a time, with retain_grad on the reference loop.
    per_sequence = {0: [], 1: []}
    for b in range(BATCH):
        n = int(lengths[b])
        kept = {0: [], 1: []}
        with bptt.modules.watch_steps(reference_layer, lambda l, d, o: _KeepAll(kept[d], [], None)):
            out, state = reference_layer(x[:n, b : b + 1])
        h = state[0] if isinstance(state, tuple) else state
        ((out.sin()).sum() + (h**2).sum()).backward()
        per_sequence[0].append([kept[0][t][1].grad.norm().item() for t in range(n)])
        per_sequence[1].append([kept[1][n - 1 - t][1].grad.norm().item() for t in range(n)])  # back to input steps
    order = torch.sort(lengths, descending=True, stable=True).indices.tolist()
    for direction in (0, 1):
        table = rec.per_sample("hidden", direction)[0]  # (T, B) in the layer's (sorted) order
        for row, b in enumerate(order):
            n = int(lengths[b])
            torch.testing.assert_close(table[:n, row], torch.tensor(per_sequence[direction][b], dtype=torch.float64))
            assert torch.all(table[n:, row] == 0)
        means = [
            sum(per_sequence[direction][b][t] for b in range(BATCH) if t < lengths[b])
            / sum(1 for b in range(BATCH) if t < lengths[b])
            for t in range(STEPS)
        ]
        got = rec.hidden if direction == 0 else rec.hidden_reverse
        torch.testing.assert_close(got[0], torch.tensor(means, dtype=torch.float64))
    # By lag, each sequence is aligned at its own end (forward) or start (reverse).
    lag = rec.by_lag("hidden", 0)[0]
    want = [
        sum(per_sequence[0][b][int(lengths[b]) - 1 - k] for b in range(BATCH) if k < lengths[b])
        / sum(1 for b in range(BATCH) if k < lengths[b])
        for k in range(STEPS)
    ]
    torch.testing.assert_close(lag, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("engine", ["fast", "compiled", "recompute", "reference"])
@pytest.mark.parametrize("name", list(CASES))
def test_update_terms_are_the_per_step_terms_of_the_w_hh_gradient(engine, name, monkeypatch):
    """||delta_t^T h_{t-1}||_F from the backward against the terms the diagnostics compute on the reference loop."""
    from bptt.diagnostics.updates import update_terms

    monkeypatch.setattr(common, "CHUNK_ELEMENTS", BATCH * HID * 2)
    cls, kwargs = CASES[name]
    model = cls(IN, HID, LAYERS, engine=engine, dtype=torch.float64, **kwargs)
    x, weights = torch.randn(STEPS, BATCH, IN, dtype=torch.float64), torch.randn(STEPS, BATCH, HID, dtype=torch.float64)

    def objective():
        out, _ = model(x)
        return (out * weights).sum()

    with bptt.record_gradients(model, updates=True) as rec:
        objective().backward()
    expected = torch.stack([torch.linalg.matrix_norm(t) for t in update_terms(model, objective).weight_hh])
    torch.testing.assert_close(rec.update_terms(), expected)
    with bptt.record_gradients(model) as plain:
        objective().backward()
    assert plain.update_terms() is None


@pytest.mark.parametrize(
    "cls,kwargs", [(bptt.RNN, {}), (bptt.RNN, {"nonlinearity": "relu"}), (bptt.LSTM, {}), (bptt.LSTM, {"proj_size": 3})]
)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_probe_reads_dl_dh_out_of_the_vendor_kernel(cls, kwargs, bidirectional):
    """The vendor's kernel widened by zero probe channels: the same dL/dh_t as the fast engine, and the
    same gradients (the probe's own weights take none)."""
    probe = cls(IN, HID, LAYERS, engine="probe", bidirectional=bidirectional, dtype=torch.float64, **kwargs)
    fast = cls(IN, HID, LAYERS, engine="fast", bidirectional=bidirectional, dtype=torch.float64, **kwargs)
    fast.load_state_dict(probe.state_dict())
    x = torch.randn(STEPS, BATCH, IN, dtype=torch.float64, requires_grad=True)
    results = []
    for layer in (probe, fast):
        x.grad = None
        with bptt.record_gradients(layer, cells=False) as rec:
            out, state = layer(x)
            h = state[0] if isinstance(state, tuple) else state
            (
                (out * torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)).sum() + (h**2).sum()
            ).backward()
        results.append((rec.hidden, rec.hidden_reverse, x.grad.clone(), [p.grad.clone() for p in layer.parameters()]))
        layer.zero_grad()
    (h1, r1, g1, p1), (h2, r2, g2, p2) = results
    torch.testing.assert_close(h1, h2)
    if bidirectional:
        torch.testing.assert_close(r1, r2)
    torch.testing.assert_close(g1, g2)
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kwargs", [{}, {"proj_size": 3}, {"bidirectional": True}])
@pytest.mark.parametrize("packed", [False, True])
def test_the_probe_derives_dl_dc_from_dl_dh(kwargs, packed):
    """The probe's dL/dc_t (a forward scan of c_t, a backward scan of dL/dc_t) against the fast engine's."""
    from torch.nn.utils.rnn import pack_padded_sequence

    probe = bptt.LSTM(IN, HID, LAYERS, engine="probe", dtype=torch.float64, **kwargs)
    fast = bptt.LSTM(IN, HID, LAYERS, engine="fast", dtype=torch.float64, **kwargs)
    fast.load_state_dict(probe.state_dict())
    x = torch.randn(STEPS, BATCH, IN, dtype=torch.float64)
    data = pack_padded_sequence(x, torch.tensor([STEPS, 5, 7, 2]), enforce_sorted=False) if packed else x
    records = []
    for layer in (probe, fast):
        with bptt.record_gradients(layer) as rec:
            out, (_h, c) = layer(data)
            out = out.data if packed else out
            (
                (out * torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)).sum() + (c**2).sum()
            ).backward()
        records.append(rec)
    assert records[0].cell is not None
    for name in ("hidden", "cell"):
        for direction in range(probe.num_directions):
            torch.testing.assert_close(records[0].per_sample(name, direction), records[1].per_sample(name, direction))


@pytest.mark.parametrize("parallel", [False, True])
def test_the_linear_scan_of_the_probe(parallel):
    """y_t = a_t y_{t-1} + b_t: step by step and as a parallel scan, against a plain loop."""
    from bptt.engine.vendor import linear_recurrence

    a, b, y0 = torch.rand(37, 3, 4, dtype=torch.float64), torch.randn(37, 3, 4, dtype=torch.float64), torch.randn(3, 4)
    want, y = [], y0.double()
    for t in range(37):
        y = a[t] * y + b[t]
        want.append(y)
    torch.testing.assert_close(linear_recurrence(a, b, y0.double(), parallel=parallel), torch.stack(want))
