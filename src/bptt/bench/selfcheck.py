"""``bptt selfcheck``: does bptt work on this machine, and how fast. One row per check:

- parity of every cell with its torch.nn twin (same state dict, float32, TF32 off), on every engine that
  runs on the device: outputs, final states, the input's and every parameter's gradient;
- gradcheck (float64) of every hand-written backward on a tiny shape, on the device: the torch twins' on
  every engine, and IndRNN's, coRNN's, minGRU's and minLSTM's, and the scan cells' recurrence;
- the recorded norms of dL/dh_t (and dL/dc_t) on every engine against the reference loop's;
- the bench's ratios against torch.nn at the device's shapes (the CPU shapes on a CPU, the GPU anchors'
  on a GPU), bptt's layer with nothing recorded and with the default record, dense and packed;
- ``bptt demo --quick`` on the device.

Designed to finish within ``BUDGET_SECONDS`` on a 2-core CPU; ``quick`` runs the bench at one small shape.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import bptt
from bptt.bench.throughput import CUDA_INPUT_SIZE, CUDA_SHAPES, PACKED_SHAPES, QUICK_SHAPES, SHAPES, measure
from bptt.engine import ENGINES, compiled, cornn, extension, indrnn, minrnn, scan

BUDGET_SECONDS = 8 * 60
TWINS = {
    "RNN(tanh)": (nn.RNN, bptt.RNN, {}),
    "RNN(relu)": (nn.RNN, bptt.RNN, {"nonlinearity": "relu"}),
    "LSTM": (nn.LSTM, bptt.LSTM, {}),
    "LSTM(proj_size)": (nn.LSTM, bptt.LSTM, {"proj_size": 4}),
    "GRU": (nn.GRU, bptt.GRU, {}),
}
#: The engines a layer can be asked for by name on each device ("vendor" is torch.nn's own kernel).
ENGINES_ON = {
    "cpu": ("auto", "compiled", "fast", "recompute", "probe", "reference"),
    "cuda": ("auto", "fast", "recompute", "probe", "triton", "reference"),
}


@dataclass(frozen=True)
class Check:
    """One row: what was checked, whether it held, what was seen, and how long it took."""

    name: str
    ok: bool
    detail: str
    seconds: float


def _step(layer: nn.Module, x: torch.Tensor, record: bool = False):
    """Outputs, final states and the gradients of x and every parameter (and the record when asked)."""
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()

    def run():
        out, state = layer(x)
        states = state if isinstance(state, tuple) else (state,)
        weights = torch.linspace(-1, 1, out.numel(), device=x.device, dtype=x.dtype).view_as(out)
        ((out * weights).sum() + sum((s**2).sum() for s in states)).backward()
        return [out.detach(), *[s.detach() for s in states], x.grad, *[p.grad for p in layer.parameters()]]

    if not record:
        return run(), None
    with bptt.record_gradients(layer) as rec:
        values = run()
    return values, rec


def _worst(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    """The largest relative difference over the pairs (0 where both are exactly zero)."""
    worst = 0.0
    for a, b in zip(got, want):
        scale = float(b.abs().max()) or 1.0
        worst = max(worst, float((a.double() - b.double()).abs().max()) / scale)
    return worst


def parity(device: str) -> Check:
    started, worst, failures = time.perf_counter(), 0.0, []
    for name, (theirs_cls, ours_cls, kwargs) in TWINS.items():
        torch.manual_seed(0)
        theirs = theirs_cls(16, 12, 2, bidirectional=True, **kwargs).to(device)
        x = torch.randn(30, 5, 16, device=device)
        want, _ = _step(theirs, x)
        for engine in ENGINES_ON[torch.device(device).type]:
            ours = ours_cls(16, 12, 2, bidirectional=True, engine=engine, **kwargs).to(device)
            ours.load_state_dict(theirs.state_dict())
            error = _worst(_step(ours, x)[0], want)
            worst = max(worst, error)
            if error > 1e-4:
                failures.append(f"{name} on {engine}: {error:.1e}")
    detail = f"{len(TWINS)} cells x every engine, worst relative difference {worst:.1e}"
    return Check("parity with torch.nn", not failures, "; ".join(failures) or detail, time.perf_counter() - started)


def gradchecks(device: str) -> Check:
    started, failures, count = time.perf_counter(), [], 0
    T, B, I, H = 4, 3, 2, 4

    def tensor(*shape):
        return (torch.randn(*shape, device=device, dtype=torch.float64) * 0.5).requires_grad_()

    cells = {
        "RNN(tanh)": (1, lambda e, x, h, c, *w: e.rnn_layer(x, h, *w, "tanh")[0]),
        "RNN(sigmoid)": (1, lambda e, x, h, c, *w: e.rnn_layer(x, h, *w, "sigmoid")[0]),
        "LSTM": (4, lambda e, x, h, c, *w: torch.cat([o.flatten() for o in _flat(e.lstm_layer(x, (h, c), *w))])),
        "GRU": (3, lambda e, x, h, c, *w: e.gru_layer(x, h, *w)[0]),
    }
    engines = ["fast", "recompute"] + (["compiled"] if torch.device(device).type == "cpu" else [])
    for engine_name in engines:
        engine = ENGINES.get(engine_name)
        for name, (gates, f) in cells.items():
            x, h0, c0 = tensor(T, B, I), tensor(B, H), tensor(B, H)
            weights = [tensor(gates * H, I), tensor(gates * H, H), tensor(gates * H), tensor(gates * H)]
            count += 1
            if not _holds(lambda *a, f=f, e=engine: f(e, *a), (x, h0, c0, *weights)):
                failures.append(f"{name} on {engine_name}")
    for name, f, inputs in _beyond_the_notes(tensor, T, B, I, H, device):
        count += 1
        if not _holds(f, inputs):
            failures.append(name)
    detail = f"{count} backwards in float64 (T={T}, B={B}, I={I}, H={H}): every one holds"
    return Check("gradcheck", not failures, ", ".join(failures) or detail, time.perf_counter() - started)


def _holds(f, inputs) -> bool:
    """Whether the backward of ``f`` passes gradcheck: a failure is the row's, not an exception."""
    return torch.autograd.gradcheck(f, inputs, raise_exception=False)


