"""``bptt bench --long``: one recorded training step at T = 100,000 (B = 32, H = 256, I = 32) for the
simple RNN, the LSTM and the GRU, each in a process of its own, on the engine ``auto`` picks for it.

The storing engines would keep 7 (LSTM) and 5 (GRU) (T, B, H) float32 tensors, 23 and 16 GB, for the
backward; where that does not fit in the free memory ``auto`` runs "recompute". Each row gives the step's
time, its peak memory above what was in use before it (``bptt.bench.memory``), and the estimate it must
stay within:

    kept_bytes (what the engine keeps from the forward, ``bptt.engine.memory``)
    + the record: dL/dh_t (and dL/dc_t) norms, T B float64 each
    + the backward's chunk buffers, at most 16 K B H float32 (K: ``bptt.engine.common.chunk_steps``)
    + ``SLACK`` for the allocator and the thread pools.
"""

from __future__ import annotations

from collections.abc import Callable

from bptt.bench.memory import peak_memory
from bptt.engine.common import chunk_steps
from bptt.engine.memory import kept_bytes

BATCH, HIDDEN, SEQ_LEN, INPUT_SIZE = 32, 256, 100_000, 32
SLACK = 256 * 2**20
MODES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def estimate(cell: str, engine: str, seq_len: int = SEQ_LEN, batch: int = BATCH, hidden: int = HIDDEN) -> int:
    """Bytes a recorded step of one layer may take on ``engine`` (see the module docstring)."""
    records = (2 if cell == "lstm" else 1) * seq_len * batch * 8
    buffers = 16 * chunk_steps(seq_len, batch, hidden) * batch * hidden * 4
    return kept_bytes(MODES[cell], engine, seq_len, batch, hidden) + records + buffers + SLACK


def run(
    cells: tuple[str, ...] = ("rnn", "lstm", "gru"),
    seq_len: int = SEQ_LEN,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """One recorded step per cell on ``auto``: its time, peak memory and estimate (see the module docstring)."""
    rows = []
    for cell in cells:
        if progress is not None:
            progress(f"{cell}: a recorded step at T={seq_len}, B={BATCH}, H={HIDDEN} (minutes on a CPU)")
        row = peak_memory(cell, "auto", seq_len, BATCH, HIDDEN, INPUT_SIZE, device, record=True)
        row["estimate_bytes"] = estimate(cell, row["ran"], seq_len)
        row["within"] = row["extra_bytes"] <= row["estimate_bytes"]
        rows.append(row)
    return rows
