"""What one layer's forward keeps for its backward, on the storing engines and on "recompute", and the
memory free on a device: what ``auto`` weighs before it picks "recompute".

Bytes kept per layer and direction for a (T, B) input, with H the hidden size, P the output size (H
without a projection) and s the bytes of one value:

- storing ("fast", "compiled"): the LSTM T B (6H + P) s (gates 4H, c_t and tanh c_t, h_t; one more H
  for m_t with a projection), the GRU T B 5H s (gates 3H, u_n, h_t), the simple RNN T B H s (h_t; twice
  that where the pre-activations are kept);
- "recompute": the outputs T B P s, one kept c_t (LSTM) per chunk of K steps, and one chunk of the
  storing engine's values, K B (6H + P) s or K B 5H s.

The backward adds its chunk buffers (a few K B H values) and the input's gradient, T B I s.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from bptt.engine.common import chunk_steps

#: The share of the free memory a forward may plan to keep: the rest is left for what runs beside it.
HEADROOM = 0.8


def stored_widths(mode: str, hidden: int, output: int) -> int:
    """Values kept per step and sequence by a storing engine (see the module docstring)."""
    if mode == "LSTM":
        return 6 * hidden + output + (hidden if output != hidden else 0)
    if mode == "GRU":
        return 5 * hidden
    return 2 * hidden  # the RNN, its pre-activations counted as kept: an upper bound


def kept_bytes(
    mode: str, engine: str, seq_len: int, batch: int, hidden: int, output: int | None = None, itemsize: int = 4
) -> int:
    """Bytes one layer and direction keeps from its forward for its backward on ``engine`` ("recompute" or a
    storing engine)."""
    output = hidden if output is None else output
    width = stored_widths(mode, hidden, output)
    if engine != "recompute" or mode not in ("LSTM", "GRU"):
        return seq_len * batch * width * itemsize
    K = chunk_steps(seq_len, batch, hidden)
    kept_cells = -(-seq_len // K) * batch * hidden if mode == "LSTM" else 0
    return (seq_len * batch * output + kept_cells + K * batch * width) * itemsize


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """What a cgroup v2 memory limit leaves (in a container the machine's free memory may not be ours)."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def available_memory(device: str | torch.device = "cpu") -> int | None:
    """Bytes free on ``device`` now (host memory for cpu), or None where it cannot be told."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    found = [value for value in (_meminfo_available(), _cgroup_available()) if value is not None]
    return min(found) if found else None


def fits(needed: int, device: str | torch.device) -> bool:
    """Whether ``needed`` bytes fit in ``HEADROOM`` of what ``device`` has free (True where that is unknown)."""
    free = available_memory(device)
    return free is None or needed <= HEADROOM * free
