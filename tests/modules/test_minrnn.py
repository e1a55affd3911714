"""MinGRU and MinLSTM as layers: engines agree through the stack, the record, init, and minGRU-pytorch."""

import math

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import bptt
from bptt.engine import compiled
from bptt.engine.minrnn import min_reference_layer
from bptt.modules.minrnn import MinGRU, MinLSTM

LAYERS = [MinGRU, MinLSTM]
ENGINES = ["compiled", "fast", "scan", "reference"]
T, B, I, H = 9, 4, 3, 5


def _run(layer, x, hx=None):
    for p in layer.parameters():
        p.grad = None
    with bptt.record_gradients(layer) as record:
        out, h_n = layer(x, hx)
        (out.sin().sum() + h_n.pow(2).sum()).backward()
    return out.detach(), h_n.detach(), [p.grad.clone() for p in layer.parameters()], record


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
def test_every_engine_gives_the_same_outputs_gradients_and_record(cls, bidirectional):
    layer = cls(I, H, num_layers=2, bidirectional=bidirectional, t_max=20, generator=torch.Generator().manual_seed(0))
    x = torch.randn(T, B, I)
    hx = torch.rand(2 * layer.num_directions, B, H)
    results = {}
    for engine in ENGINES:
        layer.engine = engine
        results[engine] = _run(layer, x, hx)
        assert layer.last_engine == engine
    for engine in ("compiled", "fast", "scan"):
        out, h_n, grads, record = results[engine]
        ref_out, ref_h_n, ref_grads, ref_record = results["reference"]
        torch.testing.assert_close(out, ref_out)
        torch.testing.assert_close(h_n, ref_h_n)
        for got, want in zip(grads, ref_grads):
            torch.testing.assert_close(got, want)
        torch.testing.assert_close(record.hidden, ref_record.hidden)
        if bidirectional:
            torch.testing.assert_close(record.hidden_reverse, ref_record.hidden_reverse)
    record = results["fast"][3]
    assert record.hidden.shape == (2, T) and record.cell is None
    torch.testing.assert_close(record.series("h"), record.hidden)


@pytest.mark.parametrize("cls", LAYERS)
def test_the_stack_is_the_cell_layer_after_layer(cls):
    layer = cls(I, H, num_layers=2, generator=torch.Generator().manual_seed(1))
    x = torch.randn(T, B, I)
    out, h_n = layer(x)
    expected, finals = x, []
    for k in range(2):
        expected, final = min_reference_layer(layer.CELL, expected, torch.zeros(B, H), *layer.layer_parameters(k))
        finals.append(final)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(h_n, torch.stack(finals))


@pytest.mark.parametrize("cls", LAYERS)
def test_packed_and_batch_first_input(cls):
    layer = cls(I, H, batch_first=True, generator=torch.Generator().manual_seed(2))
    x = torch.randn(B, T, I)
    lengths = torch.tensor([T, 7, 4, 2])
    packed_out, packed_h_n = layer(pack_padded_sequence(x, lengths, batch_first=True))
    out, _ = pad_packed_sequence(packed_out, batch_first=True)
    for b, n in enumerate(lengths.tolist()):
        alone, h_n = layer(x[b : b + 1, :n])
        torch.testing.assert_close(out[b, :n], alone[0])
        torch.testing.assert_close(packed_h_n[:, b], h_n[:, 0])


@pytest.mark.parametrize("cls", LAYERS)
def test_auto_runs_the_fused_loops_on_a_cpu(cls):
    layer = cls(I, H)
    x = torch.zeros(T, B, I)
    assert layer.engine_for(x) == ("compiled" if compiled.available() else "fast")
    assert layer.engine_for(x.bfloat16()) == "fast"  # a dtype the compiled loops do not take
    assert cls.ENGINE_CHOICES == ("auto", "compiled", "fast", "scan", "reference")
    with pytest.raises(ValueError, match="allowed: auto, compiled, fast, scan, reference"):
        cls(I, H, engine="probe")


