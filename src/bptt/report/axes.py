"""What every figure does with a log axis.

Exact zeros (the first step's term delta_0^T h_{-1} of dL/dW_hh with
h_{-1} = 0, a dead ReLU's gradient, a norm that underflowed) and non-finite
values have no place on a log axis. They are left off, drawn as gaps, rather
than floored at a tiny number, so they do not stretch the axis over hundreds
of decades.
"""
from __future__ import annotations

import math
from collections.abc import Iterable


def log_axis_values(values: Iterable[float]) -> list[float]:
    """The values as floats for a log axis: NaN (left off by matplotlib) for each one
    that is not finite and > 0, the others unchanged."""
    points = [float(v) for v in values]
    return [v if math.isfinite(v) and v > 0 else math.nan for v in points]
