"""Training-step throughput and peak memory of the fast engine, as ratios against torch.nn.

A training step is forward + backward of one layer on a (T, B, I) input with
I = H and the loss mean(output) + mean(h_n): a loss that costs next to nothing,
so the step time is the layer's. Every variant runs in the
same process; repetitions are interleaved (variant 1, 2, ..., then again)
and each variant's median time is kept, so a machine that slows down for a
while slows every variant alike. Ratios are time(baseline) / time(variant):
above 1 the variant is faster.

FLOPs counted per training step: 3 * 2 * G * H * (H + I) * B * T (G gates:
1 RNN, 4 LSTM, 3 GRU; the forward's matrix products, times 3 for forward +
backward), so GFLOP/s compare like with like across cells.

Peak memory (``peak_memory``) runs one training step in a fresh Python
subprocess with the loss on h_n only, and reports the peak resident memory
during the step above the resident memory just before it (Linux: the peak
VmHWM is reset through /proc/self/clear_refs before the step; elsewhere
``ru_maxrss``, which can include an earlier peak), as a multiple of the bytes
of the stored hidden states T * B * H * 4. On CUDA it uses
``torch.cuda.max_memory_allocated`` instead. Resident memory counts
allocator slack too, so the figure is an upper bound on the live tensors.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu", "prelu")
SHAPES = ((128, 128, 1000), (32, 256, 200), (16, 64, 5000))  # (B, H, T)
QUICK_SHAPES = ((32, 64, 100),)
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class Timing:
    """Median seconds per training step of one variant on one shape."""

    name: str
    cell: str
    batch: int
    hidden: int
    seq_len: int
    seconds: float
    gflops: float


@dataclass(frozen=True)
class Ratio:
    """time(baseline) / time(variant) on one shape: > 1 means the variant is faster."""

    variant: str
    baseline: str
    batch: int
    hidden: int
    seq_len: int
    ratio: float


@dataclass
class BenchResult:
    timings: list[Timing] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    memory: list[dict] = field(default_factory=list)
    threads: int = 0
    device: str = "cpu"

    def to_dict(self) -> dict:
        return {"threads": self.threads, "device": self.device, "timings": [asdict(t) for t in self.timings],
                "ratios": [asdict(r) for r in self.ratios], "memory": self.memory}


def flops_per_step(cell: str, batch: int, hidden: int, seq_len: int, input_size: int | None = None) -> float:
    """3 * 2 * G * H * (H + I) * B * T: forward matrix products, x3 for forward + backward."""
    input_size = hidden if input_size is None else input_size
    return 3.0 * 2 * GATES[cell] * hidden * (hidden + input_size) * batch * seq_len


def _variants(input_size: int, hidden: int, device: str, dtype: torch.dtype) -> dict[str, tuple[str, nn.Module, bool]]:
    """name -> (cell, module, record): every module with the same input and hidden size."""
    import bptt

    make = dict(device=device, dtype=dtype)
    I, H = input_size, hidden  # noqa: E741
    reference = bptt.RNN(I, H, engine="reference", **make)
    reference.record_steps = False  # the bare autograd loop, without recording hooks
    out: dict[str, tuple[str, nn.Module, bool]] = {
        "nn.RNN(tanh)": ("rnn", nn.RNN(I, H, **make), False),
        "reference RNN(tanh)": ("rnn", reference, False),
    }
    for activation in ACTIVATIONS:
        out[f"bptt RNN({activation})"] = ("rnn", bptt.RNN(I, H, activation=activation, **make), False)
    out["bptt RNN(tanh)+record"] = ("rnn", out["bptt RNN(tanh)"][1], True)
    out["nn.LSTM"] = ("lstm", nn.LSTM(I, H, **make), False)
    out["bptt LSTM"] = ("lstm", bptt.LSTM(I, H, **make), False)
    out["bptt LSTM+record"] = ("lstm", out["bptt LSTM"][1], True)
    out["nn.GRU"] = ("gru", nn.GRU(I, H, **make), False)
    out["bptt GRU"] = ("gru", bptt.GRU(I, H, **make), False)
    return out


#: (variant, baseline) pairs reported as ratios.
COMPARISONS = (
    *[(f"bptt RNN({a})", "nn.RNN(tanh)") for a in ACTIVATIONS],
    ("bptt RNN(tanh)", "reference RNN(tanh)"),
    ("bptt LSTM", "nn.LSTM"),
    ("bptt GRU", "nn.GRU"),
    ("bptt RNN(tanh)+record", "bptt RNN(tanh)"),
    ("bptt LSTM+record", "bptt LSTM"),
)


def _train_step(module: nn.Module, x: torch.Tensor, record: bool) -> None:
    import bptt

    for p in module.parameters():
        p.grad = None
    output, state = module(x)
    h_n = state[0] if isinstance(state, tuple) else state
    loss = output.mean() + h_n.mean()
    if record:
        with bptt.record_gradients(module):
            loss.backward()
    else:
        loss.backward()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(
    shapes: tuple[tuple[int, int, int], ...] = SHAPES,
    repeats: int = 5,
    variants: tuple[str, ...] | None = None,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: Callable[[str], None] | None = None,
    input_size: int | None = None,
) -> BenchResult:
    """Median training-step time of every variant on every (B, H, T) shape, and the ratios.

    Variants run interleaved, ``repeats`` times each after one warm-up step;
    ``variants`` picks names (default: all); ``input_size`` defaults to H.
    """
    result = BenchResult(threads=torch.get_num_threads(), device=device)
    generator = torch.Generator().manual_seed(0)
    for batch, hidden, seq_len in shapes:
        torch.manual_seed(0)
        in_size = hidden if input_size is None else input_size
        table = _variants(in_size, hidden, device, dtype)
        names = [n for n in table if variants is None or n in variants]
        x = torch.randn(seq_len, batch, in_size, generator=generator, dtype=dtype).to(device)
        times: dict[str, list[float]] = {n: [] for n in names}
        for repeat in range(repeats + 1):
            for name in names:
                cell, module, record = table[name]
                _sync(device)
                start = time.perf_counter()
                _train_step(module, x, record)
                _sync(device)
                if repeat:  # the first round is a warm-up
                    times[name].append(time.perf_counter() - start)
            if progress is not None:
                progress(f"B={batch} H={hidden} T={seq_len}: round {repeat}/{repeats}")
        medians = {n: statistics.median(v) for n, v in times.items()}
        for name in names:
            cell = table[name][0]
            seconds = medians[name]
            gflops = flops_per_step(cell, batch, hidden, seq_len, in_size) / seconds / 1e9
            result.timings.append(Timing(name, cell, batch, hidden, seq_len, seconds, gflops))
        for variant, baseline in COMPARISONS:
            if variant in medians and baseline in medians:
                ratio = medians[baseline] / medians[variant]
                result.ratios.append(Ratio(variant, baseline, batch, hidden, seq_len, ratio))
    return result


_MEMORY_SCRIPT = r"""
import json, resource, sys, torch
from torch import nn
import bptt
cell, engine, T, B, H, I, device = sys.argv[1:8]
T, B, H, I = int(T), int(B), int(H), int(I)
torch.manual_seed(0)
if engine == "torch":
    module = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](I, H)
