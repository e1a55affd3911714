"""``bptt bench``: training-step throughput and peak memory of the fast engine against torch.nn.

``throughput`` times training steps of every variant side by side in one
process and reports ratios and GFLOP/s; ``memory`` measures the peak memory of
one step in a fresh process (``memory_probe`` is the program it runs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bptt.bench.memory import peak_memory
from bptt.bench.throughput import (
    COMPARISONS,
    CUDA_INPUT_SIZE,
    CUDA_SHAPES,
    QUICK_SHAPES,
    SHAPES,
    BenchResult,
    Ratio,
    Timing,
    flops_per_step,
    measure,
)


def run(quick: bool = False, device: str = "cpu", progress: Callable[[str], None] | None = None) -> BenchResult:
    """The whole benchmark: throughput on ``SHAPES`` (on a GPU ``CUDA_SHAPES`` with I = 32 and TF32
    off; ``QUICK_SHAPES`` when quick) and peak memory of an RNN at T=10000, B=32, H=256 (T=1000
    when quick), fast engine against torch.nn."""
    cuda = torch.device(device).type == "cuda"
    shapes = QUICK_SHAPES if quick else (CUDA_SHAPES if cuda else SHAPES)
    if cuda:  # exact fp32 on both sides, as the anchors were measured
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    result = measure(
        shapes,
        repeats=3 if quick else 5,
        device=device,
        progress=progress,
        input_size=CUDA_INPUT_SIZE if cuda else None,
    )
    seq_len = 1000 if quick else 10000
    for engine in ("fast", "torch"):
        result.memory.append(peak_memory("rnn", engine, seq_len=seq_len, device=device))
    return result


__all__ = [
    "COMPARISONS",
    "CUDA_INPUT_SIZE",
    "CUDA_SHAPES",
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
