"""The new cells as layers: every engine against the plain loop, bidirectional and packed; expRNN's
orthogonality and groups; IndRNN's bound; coRNN's presets; the layer-norm LSTM's formulation;
and, where an independent implementation is installed, parity with it on shared weights."""

import math

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import bptt
from bptt.config import build_config
from bptt.modules import CELLS
from bptt.modules.cornn import CORNN_PRESETS, CoRNN
from bptt.modules.exprnn import ExpRNN
from bptt.modules.indrnn import IndRNN
from bptt.modules.lnlstm import LayerNormLSTM

LAYERS = {"indrnn": IndRNN, "exprnn": ExpRNN, "cornn": CoRNN, "lnlstm": LayerNormLSTM}


def _loss_and_grads(layer, x, hx=None):
    layer.zero_grad(set_to_none=True)
    out, state = layer(x, hx)
    data = out.data if hasattr(out, "batch_sizes") else out
    states = state if isinstance(state, tuple) else (state,)
    loss = (data * torch.linspace(-1, 1, data.numel(), dtype=data.dtype).view_as(data)).sum()
    loss = loss + sum((s**2).sum() for s in states)
    loss.backward()
    return data.detach(), [p.grad.clone() for p in layer.parameters()]


@pytest.mark.parametrize("cell", list(LAYERS))
@pytest.mark.parametrize("packed", [False, True])
def test_every_engine_matches_the_plain_loop_bidirectional_and_packed(cell, packed):
    torch.manual_seed(0)
    layer = LAYERS[cell](3, 5, 2, bidirectional=True, residual=True, dtype=torch.float64)
    x = torch.randn(9, 4, 3, dtype=torch.float64)
    if packed:
        x = pack_padded_sequence(x, torch.tensor([9, 7, 4, 1]))
    results = {}
    for engine in layer.ENGINE_CHOICES:
        layer.engine = engine
        results[engine] = _loss_and_grads(layer, x)
    reference = results.pop("reference")
    for engine, (out, grads) in results.items():
        torch.testing.assert_close(out, reference[0], msg=engine)
        for a, b in zip(grads, reference[1]):
            torch.testing.assert_close(a, b, msg=engine)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_recording_truncation_and_unbatched_input(cell):
    layer = LAYERS[cell](2, 4, 2, truncate=3)
    with bptt.record_gradients(layer) as rec:
        out, _ = layer(torch.randn(8, 3, 2))
        out[-1].sum().backward()
    assert rec.hidden.shape == (2, 8) and bool((rec.hidden[:, :4] == 0).all())  # cut 3 steps back
    assert rec.names == layer.STATE_NAMES
    assert (rec.cell is not None) == (len(layer.STATE_NAMES) == 2)
    out, _state = layer(torch.randn(8, 2))
    assert out.shape == (8, 4)


def test_exprnn_keeps_w_hh_orthogonal_through_training_and_trains_its_skew_slower():
    config = build_config(
        {"task": "copy", "seq_len": 10, "cell": "exprnn", "hidden_size": 6, "steps": 5, "lr": 0.05, "progress": False}
    )
    trainer = bptt.training.Trainer(config)
    groups = sorted(group["lr"] for group in trainer.optimizer.param_groups)
    assert groups == [pytest.approx(0.005), 0.05]
    trainer.run()
    layer = trainer.model.recurrent
    W = layer.recurrent_matrix(0).detach()
    torch.testing.assert_close(W @ W.t(), torch.eye(6), atol=1e-5, rtol=0)
    assert float(layer.recurrent_weight(0).detach().abs().max()) > 0  # the skew parameter moved from 0


@pytest.mark.parametrize("kind", ["henaff", "cayley"])
@pytest.mark.parametrize("orthogonal_map", ["matrix_exp", "cayley"])
def test_exprnn_starts_at_its_init_in_the_base_with_the_skew_at_zero(kind, orthogonal_map):
    layer = ExpRNN(
        2, 6, orthogonal_init=kind, orthogonal_map=orthogonal_map, generator=torch.Generator().manual_seed(3)
    )
    base = layer.parametrizations.weight_hh_l0[0].base
    torch.testing.assert_close(layer.weight_hh_l0, base)
    skew = layer.parametrizations.weight_hh_l0.original
    assert torch.equal(skew.tril(-1) - skew.tril(-1).t(), torch.zeros(6, 6))  # the skew part is exactly 0
    blocks = base[0:2, 0:2]  # a 2x2 rotation block
    torch.testing.assert_close(blocks @ blocks.t(), torch.eye(2))


