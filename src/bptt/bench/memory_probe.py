"""One training step in a process of its own, printing the memory it took above what was in use before.

Run by ``bptt.bench.memory.peak_memory`` as

    python -m bptt.bench.memory_probe CELL ENGINE SEQ_LEN BATCH HIDDEN INPUT_SIZE DEVICE

and prints one line of JSON, ``{"extra_bytes": N}``. The step is one layer's
forward and backward on a (T, B, I) input, with the loss on h_n only. On CUDA,
N is ``torch.cuda.max_memory_allocated`` during the step minus the memory
allocated before it. On CPU it is the peak resident memory during the step
minus the resident memory just before it: on Linux the peak (VmHWM) is reset
through /proc/self/clear_refs first; elsewhere ``ru_maxrss`` is read, which can
include an earlier peak.
"""

from __future__ import annotations

import argparse
import json
import resource

import torch
from torch import nn

from bptt.modules import CELLS

TORCH_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def build_layer(cell: str, engine: str, input_size: int, hidden_size: int) -> nn.Module:
    """torch.nn's layer for ``engine`` "torch" (rnn, lstm, gru), else bptt's layer of any registered cell
    (``bptt.modules.CELLS``, at its defaults) on that engine."""
    if engine == "torch":
        return TORCH_CELLS[cell](input_size, hidden_size)
    return CELLS.get(cell).layer(input_size, hidden_size, engine=engine)


def training_step(module: nn.Module, x: torch.Tensor) -> None:
    """Forward and backward of loss = mean(h_n^2)."""
    _output, state = module(x)
    h_n = state[0] if isinstance(state, tuple) else state
    h_n.square().mean().backward()


def _status(field: str) -> int:
    """A /proc/self/status entry (kB) in bytes."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field + ":"))


def _reset_peak() -> bool:
    """Reset the peak resident memory (VmHWM) to the current resident set (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def extra_bytes(module: nn.Module, x: torch.Tensor, device: str) -> int:
    """The memory one training step on ``x`` takes above what was in use just before it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        training_step(module, x)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    reset = _reset_peak()
    before = _status("VmRSS")
    training_step(module, x)
    peak = _status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return peak - before


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bptt.bench.memory_probe", description=__doc__.splitlines()[0])
    parser.add_argument("cell", choices=CELLS.in_order())
    parser.add_argument("engine", help='"torch" (torch.nn), or a bptt engine ("fast", "reference")')
    parser.add_argument("seq_len", type=int)
    parser.add_argument("batch", type=int)
    parser.add_argument("hidden", type=int)
    parser.add_argument("input_size", type=int)
    parser.add_argument("device")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    module = build_layer(args.cell, args.engine, args.input_size, args.hidden).to(args.device)
    warm_up = torch.randn(4, args.batch, args.input_size, device=args.device)
    training_step(module, warm_up)  # the allocator and the thread pools start before the measured step
    x = torch.randn(args.seq_len, args.batch, args.input_size, device=args.device)
    print(json.dumps({"extra_bytes": extra_bytes(module, x, args.device)}))


if __name__ == "__main__":
    main()
