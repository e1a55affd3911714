"""What the "auto" engine runs: the fastest engine that gives what was asked for, on the input it gets.

Three rules are facts, not measurements:

- a step watch, or a ``torch.func`` transform, needs the reference loop (the layers check this first);
- a per-step record needs a per-step engine: never the vendor's kernel, which hides every step; the
  probe gives dL/dh_t (and an LSTM's dL/dc_t) only, never the W_hh update terms, and no GRU;
- an LSTM or GRU whose stored steps would not fit in the free memory runs on "recompute".

Everything else is speed, and speed is measured: ``FASTEST`` says, per device, cell and input (dense or
packed), whether the vendor's kernel or bptt's own engine ran a training step faster with nothing
recorded, and ``PROBE_FASTEST`` whether the probe beat bptt's engine with dL/dh_t recorded. "Ours" is
"compiled" on a CPU where the compiled loops build, "fast" where they do not, and on a GPU "triton" for
the simple RNN where Triton runs, else "fast". ``bptt bench`` measures each entry again (its rows name
the engine auto chose); the figures beside them are its ratios, torch.nn time / bptt time.
"""

from __future__ import annotations

#: (device type, cell, packed, ours) -> the faster with nothing recorded: "vendor" or "ours".
FASTEST: dict[tuple[str, str, bool, str], str] = {
    # CPU, 2 cores, (B, H, T) = (16, 64, 1000 and 5000), I = 32, one thread each, side by side:
    ("cpu", "RNN", False, "compiled"): "ours",  # 3.7-5.3x
    ("cpu", "GRU", False, "compiled"): "ours",  # 4.3-5.3x
    ("cpu", "LSTM", False, "compiled"): "ours",  # 1.3-1.7x; 1.5x at (32, 256, 200), 1.9x at (128, 128, 1000)
    ("cpu", "RNN", False, "fast"): "ours",  # 2.3-2.6x
    ("cpu", "GRU", False, "fast"): "ours",  # 1.9-2.1x
    ("cpu", "LSTM", False, "fast"): "vendor",  # 0.54-0.63x
    # torch.nn's packed path on a CPU copies the whole input's gradient at every step, so it grows with
    # T^2: at T = 1000 its LSTM step took 41-79 s, bptt's 0.85 s compiled (93x), 1.1 s fast (37x).
    ("cpu", "RNN", True, "compiled"): "ours",
    ("cpu", "GRU", True, "compiled"): "ours",
    ("cpu", "LSTM", True, "compiled"): "ours",
    ("cpu", "RNN", True, "fast"): "ours",
    ("cpu", "GRU", True, "fast"): "ours",
    ("cpu", "LSTM", True, "fast"): "ours",
    # GPU (cuDNN): unmeasured here; cuDNN runs the whole stack in persistent kernels, packed or not, at
    # 82-91 % GPU occupancy where a loop of per-step kernels keeps it 12-14 % busy (the GPU anchors).
    ("cuda", "RNN", False, "fast"): "vendor",
    ("cuda", "GRU", False, "fast"): "vendor",
    ("cuda", "LSTM", False, "fast"): "vendor",
    ("cuda", "RNN", False, "triton"): "vendor",
    ("cuda", "RNN", True, "fast"): "vendor",
    ("cuda", "GRU", True, "fast"): "vendor",
    ("cuda", "LSTM", True, "fast"): "vendor",
    ("cuda", "RNN", True, "triton"): "vendor",
}

#: (device type, cell, ours) -> with dL/dh_t recorded, the faster: "probe" or "ours".
PROBE_FASTEST: dict[tuple[str, str, str], str] = {
    ("cpu", "LSTM", "compiled"): "ours",  # probe 0.68-0.78x torch.nn, compiled 1.5-1.6x with both records
    ("cpu", "RNN", "compiled"): "ours",
    ("cpu", "LSTM", "fast"): "probe",  # probe 0.74-0.75x, fast 0.54-0.63x
    ("cpu", "RNN", "fast"): "ours",  # fast 2.3x
    ("cuda", "LSTM", "fast"): "probe",  # the anchors: 0.91-1.41x of the plain cuDNN step
    ("cuda", "RNN", "fast"): "probe",  # 1.06-1.25x
    ("cuda", "RNN", "triton"): "probe",
}

#: What a record asks of the backward: nothing, dL/dh_t, dL/dh_t and dL/dc_t, or the W_hh terms too.
WANTS = ("nothing", "hidden", "cells", "updates")


def choose(
    device: str,
    cell: str,
    *,
    vendor_has: bool,
    whole_stack: bool,
    packed: bool,
    wants: str,
    ours: str,
    fits: bool = True,
) -> str:
    """The engine ``auto`` runs: "vendor", "probe", "recompute" or ``ours`` ("compiled", "fast", "triton").

    ``cell``: "RNN", "LSTM" or "GRU"; ``vendor_has``: torch.nn has the cell (for the RNN, tanh or ReLU);
    ``whole_stack``: the vendor can run the whole stack (no residual, no truncation); ``wants``: one of
    ``WANTS``; ``fits``: the storing engines' values fit in the free memory.
    """
    if not fits and cell in ("LSTM", "GRU"):
        return "recompute"
    kind = "cuda" if device == "cuda" else "cpu"
    if wants == "nothing":
        if vendor_has and whole_stack and FASTEST.get((kind, cell, packed, ours)) == "vendor":
            return "vendor"
        return ours
    probe_gives = wants == "hidden" or (wants == "cells" and cell == "LSTM")
    if probe_gives and vendor_has and cell != "GRU" and PROBE_FASTEST.get((kind, cell, ours)) == "probe":
        return "probe"
    return ours
