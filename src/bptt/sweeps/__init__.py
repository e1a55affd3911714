"""Sweeps: a YAML spec expands to runs (remedies x lengths x seeds), run on a local pool or Ray.

``spec`` reads and validates a spec, ``runner`` is the driver (the only writer
of the results database), ``worker`` is what runs on a worker, ``backends``
says where workers live.
"""

from bptt.sweeps.locks import SweepLockedError
from bptt.sweeps.runner import SweepSummary, checkpoint_root_for, decide, run_sweep
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
