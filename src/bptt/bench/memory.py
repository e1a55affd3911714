"""Peak memory of one training step, measured in a fresh Python process.

``peak_memory`` runs ``python -m bptt.bench.memory_probe`` (one step of one
layer, the loss on h_n only; see that module for how the memory is read) and
reports the extra bytes as a multiple of the bytes of the stored hidden states,
T * B * H * 4 (float32). Resident memory counts allocator slack too, so the CPU
figure is an upper bound on the tensors alive at the peak.
"""

from __future__ import annotations

import json
import subprocess
import sys

#: The program ``peak_memory`` runs, by module name: importing it here would load it
#: before ``python -m`` runs it as ``__main__``.
PROBE = "bptt.bench.memory_probe"


def peak_memory(
    cell: str = "rnn",
    engine: str = "fast",
    seq_len: int = 10000,
    batch: int = 32,
    hidden: int = 256,
    input_size: int = 2,
    device: str = "cpu",
    record: bool = False,
    timeout: float | None = None,
) -> dict:
    """Peak memory of one training step (loss on h_n) in a fresh subprocess.

    ``engine`` is a bptt engine ("auto", "compiled", "recompute", "fast", ...)
    or "torch" (torch.nn); ``record`` runs the step inside ``record_gradients``.
    Returns the extra bytes and their multiple of the stored hidden states
    T * B * H * 4 (float32), the engine the layer ran and the step's seconds.
    The CPU figure is resident memory, so it includes allocator slack; it is an
    upper bound on the tensors alive at the peak.
    """
    args = [sys.executable, "-m", PROBE, cell, engine, str(seq_len), str(batch), str(hidden), str(input_size), device]
    done = subprocess.run(args + (["--record"] if record else []), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the memory probe failed: {done.stderr.strip().splitlines()[-1:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    extra = report["extra_bytes"]
    hidden_bytes = seq_len * batch * hidden * 4
    return {
        "cell": cell,
        "engine": engine,
        "seq_len": seq_len,
        "batch": batch,
        "hidden": hidden,
        "input_size": input_size,
        "extra_bytes": extra,
        "hidden_state_bytes": hidden_bytes,
        "multiple": extra / hidden_bytes,
        "ran": report["engine"],
        "seconds": report["seconds"],
    }
