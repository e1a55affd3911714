"""The explorable as one self-contained HTML file: controls, readouts, live SVG charts, no outside file.

The page runs ``assets/mechanism.js`` (the generator, the cells, forward and
backward through time, the step Jacobians; ``assets/linalg.js`` for singular
values) on every change of a control and draws with ``bptt/plotting/assets/charts.js``.
Its starting settings come from ``ExploreSettings`` (or from the URL's hash,
``explore.html#cell=lstm&seq_len=150``, so a page can link to a given setting).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from bptt.explore.weights import (
    CELLS,
    EPSILON,
    FORGET_BIAS,
    INITS,
    INPUT_SIZE,
    MAX_HIDDEN,
    MAX_INPUT_SCALE,
    MAX_NORM,
    MAX_STEPS,
    NEGATIVE_SLOPE,
    ExploreSettings,
)
from bptt.plotting.html import asset

TITLE = "The vanishing gradient, live"
CELL_NAMES = {
    "sigmoid": "sigmoid RNN",
    "tanh": "tanh RNN",
    "relu": "ReLU RNN",
    "leaky_relu": "leaky ReLU RNN",
    "lstm": "LSTM",
    "gru": "GRU",
}
INIT_NAMES = {
    "random": "random",
    "xavier": "Xavier",
    "orthogonal": "orthogonal",
    "identity": "identity",
}
#: (setting, label, min, max, step, hint) of each slider; clip 0 means no clipping.
#: (name, label, low, high, step, hint) of every slider.
SLIDERS: tuple[tuple[str, str, float, float, float, str], ...] = (
    ("spectral_norm", "sigma_max(W_hh): spectral norm", 0.05, 6.0, 0.01, "each W_hh gate block is scaled to it"),
    ("hidden_size", "hidden units H", 1, MAX_HIDDEN, 1, ""),
    ("seq_len", "steps T", 2, MAX_STEPS, 1, ""),
    ("input_scale", "input scale", 0.0, 5.0, 0.05, "large inputs saturate sigmoid and tanh"),
    ("clip", "clipping threshold (0: off)", 0.0, 5.0, 0.05, "on ||dL/dtheta||, as bptt train --clip-norm"),
    ("lag", "lag k the sentence reads", 1, MAX_STEPS - 1, 1, ""),
    ("step", "step t of the spectrum", 0, MAX_STEPS - 1, 1, "singular values of dh_t/dh_{t-1}"),
)


def _options(names: dict[str, str], chosen: str) -> str:
    return "".join(
        f'<option value="{value}"{" selected" if value == chosen else ""}>{html.escape(label)}</option>'
        for value, label in names.items()
    )


def _slider(name: str, label: str, low: float, high: float, step: float, hint: str, value: float) -> str:
    hint_html = f'<p class="hint">{html.escape(hint)}</p>' if hint else ""
    return (
        f'<div class="field"><label for="{name}">{html.escape(label)}</label>'
        f'<output id="{name}-value" for="{name}">{value:g}</output>'
        f'<input type="range" id="{name}" name="{name}" min="{low:g}" max="{high:g}" step="{step:g}" value="{value:g}">'
        f"</div>{hint_html}"
    )


def _controls(settings: ExploreSettings) -> str:
    values = {**settings.to_dict(), "clip": settings.clip or 0.0, "step": settings.seq_len - 1}
    sliders = "".join(_slider(*spec, values[spec[0]]) for spec in SLIDERS)
    return (
        '<form id="controls" aria-label="the network" onsubmit="return false">'
        '<div class="fields">'
        f'<div class="field"><label for="cell">cell</label><select id="cell" name="cell">'
        f"{_options(CELL_NAMES, settings.cell)}</select></div>"
        f'<div class="field"><label for="init">init of W_hh</label><select id="init" name="init">'
        f"{_options(INIT_NAMES, settings.init)}</select></div>"
        f"{sliders}"
        '<div class="field"><label for="seed">seed</label>'
        f'<input type="number" id="seed" name="seed" min="0" max="4294967295" step="1" value="{settings.seed}"></div>'
        "</div>"
        '<div class="buttons"><button type="button" id="reseed">new seed</button>'
        '<button type="button" id="reset">start again</button></div></form>'
    )


READOUTS = (
    ("ratio", "dL/dh at lag k / at lag 0"),
    ("horizon", "memory horizon: first lag below epsilon"),
    ("reach", "reach: last lag at or above epsilon"),
    ("sigma", "sigma_max(W_hh) (the init's own)"),
    ("gamma_sigma", "gamma sigma_max(W_hh)"),
    ("factor", "product of the factors over k steps (mean / max)"),
    ("cell_ratio", "dL/dc at lag k / at lag 0"),
    ("grad_norm", "||dL/dtheta|| (clipping factor)"),
    ("step_sigma", "sigma_max / sigma_min of dh_t/dh_{t-1} at step t"),
)


def _how() -> str:
    return (
        "<details><summary>How it is computed</summary>"
        f"<p>One recurrent layer of H units reads T steps of a {INPUT_SIZE}-dimensional input from the zero "
        "state; the loss reads the last step only, L = v . h_{T-1}. The page runs the forward pass and "
        "backpropagation through time in float64 (JavaScript numbers), with torch.nn's cells and gate order: "
        "h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) for the plain RNNs (leaky ReLU's slope "
        f"{NEGATIVE_SLOPE:g}); the LSTM (gates i, f, g, o; forget-gate bias +{FORGET_BIAS:g}) and the GRU "
        "(r, z, n) as torch.nn.LSTM and torch.nn.GRU.</p>"
        "<ul><li>The profile is ||dL/dh_t|| by lag k = T - 1 - t; for the LSTM ||dL/dc_t|| too.</li>"
        "<li>Pascanu's bound g[0] (gamma sigma_max(W_hh))^k, gamma = 1/4 for sigmoid, 1 for tanh, ReLU and leaky "
        "ReLU: plain RNNs only; the gates, not W_hh alone, set a gated cell's decay.</li>"
        "<li>The running product: of max_i and mean_i |act'(a_t,i)| over the last k steps (plain RNNs); of the "
        "forget gate f_t (LSTM) or update gate z_t (GRU) per unit, then the mean and the largest over units.</li>"
        "<li>The singular values of every step Jacobian dh_t/dh_{t-1} (an LSTM's state is (h_t, c_t)), by "
        "Householder bidiagonalisation and the implicit-shift QR iteration, accurate to 1e-16 of the largest.</li>"
        f"<li>Memory horizon: the last lag before g[k] first falls below epsilon = {EPSILON:g} of g[0]; reach: the "
        "last lag with g[k] at or above it.</li>"
        "<li>Clipping scales the whole gradient by min(1, c / ||dL/dtheta||): every step alike.</li></ul>"
        "<p>The weights come from a small generator written in this page and in bptt (bptt.explore.weights): "
        "murmur3's 32-bit finaliser over a Weyl sequence, one stream per tensor, so a seed gives the same "
        "network here and in Python, and bptt's own layers (bptt.RNN, bptt.LSTM, bptt.GRU, recording dL/dh_t "
        "in their backward) give the same numbers to 1e-6 or better: the page is tested against them.</p>"
        "</details>"
    )


def render_explorable(settings: ExploreSettings | None = None) -> str:
    """The explorable's HTML, starting from ``settings`` (default: ``ExploreSettings()``)."""
    settings = settings or ExploreSettings()
    config = {
        "defaults": settings.to_dict(),
        "cells": CELL_NAMES,
        "limits": {
            "hidden_size": MAX_HIDDEN,
            "seq_len": MAX_STEPS,
            "spectral_norm": MAX_NORM,
            "input_scale": MAX_INPUT_SCALE,
        },
        "inits": list(INITS),
    }
    assert set(CELL_NAMES) == set(CELLS)
    readouts = "".join(
        f'<div><dt>{html.escape(label)}</dt><dd data-number="{name}" id="readout-{name}">-</dd></div>'
        for name, label in READOUTS
    )
    charts = [
        "".join(f'<div class="bptt-chart" id="chart-{name}" data-chart="{name}"></div>' for name in names)
        for names in (("profile", "factors"), ("steps", "spectrum"))
    ]
    scripts = "".join(
        f"<script>{text}</script>\n"
        for text in (
            asset("charts.js"),
            asset("linalg.js", "bptt.explore"),
            asset("mechanism.js", "bptt.explore"),
            asset("explore.js", "bptt.explore"),
        )
    )
    data = json.dumps(config, separators=(",", ":")).replace("</", "<\\/")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{TITLE}</title><style>{asset('page.css')}{asset('explore.css', 'bptt.explore')}</style></head>"
        f'<body><main><h1>{TITLE}</h1><p class="lead">A recurrent layer runs forward and backward through time '
        "in this page, in float64: change the cell, the scale of W_hh or the length, and watch the product of "
        "derivatives move.</p>"
        f'<div class="explore-layout">{_controls(settings)}<div class="results">'
        '<p id="sentence" aria-live="polite">Computing...</p>'
        f'<div class="charts">{charts[0]}</div><dl id="readouts">{readouts}</dl>'
        '<p class="status" id="status" aria-live="off"></p>'
        f'<div class="charts">{charts[1]}</div></div></div>{_how()}</main>'
        f'<script type="application/json" id="bptt-explore-config">{data}</script>\n{scripts}</body></html>\n'
    )


def write_explorable(path: str | Path, settings: ExploreSettings | None = None) -> Path:
    """Write the explorable to ``path`` (one self-contained file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_explorable(settings), encoding="utf-8")
    return path
