"""The Triton kernels of the simple RNN against the fast engine, in Triton's interpreter on a CPU
(the same kernels run compiled on a GPU: tests/test_cuda.py). Skipped where Triton is not installed
(it is an optional extra of about 1 GB: pip install 'bptt[triton]')."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton", reason="Triton is not installed (pip install 'bptt[triton]')")

CHECK = r"""
import json, torch, bptt
from bptt.engine import common
torch.manual_seed(0)
results = {}
for activation in ("sigmoid", "tanh", "relu", "leaky_relu", "prelu"):
    for hidden in (24, 16):
        kernel = bptt.RNN(3, hidden, 2, activation=activation, engine="triton", negative_slope=-0.3 if activation == "leaky_relu" else 0.2)
        fast = bptt.RNN(3, hidden, 2, activation=activation, engine="fast", negative_slope=kernel.negative_slope)
        fast.load_state_dict(kernel.state_dict())
        x = torch.randn(6, 20, 3, requires_grad=True)
        worst = 0.0
        records = []
        for layer in (kernel, fast):
            layer.zero_grad()
            x.grad = None
            with bptt.record_gradients(layer) as rec:
                out, h = layer(x)
                ((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() + (h ** 2).sum()).backward()
            records.append((out.detach(), h.detach(), x.grad.clone(), [p.grad.clone() for p in layer.parameters()], rec.hidden))
        (o1, h1, gx1, gp1, r1), (o2, h2, gx2, gp2, r2) = records
        pairs = [(o1, o2), (h1, h2), (gx1, gx2), (r1, r2)] + list(zip(gp1, gp2))
        worst = max(float((a - b).abs().max() / (b.abs().max() + 1e-12)) for a, b in pairs)
        results[f"{activation}/{hidden}"] = {"worst": worst, "engine": kernel.last_engine}
print(json.dumps(results))
"""


def test_the_kernels_match_the_fast_engine_in_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(results) == 10
    for name, result in results.items():
        assert result["engine"] == "triton", name
        assert result["worst"] < 1e-5, (name, result)
