"""On a GPU: every engine against cuDNN, recording through the vendor's kernel (the probe) and our
kernels, a step captured in a CUDA graph, and the commands with --device cuda. Skipped without a
CUDA device; run them with `pytest -m cuda` on a GPU."""

import json

import pytest
import torch
from torch import nn

import bptt
from bptt.cli.main import main

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")]


@pytest.fixture(autouse=True)
def _exact_fp32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


TWINS = [
    (nn.RNN, bptt.RNN, {}),
    (nn.RNN, bptt.RNN, {"nonlinearity": "relu"}),
    (nn.LSTM, bptt.LSTM, {}),
    (nn.GRU, bptt.GRU, {}),
    (nn.LSTM, bptt.LSTM, {"proj_size": 8}),
]


def _step(layer, x, record):
    layer.zero_grad(set_to_none=True)
    x.grad = None

    def run():
        out, state = layer(x)
        h = state[0] if isinstance(state, tuple) else state
        ((out * torch.linspace(-1, 1, out.numel(), device=x.device).view_as(out)).sum() + (h**2).sum()).backward()
        return out.detach()

    if record:
        with bptt.record_gradients(layer, cells=False) as rec:
            out = run()
        return out, x.grad.clone(), [p.grad.clone() for p in layer.parameters()], rec.hidden
    return run(), x.grad.clone(), [p.grad.clone() for p in layer.parameters()], None


@pytest.mark.parametrize("theirs_cls,ours_cls,extra", TWINS)
@pytest.mark.parametrize("engine", ["auto", "fast", "compiled", "recompute", "reference", "probe", "vendor", "triton"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_engine_matches_cudnn(theirs_cls, ours_cls, extra, engine, bidirectional):
    theirs = theirs_cls(32, 16, 2, bidirectional=bidirectional, **extra).cuda()
    ours = ours_cls(32, 16, 2, bidirectional=bidirectional, engine=engine, **extra).cuda()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(50, 8, 32, device="cuda", requires_grad=True)
    want = _step(theirs, x, False)
    got = _step(ours, x, False)
    for a, b in zip([want[0], want[1], *want[2]], [got[0], got[1], *got[2]]):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "leaky_relu", "prelu"])
@pytest.mark.parametrize("engine", ["probe", "triton", "auto"])
def test_recording_on_the_gpu_matches_the_fast_engine(activation, engine):
    fast = bptt.RNN(32, 64, 2, activation=activation, engine="fast").cuda()
    other = bptt.RNN(32, 64, 2, activation=activation, engine=engine).cuda()
    other.load_state_dict(fast.state_dict())
    x = torch.randn(100, 16, 32, device="cuda", requires_grad=True)
    want, got = _step(fast, x, True), _step(other, x, True)
    torch.testing.assert_close(got[3], want[3], atol=1e-7, rtol=1e-4)
    for a, b in zip(want[2], got[2]):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)


def test_auto_picks_the_vendor_the_probe_and_our_kernels(monkeypatch):
    from bptt.modules import timeloop

    x = torch.randn(10, 4, 8, device="cuda")
    lstm, gru = bptt.LSTM(8, 16).cuda(), bptt.GRU(8, 16).cuda()
    sigmoid = bptt.RNN(8, 16, activation="sigmoid").cuda()
    assert lstm.engine_for(x) == gru.engine_for(x) == "vendor"
    assert lstm.engine_for(x, packed=True) == gru.engine_for(x, packed=True) == "vendor"  # cuDNN packs well
    assert lstm.engine_for(x, recording=True) == "probe" and gru.engine_for(x, recording=True) == "fast"
    with bptt.record_gradients(lstm, updates=True):
        assert lstm.engine_for(x) == "fast"  # the probe has no W_hh terms
    assert sigmoid.engine_for(x) in ("triton", "fast")  # triton where it is installed
    from bptt.modules import LRU, IndRNN, MinGRU

    assert MinGRU(8, 16).cuda().engine_for(x) == LRU(8, 16).cuda().engine_for(x) == "scan"  # GPU_ENGINE
    assert IndRNN(8, 16).cuda().engine_for(x) == "fast"
    monkeypatch.setattr(timeloop.TimeLoop, "SMALL_STORE", 0)
    monkeypatch.setattr(timeloop, "fits", lambda needed, device: False)
    assert lstm.engine_for(x) == gru.engine_for(x, recording=True) == "recompute"