def _beyond_the_notes(tensor, T: int, B: int, I: int, H: int, device: str):
    """(name, function, inputs) of the newer cells' hand-written backwards: IndRNN, coRNN, minGRU and
    minLSTM (the compiled loops too, on a CPU), and the scan cells' diagonal recurrence both ways."""
    retention = lambda *shape: torch.rand(*shape, device=device, dtype=torch.float64).requires_grad_()  # noqa: E731
    yield (
        "IndRNN",
        lambda x, h, w, u, b: indrnn.indrnn_layer(x, h, w, u, b, "relu")[0],
        (tensor(T, B, I), tensor(B, H), tensor(H, I), retention(H), tensor(H)),
    )
    yield (
        "coRNN",
        lambda x, y, z, w, w_z, w_y, b: cornn.cornn_layer(x, (y, z), w, w_z, w_y, b, 0.06, 2.0, 3.0)[0],
        (tensor(T, B, I), tensor(B, H), tensor(B, H), tensor(H, I), tensor(H, H), tensor(H, H), tensor(H)),
    )
    layers: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {"fast": minrnn.min_layer}
    if torch.device(device).type == "cpu":
        layers["compiled"] = compiled.min_layer
    for cell, gates in minrnn.GATES.items():
        for engine_name, layer in layers.items():
            yield (
                f"{cell} on {engine_name}",
                lambda *a, c=cell, f=layer: f(c, *a)[0],
                (tensor(T, B, I), retention(B, H), tensor(gates * H, I), tensor(gates * H)),
            )
    for method in scan.METHODS:
        yield (
            f"diagonal scan ({method})",
            lambda a, b, h, m=method: scan.diagonal_scan(a, b, h, None, m),
            (retention(T, B, H), tensor(T, B, H), tensor(B, H)),
        )


