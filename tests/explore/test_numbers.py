"""The explorable's Python side: the generator as documented, the inits, the settings' checks, and
bptt's numbers (the test vectors) against an independent float64 computation."""

import json
import math

import numpy as np
import pytest
import torch

from bptt.cli.main import main
from bptt.diagnostics.profile import memory_horizon, memory_reach
from bptt.explore.numbers import VECTOR_SETTINGS, bptt_layer, measure
from bptt.explore.weights import INPUT_SIZE, ExploreSettings, draws, make_network


def _fmix32(z):
    z ^= z >> 16
    z = (z * 0x85EBCA6B) & 0xFFFFFFFF
    z ^= z >> 13
    z = (z * 0xC2B2AE35) & 0xFFFFFFFF
    return z ^ (z >> 16)


def test_the_generator_is_the_documented_hash():
    # Written out from the module docstring with Python's own integers, draw by draw.
    for seed, stream in ((0, "weight_ih"), (7, "inputs"), (2**32 - 1, "readout")):
        key = _fmix32((seed + 0x9E3779B9 * {"weight_ih": 1, "inputs": 6, "readout": 5}[stream]) & 0xFFFFFFFF)
        expected = [_fmix32((key + 0x9E3779B9 * (n + 1)) & 0xFFFFFFFF) for n in range(50)]
        assert draws(seed, stream, 50).tolist() == expected
    assert draws(0, "weight_ih", 3).tolist() != draws(1, "weight_ih", 3).tolist()


@pytest.mark.parametrize("cell", ["tanh", "lstm", "gru"])
@pytest.mark.parametrize("init", ["random", "xavier", "orthogonal", "identity"])
def test_every_w_hh_block_has_the_chosen_spectral_norm(cell, init):
    net = make_network(ExploreSettings(cell=cell, init=init, hidden_size=12, spectral_norm=1.3, seed=4))
    H = 12
    for g in range(net.weight_hh.shape[0] // H):
        block = net.weight_hh[g * H : (g + 1) * H]
        assert np.linalg.norm(block, 2) == pytest.approx(1.3, rel=1e-12)
        if init in ("orthogonal", "identity"):
            assert np.allclose(block @ block.T, 1.3**2 * np.eye(H), atol=1e-12)
    assert net.inputs.shape == (100, INPUT_SIZE) and np.abs(net.inputs).max() <= 1.0
    if cell == "lstm":
        assert np.all(net.bias_ih[H : 2 * H] >= 1.0 - 1 / math.sqrt(H))  # the forget-gate bias +1


def test_bad_settings_name_the_setting_and_what_is_allowed():
    for values, said in (
        ({"cell": "elman"}, "cell must be one of sigmoid, tanh, relu, leaky_relu, lstm, gru"),
        ({"hidden_size": 65}, "hidden_size must be a whole number from 1 to 64"),
        ({"seq_len": 1}, "seq_len must be a whole number from 2 to 200"),
        ({"spectral_norm": 0.0}, "spectral_norm must be a finite number above 0 to 10"),
        ({"spectral_norm": math.nan}, "spectral_norm must be a finite number"),
        ({"clip": -1.0}, "clip must be a finite number above 0"),
        ({"seed": 2**32}, "seed must be a whole number from 0 to 4294967295"),
    ):
        with pytest.raises(ValueError, match=said.replace("(", r"\(")):
            ExploreSettings(**values)
    with pytest.raises(ValueError, match="unknown explore setting 'celll'"):
        ExploreSettings.from_dict({"celll": "tanh"})


def _plain_float64(settings):
    """The profile, the gradient norm and the step Jacobians' singular values by autograd on a loop written
    here from the cells' equations: independent of bptt's engine and of its diagnostics."""
    net = make_network(settings)
    t = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)  # noqa: E731
    w_ih, w_hh, b_ih, b_hh = t(net.weight_ih), t(net.weight_hh), t(net.bias_ih), t(net.bias_hh)
    H = settings.hidden_size
    h, c = torch.zeros(H, dtype=torch.float64), torch.zeros(H, dtype=torch.float64)
    states = []

    def step(h, c, x):
        p, u = w_ih @ x + b_ih, w_hh @ h + b_hh
        if settings.cell == "lstm":
            i, f, g, o = (p + u).split(H)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c
        if settings.cell == "gru":
            z = torch.sigmoid(p[H : 2 * H] + u[H : 2 * H])
            n = torch.tanh(p[2 * H :] + torch.sigmoid(p[:H] + u[:H]) * u[2 * H :])
            return (1 - z) * n + z * h, c
        act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}.get(
            settings.cell, lambda a: torch.nn.functional.leaky_relu(a, 0.01)
        )
        return act(p + u), c

    for x in torch.from_numpy(net.inputs):
        h, c = step(h, c, x)
        h.retain_grad()
        states.append(h)
    loss = (h * torch.from_numpy(net.readout)).sum()
    loss.backward()
    profile = [float(s.grad.norm()) for s in reversed(states)]
    grad_norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in (w_ih, w_hh, b_ih, b_hh)))
    return profile, grad_norm


