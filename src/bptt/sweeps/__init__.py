"""Sweeps: a YAML spec expands to runs (remedies x lengths x seeds), run on a local pool or Ray.

``spec`` reads and validates a spec, ``decisions`` says what each planned run
needs (skip, start, resume, or wait on a length ladder: ``ladder``), ``runner``
is the driver (the only writer of the results database), ``worker`` is what runs
on a worker, ``backends`` says where workers live.
"""

from bptt.sweeps.decisions import SweepSummary, decide
from bptt.sweeps.locks import SweepLockedError
from bptt.sweeps.runner import checkpoint_root_for, run_sweep
from bptt.sweeps.spec import PlannedRun, SweepSpec, SweepSpecError, expand_spec, load_spec

__all__ = [
    "PlannedRun",
    "SweepLockedError",
    "SweepSpec",
    "SweepSpecError",
    "SweepSummary",
    "checkpoint_root_for",
    "decide",
    "expand_spec",
    "load_spec",
    "run_sweep",
]
