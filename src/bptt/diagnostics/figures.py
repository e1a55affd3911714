"""Figures of the diagnostics (matplotlib). Each function takes ``{label: Diagnosis}`` and returns a Figure.

Titles start with a fixed text (``TITLES``), so a page can be checked for every figure,
and end with when the models were measured: "at initialisation" or "after N training
steps" (``training_state``). Every series has its own colour, grouped by family (plain
RNNs, remedies, gated cells; ``families`` names them, else the cell and the label
decide), and every legend sits outside the axes. On a log axis, exact zeros are marked
on the bottom edge ("vanished to 0") and reference lines (Pascanu's bound) are
clipped to the data's range (``bptt.plotting.axes``). Figures are laid out to fit
their own canvas (constrained layout): saved with a plain ``savefig``, they keep
their legends and labels. The profile of more models than one panel reads well is
drawn one panel per family, and an LSTM's dL/dc_t is drawn beside its dL/dh_t.

Figures are built without pyplot, so importing this module sets no backend and a
notebook's own stays as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bptt.diagnostics.curves import moving_mean
from bptt.plotting.axes import VANISHED, ZERO_MARKER, fit_to_data, log_axis_values, plot_log, plot_reference
from bptt.plotting.style import SeriesStyle, family_of_label, family_panels, legend_outside, series_styles

if TYPE_CHECKING:
    from bptt.diagnostics.diagnosis import Diagnosis
    from bptt.diagnostics.history import TrainingHistory
    from bptt.diagnostics.own import ModuleDiagnosis

TITLES = {
    "profile": "Gradient profile: batch-mean ||dL/dh_t|| by lag",
    "contribution": "Input contribution: batch-mean ||dL/dx_t|| by position",
    "updates": "Share of the W_hh update by step",
    "jacobian": "Jacobian chain: the step Jacobians and the norm of their product",
    "layers": "Per-layer gradient norms",
    "history": "Training history",
}
BOUND_STYLE: dict[str, Any] = {"linestyle": ":", "linewidth": 1.0, "alpha": 0.8}


def training_state(diagnoses: Mapping[str, Any]) -> str:
    """When the models were measured: "at initialisation", "after N training steps", or "" when not known."""
    known = {getattr(d, "trained_steps", None) for d in diagnoses.values()}
    steps = {s for s in known if s is not None}
    if not known or len(steps) < len(known):
        return ""
    if steps == {0}:
        return "at initialisation"
    if len(steps) == 1:
        return f"after {steps.pop()} training steps"
    return f"after {min(steps)}-{max(steps)} training steps"


def _title(name: str, diagnoses: Mapping[str, Any]) -> str:
    state = training_state(diagnoses)
    return f"{TITLES[name]}, {state}" if state else TITLES[name]


def _whole_steps(*axes: Axes) -> None:
    """Steps and lags are whole numbers: no tick at 2.5."""
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _families(diagnoses: Mapping[str, Any], families: Mapping[str, str] | None) -> dict[str, str]:
    families = families or {}

    def family(label: str, d: Any) -> str:
        if label in families:
            return families[label]
        return "gated" if getattr(d, "cell", "rnn") in ("lstm", "gru") else family_of_label(label)

    return {label: family(label, d) for label, d in diagnoses.items()}


def _styles(diagnoses: Mapping[str, Any], families: Mapping[str, str] | None) -> dict[str, SeriesStyle]:
    return series_styles(_families(diagnoses, families))


def _relative(row: Any) -> list[float]:
    first = float(row[0])
    return (row / first if first > 0 else row).tolist()


def _profile_panel(ax: Axes, diagnoses: Mapping[str, Diagnosis], styles: dict[str, SeriesStyle]) -> list[list[float]]:
    """One panel of the profile figure: each model's g[k] / g[0] (an LSTM's dL/dc_t dashed beside it)
    and its bound; returns the series drawn, for the shared axis limits."""
    shown, bounded = [], False
    for label, d in diagnoses.items():
        lags = list(range(d.seq_len))
        relative = _relative(d.profile.hidden[-1])
        plot_log(ax, lags, relative, label, **styles[label].line())
        shown.append(relative)
        if d.profile.cell is not None:
            cell = _relative(d.profile.cell[-1])
            style = {**styles[label].line(), "linestyle": (0, (1, 1.5)), "linewidth": 1.6}
            plot_log(ax, lags, cell, f"{label}: dL/dc_t (cell state)", **style)
            shown.append(cell)
        if d.chain.bound is not None:
            bound = [1.0, *d.chain.bound[: d.seq_len - 1].tolist()]
            plot_reference(ax, lags, bound, color=styles[label].color, gid=styles[label].gid, **BOUND_STYLE)
            bounded = True
    epsilon = next(iter(diagnoses.values())).epsilon
    ax.axhline(epsilon, color="grey", linewidth=0.8, linestyle="-.", label=f"epsilon = {epsilon:g} (memory horizon)")
    if bounded:
        ax.plot([], [], color="grey", label="dotted: bound (gamma sigma_max(W_hh))^k", **BOUND_STYLE)
    ax.set_ylabel("||dL/dh_{T-1-k}|| / ||dL/dh_{T-1}|| (ratio)")
    _whole_steps(ax)
    legend_outside(ax)
    return [*shown, [epsilon]]


def profile_figure(diagnoses: Mapping[str, Diagnosis], families: Mapping[str, str] | None = None) -> Figure:
    """g[k] / g[0] of the top layer against lag k, log scale; dotted: Pascanu's bound (gamma sigma_max)^k;
    an LSTM's ||dL/dc_t|| / ||dL/dc_{T-1}|| dashed in its colour. More models than ``PANEL_LIMIT``: one
    panel per family, on shared axes."""
    kinds = _families(diagnoses, families)
    styles = series_styles(kinds)
    panels = family_panels(kinds)
    fig = Figure(figsize=(9.5, 4.4 if len(panels) == 1 else 0.6 + 2.9 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    shown = []
    for ax, (name, labels) in zip(axes, panels):
        ax.set_yscale("log")
        shown += _profile_panel(ax, {label: diagnoses[label] for label in labels}, styles)
        if name:
            ax.set_title(name, fontsize=10, loc="left")
    fit_to_data(axes[0], shown)
    axes[-1].set_xlabel("lag k = T - 1 - t (steps back from the loss)")
    if len(panels) == 1:
        axes[0].set_title(_title("profile", diagnoses), fontsize=10)
    else:
        fig.suptitle(_title("profile", diagnoses), fontsize=10)
    return fig


def contribution_figure(
    diagnoses: Mapping[str, Diagnosis | ModuleDiagnosis], families: Mapping[str, str] | None = None
) -> Figure:
    """u[t] / max_t u[t] against position t, log scale."""
    fig = Figure(figsize=(9.5, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.set_yscale("log")
    styles = _styles(diagnoses, families)
    shown = []
    for label, d in diagnoses.items():
        top = float(d.contribution.max())
        relative = (d.contribution / top if top > 0 else d.contribution).tolist()
        plot_log(ax, list(range(d.seq_len)), relative, label, **styles[label].line())
        shown.append(relative)
    fit_to_data(ax, shown)
    ax.set_xlabel("position t in the sequence (step)")
    ax.set_ylabel("||dL/dx_t|| / max_t ||dL/dx_t|| (ratio)")
    ax.set_title(_title("contribution", diagnoses), fontsize=10)
    _whole_steps(ax)
    legend_outside(ax)
    return fig


def update_figure(diagnoses: Mapping[str, Diagnosis], families: Mapping[str, str] | None = None) -> Figure:
    """Left: ||delta_t^T h_{t-1}||_F by lag (log). Right: the share of the W_hh update from the last k steps.

    The first step's term is left out of the left panel: with h_{-1} = 0 it is zero by construction.
    """
    fig = Figure(figsize=(11.5, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.set_yscale("log")
    styles = _styles(diagnoses, families)
    shown = []
    for label, d in diagnoses.items():
        terms = d.updates.weight_hh[-1].flip(0)  # by lag; the last entry is step 0
        plot_log(left, list(range(d.seq_len - 1)), terms[:-1].tolist(), label, **styles[label].line())
        shown.append(terms[:-1].tolist())
        total = float(terms.sum())
        if total > 0:
            right.plot(range(1, d.seq_len + 1), (terms.cumsum(0) / total).tolist(), **styles[label].line())
    fit_to_data(left, shown)
    left.set_xlabel("lag k (steps back from the loss)")
    left.set_ylabel("||delta_t^T h_{t-1}||_F (loss per unit of W_hh)")
    right.set_xlabel("k (last steps counted)")
    right.set_ylabel("share of ||dL/dW_hh|| terms (fraction)")
    right.set_ylim(0, 1.02)
    fig.suptitle(_title("updates", diagnoses), fontsize=10)
    _whole_steps(left, right)
    legend_outside(fig, right)
    return fig


def jacobian_figure(diagnoses: Mapping[str, Diagnosis], families: Mapping[str, str] | None = None) -> Figure:
    """Left: the largest singular value of J_t by step. Right: ||P_k||_2 against Pascanu's bound (dotted)."""
    fig = Figure(figsize=(11.5, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        ax.set_yscale("log")
    styles = _styles(diagnoses, families)
    steps_shown, products_shown = [], []
    bounded = False
    for label, d in diagnoses.items():
        largest = d.chain.singular_values[:, 0].tolist()
        plot_log(left, list(range(len(largest))), largest, label, **styles[label].line())
        steps_shown.append(largest)
        lags = list(range(1, len(d.chain.product_norm) + 1))
        products = d.chain.product_norm.tolist()
        plot_log(right, lags, products, label, **styles[label].line())
        products_shown.append(products)
        if d.chain.bound is not None:
            plot_reference(
                right, lags, d.chain.bound.tolist(), color=styles[label].color, gid=styles[label].gid, **BOUND_STYLE
            )
            bounded = True
    left.axhline(1.0, color="grey", linewidth=0.8, linestyle="-.", label="1: a step neither shrinks nor grows")
    if bounded:
        right.plot([], [], color="grey", label="dotted: bound (gamma sigma_max(W_hh))^k", **BOUND_STYLE)
    fit_to_data(left, [*steps_shown, [1.0]])
    fit_to_data(right, [*products_shown, [1.0]])
    left.set_xlabel("step t")
    left.set_ylabel("sigma_max(dh_t/dh_{t-1}) (gain per step)")
    right.set_xlabel("k (steps multiplied)")
    right.set_ylabel("||J_{T-1} ... J_{T-k}||_2 (gain over k steps)")
    fig.suptitle(_title("jacobian", diagnoses), fontsize=10)
    _whole_steps(left, right)
    legend_outside(fig, right)
    return fig


def layers_figure(diagnoses: Mapping[str, Diagnosis]) -> Figure:
    """||dL/dW_ih^{(l)}||_F for each layer l (0 = nearest the input), one group of bars per model."""
    fig = Figure(figsize=(8.5, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.set_yscale("log")
    labels = list(diagnoses)
    layers = max(d.layers.weight_ih.shape[0] for d in diagnoses.values())
    width = 0.8 / layers
    colours = series_styles({f"layer {layer}": "plain" for layer in range(layers)})
    shown = []
    for index, label in enumerate(labels):
        norms = diagnoses[label].layers.weight_ih.tolist()
        shown.append(norms)
        for layer, value in enumerate(norms):
            name = f"layer {layer}"
            x = index + layer * width
            if value > 0:
                ax.bar(x, value, width, color=colours[name].color, label=name if index == 0 else None)
            else:
                ax.plot(
                    [x],
                    [0.015],
                    ZERO_MARKER,
                    color=colours[name].color,
                    transform=ax.get_xaxis_transform(),
                    clip_on=False,
                    label=f"{name} ({ZERO_MARKER} {VANISHED})",
                )
    fit_to_data(ax, shown, margin=3.0)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, fontsize=8)
    ax.set_ylabel("||dL/dW_ih^(l)||_F (loss per unit of weight)")
    ax.set_title(_title("layers", diagnoses), fontsize=10)
    legend_outside(ax)
    return fig


def diagnosis_figures(
    diagnoses: Mapping[str, Diagnosis], families: Mapping[str, str] | None = None
) -> dict[str, Figure]:
    """Every figure of a full diagnosis, by name; the per-layer chart only when some model has stacked layers."""
    pictures = {
        "profile": profile_figure(diagnoses, families),
        "contribution": contribution_figure(diagnoses, families),
        "updates": update_figure(diagnoses, families),
        "jacobian": jacobian_figure(diagnoses, families),
    }
    stacked = {label: d for label, d in diagnoses.items() if d.layers.weight_ih.shape[0] > 1}
    if stacked:
        pictures["layers"] = layers_figure(stacked)
    return pictures


def history_figure(history: TrainingHistory, label: str = "") -> Figure:
    """Left: the loss (moving mean) with the baseline band. Right: ||g|| per step, skipped steps marked."""
    fig = Figure(figsize=(11.5, 4.0), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(history.steps, moving_mean(history.loss), label=label or "training loss")
    band = 0.05 * history.baseline
    left.axhspan(history.baseline - band, history.baseline + band, color="grey", alpha=0.2, label="baseline +-5 %")
    left.set_xlabel("step")
    left.set_ylabel("training loss (moving mean of 20 steps)")
    right.semilogy(history.steps, log_axis_values(history.grad_norm), color="#1f4e9c", label="||g||_2")
    for step in history.nan_events:
        right.axvline(step, color="red", alpha=0.3, linewidth=0.8)
    if history.nan_events:
        right.plot([], [], color="red", alpha=0.3, label="NaN/inf step")
    right.set_xlabel("step")
    right.set_ylabel("||g||_2 before clipping (gradient norm)")
    steps = history.steps[-1] if history.steps else 0
    fig.suptitle(f"{TITLES['history']}, {steps} training steps", fontsize=10)
    legend_outside(fig, right)
    return fig
