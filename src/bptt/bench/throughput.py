"""Training-step throughput of bptt's layers, as ratios against torch.nn's, recording off and on.

A training step is forward + backward of one layer on a (T, B, I) input and the
loss mean(output) + mean(h_n): a loss that costs next to nothing, so the step
time is the layer's. With recording on, the step runs inside
``bptt.record_gradients`` (forward and backward), as a user recording dL/dh_t
would. Every variant runs in the same process; repetitions are interleaved
(variant 1, 2, ..., then again) and each variant's median time is kept, so a
machine that slows down for a while slows every variant alike. Ratios are
time(baseline) / time(variant): above 1 the variant is faster. Each timing also
says which engine bptt's layer ran (``engine_for``: "vendor", "probe", "compiled",
"fast", "reference", ...; "torch" for torch.nn's own). A variant whose first call
takes more than ``SLOW_CALL`` seconds (torch.nn's packed path on a CPU) is timed on
that call alone, and its timing says so (``calls``).

Packed batches (lengths spread from T/2 to T) run at ``PACKED_SHAPES`` on a CPU,
where torch.nn's packed path grows with T^2, and at every shape on a GPU.

Shapes (B, H, T): on a CPU, I = H; on a GPU, the shapes and I = 32 of the
anchors, with TF32 off. FLOPs counted per training step: 3 * 2 * G * H * (H + I)
* B * T (G gates: 1 RNN, 4 LSTM, 3 GRU; the forward's matrix products, times 3 for
forward + backward), so GFLOP/s compare like with like across cells.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import bptt
from bptt.modules.base import RecurrentBase

ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu", "prelu")
SHAPES = ((128, 128, 1000), (32, 256, 200), (16, 64, 5000))  # (B, H, T), I = H
CUDA_SHAPES = ((128, 128, 1000), (32, 256, 200), (16, 64, 5000), (256, 512, 500), (64, 1024, 200))
CUDA_INPUT_SIZE = 32
QUICK_SHAPES = ((32, 64, 100),)
PACKED_SHAPES = ((16, 64, 1000),)
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
#: Seconds: a variant whose first call takes longer is timed on that call alone.
SLOW_CALL = 3.0


@dataclass(frozen=True)
class Timing:
    """Median seconds per training step of one variant on one shape, and the engine it ran."""

    name: str
    cell: str
    batch: int
    hidden: int
    seq_len: int
    seconds: float
    gflops: float
    engine: str = "torch"
    calls: int = 1  # the timed calls the median is of (1: a slow variant, timed once)


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
        return {
            "threads": self.threads,
            "device": self.device,
            "timings": [asdict(t) for t in self.timings],
            "ratios": [asdict(r) for r in self.ratios],
            "memory": self.memory,
        }


@dataclass(frozen=True)
class Variant:
    """One thing timed: a layer, whether it records, and the input it takes (dense, or packed)."""

    cell: str
    module: nn.Module
    record: bool = False
    packed: bool = False


def flops_per_step(cell: str, batch: int, hidden: int, seq_len: int, input_size: int | None = None) -> float:
    """3 * 2 * G * H * (H + I) * B * T: forward matrix products, x3 for forward + backward."""
    input_size = hidden if input_size is None else input_size
    return 3.0 * 2 * GATES[cell] * hidden * (hidden + input_size) * batch * seq_len


def _variants(input_size: int, hidden: int, device: str, dtype: torch.dtype) -> dict[str, Variant]:
    """Every variant of one shape, all with the same input and hidden size."""
    make = {"device": device, "dtype": dtype}
    I, H = input_size, hidden
    reference = bptt.RNN(I, H, engine="reference", **make)
    reference.record_steps = False  # the bare autograd loop, without recording hooks
    out: dict[str, Variant] = {
        "nn.RNN(tanh)": Variant("rnn", nn.RNN(I, H, **make)),
        "reference RNN(tanh)": Variant("rnn", reference),
    }
    for activation in ACTIVATIONS:
        layer = bptt.RNN(I, H, activation=activation, **make)
        out[f"bptt RNN({activation})"] = Variant("rnn", layer)
        out[f"bptt RNN({activation})+record"] = Variant("rnn", layer, record=True)
    for name, theirs, ours in (("LSTM", nn.LSTM, bptt.LSTM), ("GRU", nn.GRU, bptt.GRU)):
        cell = name.lower()
        out[f"nn.{name}"] = Variant(cell, theirs(I, H, **make))
        out[f"bptt {name}"] = Variant(cell, ours(I, H, **make))
        out[f"bptt {name}+record"] = Variant(cell, out[f"bptt {name}"].module, record=True)
        out[f"bptt {name} fast"] = Variant(cell, ours(I, H, engine="fast", **make))
        if name == "LSTM":
            out["bptt LSTM probe+record"] = Variant(cell, ours(I, H, engine="probe", **make), record=True)
    out["nn.LSTM bidirectional"] = Variant("lstm", nn.LSTM(I, H, bidirectional=True, **make))
    out["bptt LSTM bidirectional"] = Variant("lstm", bptt.LSTM(I, H, bidirectional=True, **make))
    out["bptt LSTM bidirectional+record"] = Variant("lstm", out["bptt LSTM bidirectional"].module, record=True)
    for name, torch_name, bptt_name in (("RNN(tanh)", "nn.RNN(tanh)", "bptt RNN(tanh)"), ("LSTM", "nn.LSTM", "bptt LSTM"),
                                        ("GRU", "nn.GRU", "bptt GRU")):  # fmt: skip
        cell = out[torch_name].cell
        out[f"nn.{name} packed"] = Variant(cell, out[torch_name].module, packed=True)
        out[f"bptt {name} packed"] = Variant(cell, out[bptt_name].module, packed=True)
        out[f"bptt {name} packed+record"] = Variant(cell, out[bptt_name].module, record=True, packed=True)
    return out


#: (variant, baseline) pairs reported as ratios.
COMPARISONS = (
    *[(f"bptt RNN({a})", "nn.RNN(tanh)") for a in ACTIVATIONS],
    *[(f"bptt RNN({a})+record", "nn.RNN(tanh)") for a in ACTIVATIONS],
    *[(f"bptt RNN({a})+record", f"bptt RNN({a})") for a in ACTIVATIONS],
    ("bptt RNN(tanh)", "reference RNN(tanh)"),
    *[
        pair
        for name in ("LSTM", "GRU")
        for pair in (
            (f"bptt {name}", f"nn.{name}"),
            (f"bptt {name}+record", f"nn.{name}"),
            (f"bptt {name}+record", f"bptt {name}"),
            (f"bptt {name} fast", f"nn.{name}"),
        )
    ],
    ("bptt LSTM probe+record", "nn.LSTM"),
    ("bptt LSTM bidirectional", "nn.LSTM bidirectional"),
    ("bptt LSTM bidirectional+record", "nn.LSTM bidirectional"),
    *[
        pair
        for name in ("RNN(tanh)", "LSTM", "GRU")
        for pair in ((f"bptt {name} packed", f"nn.{name} packed"), (f"bptt {name} packed+record", f"nn.{name} packed"))
    ],
)


def select(
    table: dict[str, str],
    cells: tuple[str, ...] | None = None,
    only: tuple[str, ...] | None = None,
    packed: bool = False,
) -> list[str]:
    """The variants of ``table`` (name -> cell) to time: of ``cells`` ("rnn", "lstm", "gru"), whose name
    contains one of ``only`` (each variant's baseline comes along), packed ones where ``packed``, else dense."""
    picked = [n for n, cell in table.items() if (" packed" in n) == packed and (cells is None or cell in cells)]
    if only is None:
        return picked
    wanted = {n for n in picked if any(o.lower() in n.lower() for o in only)}
    wanted |= {b for v, b in COMPARISONS if v in wanted and b in picked}
    return [n for n in picked if n in wanted]


def _train_step(variant: Variant, x: torch.Tensor, lengths: torch.Tensor) -> str:
    """One forward + backward; returns the engine bptt's layer ran ("torch" for torch.nn's)."""
    module = variant.module
    for p in module.parameters():
        p.grad = None
    data = pack_padded_sequence(x, lengths, enforce_sorted=False) if variant.packed else x

    def step() -> None:
        output, state = module(data)
        h_n = state[0] if isinstance(state, tuple) else state
        out = output.data if variant.packed else output
        (out.mean() + h_n.mean()).backward()

    if variant.record:
        with bptt.record_gradients(module):
            step()
    else:
        step()
    return module.last_engine if isinstance(module, RecurrentBase) else "torch"


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
    *,
    packed_shapes: tuple[tuple[int, int, int], ...] | None = None,
    cells: tuple[str, ...] | None = None,
    only: tuple[str, ...] | None = None,
) -> BenchResult:
    """Median training-step time of every variant on every (B, H, T) shape, and the ratios.

    Variants run interleaved, ``repeats`` times each after one warm-up step (a slow one, only its
    first call: ``SLOW_CALL``); ``variants`` picks names (default: all); ``cells`` and ``only`` filter
    them (``select``); ``input_size`` defaults to H. Packed variants run at ``packed_shapes`` (default:
    the dense shapes themselves), dense ones at ``shapes``.
    """
    result = BenchResult(threads=torch.get_num_threads(), device=device)
    generator = torch.Generator().manual_seed(0)
    plan = [(shape, False) for shape in shapes]
    plan += [(shape, True) for shape in (shapes if packed_shapes is None else packed_shapes)]
    for (batch, hidden, seq_len), packed in plan:
        torch.manual_seed(0)
        in_size = hidden if input_size is None else input_size
        table = _variants(in_size, hidden, device, dtype)
        cell_of = {n: v.cell for n, v in table.items()}
        names = [n for n in select(cell_of, cells, only, packed) if variants is None or n in variants]
        if not names:
            continue
        x = torch.randn(seq_len, batch, in_size, generator=generator, dtype=dtype).to(device)
        # A packed batch: lengths spread from T/2 to T.
        lengths = torch.randint(max(1, seq_len // 2), seq_len + 1, (batch,), generator=generator)
        lengths[0] = seq_len
        times: dict[str, list[float]] = {n: [] for n in names}
        engines: dict[str, str] = {}
        slow: set[str] = set()
        for repeat in range(repeats + 1):
            for name in names:
                if repeat and name in slow:
                    continue
                _sync(device)
                start = time.perf_counter()
                engines[name] = _train_step(table[name], x, lengths)
                _sync(device)
                elapsed = time.perf_counter() - start
                if repeat:  # the first round is a warm-up
                    times[name].append(elapsed)
                elif elapsed > SLOW_CALL:  # timed on this call alone
                    times[name].append(elapsed)
                    slow.add(name)
            if progress is not None:
                kind = "packed " if packed else ""
                progress(f"{kind}B={batch} H={hidden} T={seq_len}: round {repeat}/{repeats}")
        medians = {n: statistics.median(v) for n, v in times.items()}
        for name in names:
            cell = table[name].cell
            seconds = medians[name]
            gflops = flops_per_step(cell, batch, hidden, seq_len, in_size) / seconds / 1e9
            result.timings.append(
                Timing(name, cell, batch, hidden, seq_len, seconds, gflops, engines[name], len(times[name]))
            )
        for variant, baseline in COMPARISONS:
            if variant in medians and baseline in medians:
                ratio = medians[baseline] / medians[variant]
                result.ratios.append(Ratio(variant, baseline, batch, hidden, seq_len, ratio))
    return result
