"""``bptt bench``: training-step throughput and peak memory of bptt's engines against torch.nn.

``throughput`` times training steps of every variant side by side in one
process and reports ratios and GFLOP/s; ``memory`` measures the peak memory of
one step in a fresh process (``memory_probe`` is the program it runs); ``long``
runs a recorded step at T = 100,000 on each cell (``bptt bench --long``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bptt.bench.memory import peak_memory
from bptt.bench.throughput import (
    COMPARISONS,
    CUDA_INPUT_SIZE,
    CUDA_SHAPES,
    PACKED_SHAPES,
    QUICK_SHAPES,
    SHAPES,
    BenchResult,
    Ratio,
    Timing,
    flops_per_step,
    measure,
)
from bptt.engine import compiled, extension


def run(
    quick: bool = False,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
    *,
    cells: tuple[str, ...] | None = None,
    shapes: tuple[tuple[int, int, int], ...] | None = None,
    only: tuple[str, ...] | None = None,
) -> BenchResult:
    """The whole benchmark: throughput on ``SHAPES`` (on a GPU ``CUDA_SHAPES`` with I = 32 and TF32
    off; ``QUICK_SHAPES`` when quick), packed batches at ``PACKED_SHAPES`` on a CPU (at the shapes on a
    GPU), and peak memory: an RNN at T=10000, B=32, H=256 (T=1000 when quick), fast engine against
    torch.nn, and the LSTM and GRU at T=2000 on "compiled" and "recompute". ``cells``, ``shapes`` and
    ``only`` narrow it (``measure``; ``shapes`` then holds for packed batches too)."""
    cuda = torch.device(device).type == "cuda"
    chosen = shapes if shapes is not None else (QUICK_SHAPES if quick else (CUDA_SHAPES if cuda else SHAPES))
    packed_shapes = chosen if shapes is not None or quick or cuda else PACKED_SHAPES
    if cuda:  # exact fp32 on both sides, as the anchors were measured
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif progress is not None and not compiled.available():
        progress(f"compiled loops {extension.status()}")
    result = measure(
        chosen,
        repeats=3 if quick else 5,
        device=device,
        progress=progress,
        input_size=CUDA_INPUT_SIZE if cuda else None,
        packed_shapes=packed_shapes,
        cells=cells,
        only=only,
    )
    rows = [("rnn", "fast", 1000 if quick else 10000), ("rnn", "torch", 1000 if quick else 10000)]
    if not quick:
        rows += [(cell, engine, 2000) for cell in ("lstm", "gru") for engine in ("compiled", "recompute")]
    for cell, engine, seq_len in rows:
        if cells is None or cell in cells:
            if progress is not None:
                progress(f"peak memory: {cell} on {engine}, T={seq_len}")
            result.memory.append(peak_memory(cell, engine, seq_len=seq_len, device=device))
    return result


__all__ = [
    "COMPARISONS",
    "CUDA_INPUT_SIZE",
    "CUDA_SHAPES",
    "PACKED_SHAPES",
    "QUICK_SHAPES",
    "SHAPES",
    "BenchResult",
    "Ratio",
    "Timing",
    "flops_per_step",
    "measure",
    "peak_memory",
    "run",
]