@pytest.mark.parametrize("settings", VECTOR_SETTINGS[:12], ids=lambda s: f"{s.cell}-{s.init}-{s.seed}")
def test_bptt_numbers_match_a_plain_float64_loop(settings):
    numbers = measure(settings)
    profile, grad_norm = _plain_float64(settings)
    assert numbers["profile"] == pytest.approx(profile, rel=1e-9, abs=1e-300)
    assert numbers["grad_norm"] == pytest.approx(grad_norm, rel=1e-9)
    assert numbers["horizon"] == memory_horizon(torch.tensor(profile), 1e-3)
    assert numbers["reach"] == memory_reach(torch.tensor(profile), 1e-3)
    assert len(numbers["singular_values"]) == settings.seq_len
    assert (numbers["cell"] is not None) == (settings.cell == "lstm")
    assert (numbers["bound"] is None) == settings.gated


def test_the_layer_holds_the_generated_weights():
    settings = ExploreSettings(cell="gru", hidden_size=5, seq_len=7)
    net = make_network(settings)
    layer = bptt_layer(net)
    assert torch.equal(layer.weight_hh_l0, torch.from_numpy(net.weight_hh))
    assert layer.weight_hh_l0.dtype == torch.float64


def test_clipping_scales_the_whole_gradient_and_leaves_the_ratio():
    free = measure(ExploreSettings(cell="tanh", hidden_size=8, seq_len=30, seed=2))
    clipped = measure(ExploreSettings(cell="tanh", hidden_size=8, seq_len=30, seed=2, clip=free["grad_norm"] / 4))
    assert clipped["clip_factor"] == pytest.approx(0.25) and free["clip_factor"] == 1.0
    assert clipped["ratio"] == free["ratio"] and clipped["profile"] == free["profile"]


def test_bptt_explore_writes_the_page_and_the_vectors(tmp_path, capsys):
    page, vectors = tmp_path / "explore.html", tmp_path / "vectors.json"
    code = main(
        ["explore", "-o", str(page), "--cell", "lstm", "--seq-len", "150", "--no-open", "--vectors", str(vectors)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert f"wrote {page}" in printed and "open it in a browser: file://" in printed
    text = page.read_text()
    assert len(text.encode()) < 2_000_000 and '"cell":"lstm"' in text and '"seq_len":150' in text
    written = json.loads(vectors.read_text())
    assert [v["settings"] for v in written] == [s.to_dict() for s in VECTOR_SETTINGS]


def test_bptt_explore_refuses_bad_settings_in_one_line(tmp_path, capsys):
    for argv, said in (
        (["--hidden-size", "65"], "--hidden-size must be a whole number from 1 to 64"),
        (["--spectral-norm", "nan"], "--spectral-norm must be a finite number"),
        (["--clip", "0"], "--clip must be a finite number above 0"),
        (["--cell", "elman"], "--cell"),
    ):
        assert main(["explore", "-o", str(tmp_path / "x.html"), "--no-open", *argv]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.html").exists()