def test_indrnn_bound_and_init_follow_the_paper():
    layer = IndRNN(2, 50, 2, t_max=100)
    bound = 2 ** (1 / 100)
    assert layer.bound == pytest.approx(bound)
    top, bottom = layer.weight_hh_l1.detach(), layer.weight_hh_l0.detach()
    assert float(top.min()) >= 0.5 ** (1 / 100) - 1e-6 and float(top.max()) <= bound
    assert float(bottom.min()) >= 0 and float(bottom.max()) <= 1
    assert float(layer.weight_ih_l0.std()) < 0.01


def test_cornn_presets_are_the_published_values_and_named_by_task():
    assert CORNN_PRESETS["adding"] == {"dt": 0.06, "gamma": 66.0, "epsilon": 15.0}
    assert CORNN_PRESETS["mnist"] == {"dt": 0.042, "gamma": 2.7, "epsilon": 4.7}
    adding = build_config({"task": "adding", "cell": "cornn"})
    assert adding.cell_preset == "adding" and adding.cell_options == CORNN_PRESETS["adding"]
    mine = build_config({"task": "adding", "cell": "cornn", "cell_preset": "mnist", "cell_options": {"dt": 0.01}})
    assert mine.cell_options == {**CORNN_PRESETS["mnist"], "dt": 0.01}
    assert build_config({"task": "digits", "cell": "cornn"}).cell_preset is None


def test_lnlstm_is_hastes_formulation_written_out():
    torch.manual_seed(0)
    layer = LayerNormLSTM(3, 4, dtype=torch.float64)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    out, (_h_n, c_n) = layer(x)
    w_ih, w_hh, b, g_x, g_h, g_c, b_c = layer.layer_parameters(0)
    ln = lambda v, g, s=None: torch.nn.functional.layer_norm(v, v.shape[-1:], g, s, 1e-5)  # noqa: E731
    h = c = torch.zeros(2, 4, dtype=torch.float64)
    for t in range(5):
        i, f, g, o = (ln(x[t] @ w_ih.t(), g_x) + ln(h @ w_hh.t(), g_h) + b).chunk(4, -1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * ln(c, g_c, b_c).tanh()
        torch.testing.assert_close(out[t], h)
    torch.testing.assert_close(c_n[0], c)


def test_every_new_cell_is_in_the_registry_with_a_mechanism():
    for name, layer in LAYERS.items():
        spec = CELLS.get(name)
        assert spec.layer is layer and spec.mechanism and spec.description
        assert math.isfinite(spec.defaults["lr"])


def _their_output(result, seq_len):
    out = result[0] if isinstance(result, tuple) else result
    return out if out.shape[0] == seq_len else out.transpose(0, 1)


def test_indrnn_matches_torchrecurrent_on_shared_weights():
    torchrecurrent = pytest.importorskip("torchrecurrent")  # an independent implementation (pip install --no-deps)
    theirs = torchrecurrent.IndRNN(3, 5, num_layers=1, nonlinearity="relu").double()
    ours = IndRNN(3, 5, 1, dtype=torch.float64)
    cell = theirs.cells[0]
    with torch.no_grad():
        cell.vector_u.uniform_(0.5, 1.0)
        ours.weight_ih_l0.copy_(cell.weight_ih)
        ours.weight_hh_l0.copy_(cell.vector_u)
        ours.bias_ih_l0.copy_(cell.bias_ih + cell.bias_hh)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], _their_output(theirs(x), 6))


def test_cornn_matches_torchrecurrent_on_shared_weights():
    torchrecurrent = pytest.importorskip("torchrecurrent")
    theirs = torchrecurrent.coRNN(3, 5, num_layers=1, dt=0.06, gamma=6.0, epsilon=1.5).double()
    ours = CoRNN(3, 5, 1, dt=0.06, gamma=6.0, epsilon=1.5, dtype=torch.float64)
    cell = theirs.cells[0]
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0, 0.5)
        ours.weight_ih_l0.copy_(cell.weight_ih)
        ours.weight_hy_l0.copy_(cell.weight_hh)  # theirs: h is the position y, c the velocity z
        ours.weight_hz_l0.copy_(cell.weight_ch)
        ours.bias_ih_l0.copy_(cell.bias_ih + cell.bias_hh + cell.bias_ch)
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], _their_output(theirs(x), 7))