@pytest.mark.parametrize("kwargs", [{}, {"proj_size": 8}, {"bidirectional": True}])
def test_the_probe_records_dl_dc_on_the_gpu_as_the_fast_engine(kwargs):
    """dL/dc_t from dL/dh_t by two parallel scans (log2 T rounds) on the GPU, against the fast engine's."""
    probe = bptt.LSTM(32, 64, 2, engine="probe", **kwargs).cuda()
    fast = bptt.LSTM(32, 64, 2, engine="fast", **kwargs).cuda()
    fast.load_state_dict(probe.state_dict())
    x = torch.randn(300, 16, 32, device="cuda")
    records = []
    for layer in (probe, fast):
        with bptt.record_gradients(layer) as rec:
            out, (_h, c) = layer(x)
            ((out * torch.linspace(-1, 1, out.numel(), device="cuda").view_as(out)).sum() + (c**2).sum()).backward()
        records.append(rec)
    for name in ("hidden", "cell"):
        for direction in range(probe.num_directions):
            torch.testing.assert_close(
                records[0].per_sample(name, direction), records[1].per_sample(name, direction), atol=1e-7, rtol=1e-4
            )


@pytest.mark.parametrize("cls", [bptt.LSTM, bptt.GRU])
def test_recompute_on_the_gpu_matches_the_fast_engine_and_keeps_less(cls):
    def peak(engine):
        layer = cls(32, 256, engine=engine).cuda()
        layer.load_state_dict(reference.state_dict())
        x = torch.randn(2000, 32, 32, device="cuda")
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with bptt.record_gradients(layer) as rec:
            _out, state = layer(x)
            h = state[0] if isinstance(state, tuple) else state
            (h**2).sum().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before, rec.hidden, [p.grad for p in layer.parameters()]

    reference = cls(32, 256).cuda()
    (storing, hidden_a, grads_a), (recomputing, hidden_b, grads_b) = peak("fast"), peak("recompute")
    torch.testing.assert_close(hidden_b, hidden_a, atol=1e-7, rtol=1e-4)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
    assert recomputing <= storing / 4


@pytest.mark.slow
def test_selfcheck_holds_on_the_gpu():
    """What `bptt selfcheck --device cuda` checks: every row holds (its speed row prints the ratios against cuDNN)."""
    from bptt.bench import selfcheck

    checks = selfcheck.run("cuda")
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert sum(c.seconds for c in checks) < selfcheck.BUDGET_SECONDS


def test_a_fast_training_step_captures_in_a_cuda_graph():
    for layer in (
        bptt.RNN(16, 32, engine="fast"),
        bptt.RNN(16, 32, activation="prelu", engine="fast"),
        bptt.LSTM(16, 32, engine="fast"),
        bptt.GRU(16, 32, engine="fast"),
    ):
        layer = layer.cuda()
        x = torch.randn(20, 8, 16, device="cuda")
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm up outside the graph
            for _ in range(2):
                layer(x)[0].sum().backward()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = layer(x)[0]
            out.sum().backward()
        graph.replay()
        torch.cuda.synchronize()
        assert torch.isfinite(out).all()


def test_the_commands_run_on_the_gpu(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--task",
                "adding",
                "--seq-len",
                "20",
                "--steps",
                "5",
                "--device",
                "cuda",
                "--db",
                str(tmp_path / "r.db"),
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["device"] == "cuda"
    for mode in (["--task", "sentiment", "--delay", "10"], ["--db", str(tmp_path / "r.db"), "--run", "1"]):
        extra = ["--device", "cuda"] if mode[0] == "--task" else []
        assert main(["diagnose", *mode, *extra, "--examples", "8", "--json"]) == 0
        assert "verdict" in json.loads(capsys.readouterr().out)


def test_the_quick_demo_runs_on_the_gpu(tmp_path, capsys):
    assert main(["demo", "--quick", "--device", "cuda", "--out", str(tmp_path / "demo")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "demo" / "index.html").exists()