def test_chrono_gates_start_with_memory_up_to_t_max():
    t_max = 200
    gru = MinGRU(I, 1000, t_max=t_max, generator=torch.Generator().manual_seed(3))
    retention = 1 - torch.sigmoid(gru.bias_ih_l0[1000:])  # 1 - z at zero input
    spans = retention / (1 - retention)  # u, with 1 - z = u / (1 + u)
    assert spans.min() >= 1 - 1e-4 and spans.max() <= t_max - 1 + 1e-2 and spans.max() > 0.9 * t_max
    assert (gru.bias_ih_l0[:1000] == 0).all()
    lstm = MinLSTM(I, 1000, t_max=t_max, generator=torch.Generator().manual_seed(3))
    f, i = torch.sigmoid(lstm.bias_ih_l0[1000:2000]), torch.sigmoid(lstm.bias_ih_l0[2000:])
    spans = (f / (f + i)) / (1 - f / (f + i))  # the same memory, through f' = u / (1 + u)
    assert spans.min() >= 1 - 1e-4 and spans.max() <= t_max - 1 + 1e-2 and spans.max() > 0.9 * t_max
    plain = MinGRU(I, H)
    assert (plain.bias_ih_l0 == 0).all()
    bound = 1 / math.sqrt(I)
    assert plain.weight_ih_l0.abs().max() <= bound


def test_parameters_and_their_names():
    gru, lstm = MinGRU(I, H, num_layers=2, bias=False), MinLSTM(I, H, bidirectional=True)
    assert {n: tuple(p.shape) for n, p in gru.named_parameters()} == {
        "weight_ih_l0": (2 * H, I),
        "weight_ih_l1": (2 * H, H),
    }
    assert set(dict(lstm.named_parameters())) == {
        "weight_ih_l0",
        "bias_ih_l0",
        "weight_ih_l0_reverse",
        "bias_ih_l0_reverse",
    }
    assert repr(MinGRU(I, H, t_max=30)) == "MinGRU(3, 5, t_max=30)"
    with pytest.raises(ValueError, match="t_max"):
        MinGRU(I, H, t_max=1)


@pytest.mark.parametrize("cls", LAYERS)
def test_the_step_jacobian_is_the_retention(cls):
    layer = cls(I, H, t_max=50, generator=torch.Generator().manual_seed(4)).double()
    x = torch.randn(T, 1, I, dtype=torch.float64)
    diagonal = layer.diagonal_jacobian(0, x)
    h = torch.rand(1, H, dtype=torch.float64)
    for t in range(T):
        jacobian = torch.autograd.functional.jacobian(lambda s, t=t: layer.step(0, x[t], s), h)[0, :, 0, :]
        torch.testing.assert_close(jacobian, torch.diag(diagonal[t, 0]))
        h = layer.step(0, x[t], h).detach()


@pytest.mark.parametrize("which", ["mingru", "minlstm"])
def test_outputs_match_minGRU_pytorch_on_shared_weights(which):
    """``minGRU-pytorch`` (``pip install --no-deps minGRU-pytorch``): its log-space scan and our fused loop."""
    package = pytest.importorskip("minGRU_pytorch")
    from minGRU_pytorch.minLSTM import minLSTM

    dim = 6
    theirs = (package.minGRU(dim) if which == "mingru" else minLSTM(dim)).double()
    ours = (MinGRU if which == "mingru" else MinLSTM)(dim, dim, bias=False, batch_first=True, dtype=torch.float64)
    linear = theirs.to_hidden_and_gate if which == "mingru" else theirs.to_hidden_and_f_i_gate
    with torch.no_grad():
        ours.weight_ih_l0.copy_(linear.weight)
    x = torch.randn(3, 40, dim, dtype=torch.float64, requires_grad=True)
    expected = theirs(x)
    out, _ = ours(x)
    torch.testing.assert_close(out, expected)
    grads = torch.autograd.grad(expected.sin().sum(), (x, linear.weight))
    ours_grads = torch.autograd.grad(out.sin().sum(), (x, ours.weight_ih_l0))
    for got, want in zip(ours_grads, grads):
        torch.testing.assert_close(got, want)
    # A positive initial state: theirs takes it through log (minGRU) or g (minLSTM), ours as it is.
    start = torch.rand(3, 1, dim, dtype=torch.float64) + 0.1
    given = start if which == "mingru" else torch.where(start >= 0, start + 0.5, start.sigmoid())
    expected = theirs(x, start)
    out, _ = ours(x, given.transpose(0, 1).contiguous())
    torch.testing.assert_close(out, expected)
