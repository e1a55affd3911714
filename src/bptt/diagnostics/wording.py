"""The words a diagnosis is told in: shares, ratios, what a ratio says, when it was measured."""

from __future__ import annotations

import html
import math

from bptt.plotting.html import figure_svg


def format_share(share: float) -> str:
    """A share as a percentage, with enough decimals to tell 99.9999 % from 100 %."""
    if math.isnan(share):
        return "n/a"
    if 0.9995 <= share < 1:
        decimals = min(4, -math.floor(math.log10(1 - share)) - 2)  # enough to show it is not 100 %
        return f"{math.floor(100 * share * 10**decimals) / 10**decimals:.{decimals}f} %"
    return f"{100 * share:.1f} %"


def sci(value: float) -> str:
    """A value to two significant digits, n/a for nan."""
    return "n/a" if math.isnan(value) else f"{value:.2g}"


def classify(ratio: float, epsilon: float) -> str:
    """What a lag-k / lag-0 gradient ratio says, against the threshold epsilon."""
    if math.isnan(ratio):
        return "no gradient"
    if ratio < epsilon:
        return "vanishing"
    if ratio > 1 / epsilon:
        return "exploding"
    return "no vanishing"


def state_words(trained_steps: int | None) -> str:
    """When a model was measured: at initialisation, or after N training steps."""
    if trained_steps is None:
        return ""
    return "at initialisation" if trained_steps == 0 else f"after {trained_steps} training steps"


def notebook_html(title: str, pictures: dict, verdict: str) -> str:
    """A notebook's view: the title, the verdict and every figure inline as SVG."""
    svgs = "".join(f"<figure>{figure_svg(fig)}</figure>" for fig in pictures.values())
    return f"<div><h3>{html.escape(title)}</h3><p>{html.escape(verdict)}</p>{svgs}</div>"