else:
    module = {"rnn": bptt.RNN, "lstm": bptt.LSTM, "gru": bptt.GRU}[cell](I, H, engine=engine)
module = module.to(device)
def step(x):
    output, state = module(x)
    h_n = state[0] if isinstance(state, tuple) else state
    h_n.square().mean().backward()
step(torch.randn(4, B, I, device=device))  # warm-up: allocator, threads
x = torch.randn(T, B, I, device=device)
if device.startswith("cuda"):
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step(x); torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - before
else:
    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))
    try:  # reset the peak (VmHWM) to the current resident set, Linux >= 4.0
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    before = status("VmRSS")
    step(x)
    peak = status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    extra = peak - before
print(json.dumps({"extra_bytes": extra}))
"""


def peak_memory(cell: str = "rnn", engine: str = "fast", seq_len: int = 10000, batch: int = 32, hidden: int = 256,
                input_size: int = 2, device: str = "cpu") -> dict:
    """Peak memory of one training step (loss on h_n) in a fresh subprocess.

    ``engine`` is "fast", "reference" or "torch" (torch.nn). Returns the extra
    bytes and their multiple of the stored hidden states T * B * H * 4
    (float32). The CPU figure is resident memory, so it includes allocator
    slack; it is an upper bound on the tensors alive at the peak.
    """
    args = [sys.executable, "-c", _MEMORY_SCRIPT, cell, engine, str(seq_len), str(batch), str(hidden),
            str(input_size), device]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    extra = json.loads(done.stdout.strip().splitlines()[-1])["extra_bytes"]
    hidden_bytes = seq_len * batch * hidden * 4
    return {"cell": cell, "engine": engine, "seq_len": seq_len, "batch": batch, "hidden": hidden,
            "input_size": input_size, "extra_bytes": extra, "hidden_state_bytes": hidden_bytes,
            "multiple": extra / hidden_bytes}


def run(quick: bool = False, device: str = "cpu", progress: Callable[[str], None] | None = None) -> BenchResult:
    """The whole benchmark: throughput on ``SHAPES`` (``QUICK_SHAPES`` when quick) and peak memory
    of an RNN at T=10000, B=32, H=256 (T=1000 when quick), fast engine against torch.nn."""
    shapes = QUICK_SHAPES if quick else SHAPES
    result = measure(shapes, repeats=3 if quick else 5, device=device, progress=progress)
    seq_len = 1000 if quick else 10000
    for engine in ("fast", "torch"):
        result.memory.append(peak_memory("rnn", engine, seq_len=seq_len, device=device))
    return result