def _flat(result) -> list[torch.Tensor]:
    out, state = result
    return [out, *(state if isinstance(state, tuple) else (state,))]


def recorded_norms(device: str) -> Check:
    started, worst, failures = time.perf_counter(), 0.0, []
    for name, (_theirs, ours_cls, kwargs) in TWINS.items():
        torch.manual_seed(0)
        reference = ours_cls(16, 12, 2, engine="reference", **kwargs).to(device)
        x = torch.randn(40, 5, 16, device=device)
        _, want = _step(reference, x, record=True)
        for engine in ENGINES_ON[torch.device(device).type]:
            ours = ours_cls(16, 12, 2, engine=engine, **kwargs).to(device)
            ours.load_state_dict(reference.state_dict())
            _, got = _step(ours, x, record=True)
            fields = ["hidden"] + (["cell"] if ours_cls is bptt.LSTM else [])
            if any(got.per_sample(f) is None for f in fields):
                failures.append(f"{name} on {engine}: nothing recorded")
                continue
            error = _worst([got.per_sample(f) for f in fields], [want.per_sample(f) for f in fields])
            worst = max(worst, error)
            if error > 1e-4:
                failures.append(f"{name} on {engine}: {error:.1e}")
    detail = f"dL/dh_t (and dL/dc_t) at every step, every engine, worst relative difference {worst:.1e}"
    return Check("recorded norms", not failures, "; ".join(failures) or detail, time.perf_counter() - started)


def speed(device: str, quick: bool) -> Check:
    started = time.perf_counter()
    cuda = torch.device(device).type == "cuda"
    shapes = QUICK_SHAPES if quick else (CUDA_SHAPES if cuda else SHAPES)
    packed = shapes if quick or cuda else PACKED_SHAPES
    keep = {(f"bptt {c}{r}", f"nn.{c}") for c in ("RNN(tanh)", "LSTM", "GRU") for r in ("", "+record")}
    keep |= {(f"bptt {c} packed", f"nn.{c} packed") for c in ("RNN(tanh)", "LSTM", "GRU")}
    result = measure(
        shapes,
        repeats=3,
        device=device,
        input_size=CUDA_INPUT_SIZE if cuda else None,
        packed_shapes=packed,
        variants=tuple(name for pair in keep for name in pair),
    )
    parts = [
        f"{r.variant} {r.ratio:.2f}x @ {r.batch}x{r.hidden}x{r.seq_len}"
        for r in result.ratios
        if (r.variant, r.baseline) in keep
    ]
    return Check("speed against torch.nn", True, "; ".join(parts), time.perf_counter() - started)


def demo(device: str) -> Check:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, "-m", "bptt.cli.main", "demo", "--quick", "--device", device, "--out", folder],
            capture_output=True,
            text=True,
        )
        wrote = (Path(folder) / "index.html").exists()
    ok = done.returncode == 0 and wrote
    last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] if not ok else []
    detail = "trained, measured and wrote its page" if ok else f"exit {done.returncode}: {' '.join(last)}"
    return Check("demo --quick", ok, detail, time.perf_counter() - started)


def run(device: str = "cpu", quick: bool = False, progress: Callable[[str], None] | None = None) -> list[Check]:
    """Every check on ``device``, in order (TF32 off on a GPU for the whole run)."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    started = time.perf_counter()
    compiled.available()  # built here, if it is to be, rather than inside a timed check
    checks = [Check("compiled loops", True, extension.status(), time.perf_counter() - started)]
    for name, check in (
        ("parity with torch.nn", lambda: parity(device)),
        ("gradcheck", lambda: gradchecks(device)),
        ("recorded norms", lambda: recorded_norms(device)),
        ("speed against torch.nn", lambda: speed(device, quick)),
        ("demo --quick", lambda: demo(device)),
    ):
        if progress is not None:
            progress(f"{name}...")
        checks.append(check())
    return checks
