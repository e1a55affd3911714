"""The compiled loops: where they run, and the clean fallback to the Python loops where they cannot be built.
(Their gradchecks, parity and records run with the fast engine's: test_gradcheck, test_parity,
test_recording.)"""

import json
import os
import subprocess
import sys

import pytest
import torch

import bptt
from bptt.engine import compiled, extension

# Builds (or tries to) in a fresh cache, then trains a step on every cell and reports what ran.
FALLBACK = r"""
import json, warnings, torch, bptt
from bptt.engine import compiled, extension
torch.manual_seed(0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    worst = 0.0
    for cls in (bptt.RNN, bptt.LSTM, bptt.GRU):
        layer = cls(3, 5, engine="compiled")
        fast = cls(3, 5, engine="fast")
        fast.load_state_dict(layer.state_dict())
        x = torch.randn(7, 2, 3)
        grads = []
        for module in (layer, fast):
            with bptt.record_gradients(module) as rec:
                out, _ = module(x)
                out.sum().backward()
            grads.append([rec.hidden, *[p.grad for p in module.parameters()]])
        worst = max(worst, *(float((a - b).abs().max()) for a, b in zip(*grads)))
print(json.dumps({
    "available": compiled.available(),
    "status": extension.status(),
    "warnings": [str(w.message) for w in caught if "compiled time loops" in str(w.message)],
    "worst": worst,
}))
"""


def _run(tmp_path, **env):
    environment = {**os.environ, "BPTT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", **env}
    done = subprocess.run(
        [sys.executable, "-c", FALLBACK], capture_output=True, text=True, env=environment, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.slow
def test_without_a_compiler_the_python_loops_run_with_one_warning(tmp_path):
    result, _stderr = _run(tmp_path, CXX=str(tmp_path / "no-such-compiler"))
    assert result["available"] is False and result["status"].startswith("not available")
    assert len(result["warnings"]) == 1 and "'fast' engine run instead" in result["warnings"][0]
    assert result["worst"] == 0.0  # the same Python loops as "fast": the same numbers


@pytest.mark.slow
def test_bptt_compile_0_skips_the_build(tmp_path):
    result, stderr = _run(tmp_path, BPTT_COMPILE="0")
    assert result == {"available": False, "status": "not available: BPTT_COMPILE=0", "warnings": [], "worst": 0.0}
    assert "compiling" not in stderr and not (tmp_path / "cache").exists()


def test_the_loops_are_built_once_and_found_in_the_cache():
    if not compiled.available():
        pytest.skip(f"the compiled loops are not available here: {extension.status()}")
    assert extension.status().startswith("compiled (") and extension.build_name() in extension.status()
    assert bptt.LSTM(3, 4, engine="compiled")(torch.randn(2, 1, 3))[0].grad_fn is not None


def test_inputs_the_loops_do_not_take_run_the_python_loops():
    x = torch.randn(5, 2, 3)
    assert not compiled.runs_on(x.bfloat16()) and not compiled.runs_on(x.half())
    layer = bptt.GRU(3, 4, engine="compiled", dtype=torch.bfloat16)
    fast = bptt.GRU(3, 4, engine="fast", dtype=torch.bfloat16)
    fast.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x.bfloat16())[0], fast(x.bfloat16())[0], rtol=0, atol=0)


def test_a_registered_activation_the_loops_do_not_know_runs_the_python_loops(monkeypatch):
    from bptt.engine import ACTIVATIONS

    softsign = ACTIVATIONS.get("tanh").__class__(
        "softsign",
        lambda a, s: torch.nn.functional.softsign(a),
        1.0,
        lambda h, a, s, out: torch.abs(a, out=out).add_(1).square_().reciprocal_(),
        keeps_preactivation=lambda s: True,
    )
    monkeypatch.setitem(ACTIVATIONS._entries, "softsign", softsign)
    layer = bptt.RNN(3, 4, activation="softsign", engine="compiled", dtype=torch.float64)
    reference = bptt.RNN(3, 4, activation="softsign", engine="reference", dtype=torch.float64)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(x)[0], reference(x)[0])
