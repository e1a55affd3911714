"""Training-step throughput of the fast engine, as ratios against torch.nn.

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
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

import bptt

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
