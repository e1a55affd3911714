"""What every figure does with a log axis.

Exact zeros (a dead ReLU's gradient, a norm that underflowed) have no place on a
log axis, but leaving them off hides a series that vanished completely. So a
series is drawn in two parts: its positive values as a line, and its exact
zeros as markers along the bottom edge of the axes (``plot_log``), labelled
"vanished to 0". Non-finite values are left off, drawn as gaps.

Lines that are references rather than data (Pascanu's bound, a baseline) are
drawn without moving the axis (``plot_reference``); the axis then spans the
data (``fit_to_data``), so a bound that climbs to 1e55 is clipped at the
edge instead of stretching the axis over a hundred decades.

Over less than a decade a log axis has no major tick, and matplotlib labels
its minor ticks as 1.725x10^-1; ``readable_log_ticks`` labels them as plain
numbers instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

#: Marker of the exact zeros of a series on a log axis, and the words for it.
ZERO_MARKER = "v"
VANISHED = "vanished to 0"
#: Batch-mean gradient norms recorded in float32 during training bottom out near here:
#: smaller squared entries fall below float32's smallest normal number (1.2e-38) and
#: are flushed to zero, so a profile flat at this level has underflowed, not settled.
FLOAT32_FLOOR = 1e-30


def log_axis_values(values: Iterable[float]) -> list[float]:
    """The values as floats for a log axis: NaN (left off by matplotlib) for each one
    that is not finite and > 0, the others unchanged."""
    points = [float(v) for v in values]
    return [v if math.isfinite(v) and v > 0 else math.nan for v in points]


def zero_positions(xs: Sequence[float], values: Iterable[float]) -> list[float]:
    """The x of every value that is exactly zero."""
    return [x for x, v in zip(xs, (float(v) for v in values)) if v == 0.0]


def plot_log(ax: Axes, xs: Sequence[float], values: Iterable[float], label: str, **style: Any) -> bool:
    """Draw a series on a log y axis: its positive values as a line, its exact zeros as
    markers on the bottom edge. The label says "vanished to 0" when there are zeros.
    Returns whether the series had any."""
    values = [float(v) for v in values]
    zeros = zero_positions(xs, values)
    positive = log_axis_values(values)
    shown: str | None = f"{label} ({ZERO_MARKER} {VANISHED})" if zeros else label
    color: Any
    if any(not math.isnan(v) for v in positive):
        (line,) = ax.plot(xs, positive, label=shown, **style)
        shown = None  # the line carries the label
        color = line.get_color()
    else:
        color = style.get("color")
    if zeros:
        # x in data units, y in axes units: on the bottom edge, whatever the axis limits.
        ax.plot(
            zeros,
            [0.015] * len(zeros),
            ZERO_MARKER,
            color=color,
            markersize=5,
            clip_on=False,
            transform=ax.get_xaxis_transform(),
            label=shown,
            linestyle="none",
            gid=style.get("gid"),
        )
    return bool(zeros)


def plot_reference(ax: Axes, xs: Sequence[float], values: Iterable[float], **style: Any) -> None:
    """A reference line (a bound) that never moves the axis limits: clipped to the data's range."""
    ax.plot(xs, log_axis_values(values), scalex=False, scaley=False, **style)


def data_limits(series: Iterable[Iterable[float]], margin: float = 2.0) -> tuple[float, float] | None:
    """(low / margin, high * margin) over the positive finite values of every series; None when there are none."""
    points = [v for values in series for v in log_axis_values(values) if not math.isnan(v)]
    if not points:
        return None
    return min(points) / margin, max(points) * margin


def fit_to_data(ax: Axes, series: Iterable[Iterable[float]], margin: float = 2.0) -> None:
    """Set a log y axis to the data's range, whatever reference lines were drawn."""
    limits = data_limits(series, margin)
    if limits is not None:
        ax.set_ylim(*limits)


def readable_log_ticks(ax: Axes, axis: str = "y") -> None:
    """Plain-number tick labels on a log axis that spans less than two decades (call after the data is drawn)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    if not (low > 0 and high > 0) or math.log10(high / low) >= 2:
        return
    plain = FuncFormatter(lambda value, _: f"{value:.3g}")
    # Under a decade, evenly spaced ticks; up to two, 1-2-5 steps.
    locator = MaxNLocator(nbins=4) if math.log10(high / low) < 1 else LogLocator(base=10, subs=(1.0, 2.0, 5.0))
    target.set_major_locator(locator)
    target.set_major_formatter(plain)
    target.set_minor_formatter(NullFormatter())


def at_float32_floor(values: Iterable[float], floor: float = FLOAT32_FLOOR) -> bool:
    """Whether a recorded profile reaches float32's floor: a positive value at or below ``floor``."""
    return any(v <= floor for v in log_axis_values(values) if not math.isnan(v))
