"""The interactive layer of a page: model buttons, family toggles, a lag slider and a training-step slider.

The page's figures stay as they are (matplotlib SVG, also saved as PNG/SVG for
papers); ``assets/interactive.js`` adds, from the page's data, the highlighting
of one model in every figure and table, the family toggles, each model's
g[k] / g[0] at a chosen lag, and the profiles recorded during training replayed
step by step (``assets/charts.js`` draws the two live charts in plain SVG).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bptt.plotting.html import Raw, asset
from bptt.plotting.style import FAMILIES, FAMILY_NAMES, SeriesStyle

#: Significant digits the page's data keeps: far finer than a chart can show, and a small page.
DIGITS = 4


def compact(values: Iterable[float], digits: int = DIGITS) -> list[float | None]:
    """The values rounded to ``digits`` significant digits; None for one that is not finite."""
    out: list[float | None] = []
    for v in values:
        v = float(v)
        out.append(float(f"{v:.{digits}g}") if math.isfinite(v) else None)
    return out


def thin(count: int, most: int) -> list[int]:
    """At most ``most`` indices from 0 to count - 1, evenly spread, the first and the last kept."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def model_entries(styles: Mapping[str, SeriesStyle], families: Mapping[str, str]) -> list[dict[str, Any]]:
    """The page's models for the script: key, label, family, colour and line."""
    return [
        {
            "key": style.key,
            "label": label,
            "family": families[label],
            "color": style.color,
            "dash": style.dash_pattern(),
            "width": style.linewidth,
        }
        for label, style in styles.items()
    ]


def relative(profile: Sequence[float]) -> list[float]:
    """g[k] / g[0] (the profile itself when g[0] is 0)."""
    first = float(profile[0])
    return [float(v) / first for v in profile] if first > 0 else [float(v) for v in profile]


def controls(models: Sequence[Mapping[str, Any]]) -> Raw:
    """A button per model (picks it in every figure) and a checkbox per family present."""
    buttons = "".join(
        f'<button type="button" class="pick" data-key="{html.escape(m["key"])}" aria-pressed="false">'
        f'<span class="swatch" style="border-top:3px {"dashed" if m["dash"] else "solid"} {m["color"]}"></span>'
        f"{html.escape(m['label'])}</button>"
        for m in models
    )
    present = [f for f in FAMILIES if any(m["family"] == f for m in models)]
    boxes = "".join(
        f'<label><input type="checkbox" data-family="{f}" checked> {FAMILY_NAMES[f]}</label>' for f in present
    )
    return Raw(
        '<div class="controls pickers" role="group" aria-label="models">'
        f"<fieldset><legend>Show</legend>{boxes}</fieldset>"
        f'<div class="models">{buttons}</div>'
        '<span id="picked" class="status" aria-live="polite"></span></div>'
    )


def lag_slider(group: str, max_lag: int, initial: int) -> Raw:
    """A lag slider and the chart of every model's g[k] / g[0] at that lag."""
    initial = max(0, min(initial, max_lag))
    return Raw(
        f'<div class="controls"><label class="slider" for="lag-{group}">lag k (steps back from the loss)'
        f'<input type="range" id="lag-{group}" min="0" max="{max_lag}" step="1" value="{initial}">'
        f'<output id="lag-value-{group}" for="lag-{group}">{initial}</output></label></div>'
        f'<div class="bptt-chart" id="lag-chart-{group}" data-chart="lag"></div>'
    )


def step_slider(group: str, steps: Sequence[int]) -> Raw:
    """A training-step slider over the recorded steps and the chart of the profiles at that step."""
    last = len(steps) - 1
    return Raw(
        f'<div class="controls"><label class="slider" for="step-{group}">training step'
        f'<input type="range" id="step-{group}" min="0" max="{last}" step="1" value="{last}" '
        f'aria-valuetext="step {steps[-1]}">'
        f'<output id="step-value-{group}" for="step-{group}">{steps[-1]}</output></label></div>'
        f'<div class="bptt-chart" id="replay-chart-{group}" data-chart="replay"></div>'
    )


def scripts() -> list[str]:
    """The page's scripts, in order: the charts, then the interactive layer."""
    return [asset("charts.js"), asset("interactive.js")]
