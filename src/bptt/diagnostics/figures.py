"""Figures of the diagnostics (matplotlib). Each function takes ``{label: Diagnosis}`` and returns a Figure.

Titles are fixed (``TITLES``) so a page can be checked for every figure. Every log axis
leaves exact zeros and non-finite values off (``bptt.report.axes.log_axis_values``).
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bptt.diagnostics.diagnosis import Diagnosis, ModuleDiagnosis  # noqa: E402
from bptt.diagnostics.history import TrainingHistory, moving_mean  # noqa: E402
from bptt.report.axes import log_axis_values  # noqa: E402

TITLES = {
    "profile": "Gradient profile: batch-mean ||dL/dh_t|| by lag",
    "contribution": "Input contribution: batch-mean ||dL/dx_t|| by position",
    "updates": "Share of the W_hh update by step",
    "jacobian": "Jacobian chain: singular values and the norm of their product",
    "layers": "Per-layer gradient norms",
    "history": "Training history",
}

def profile_figure(diagnoses: Mapping[str, Diagnosis]) -> Figure:
    """g[k] / g[0] of the top layer against lag k, log scale; dashed: Pascanu's bound (gamma sigma_max)^k."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for label, d in diagnoses.items():
        row = d.profile.hidden[-1]
        first = float(row[0])
        relative = row / first if first > 0 else row
        (line,) = ax.semilogy(range(d.seq_len), log_axis_values(relative), label=label)
        if d.chain.bound is not None:
            bound = torch.cat([torch.ones(1, dtype=torch.float64), d.chain.bound[: d.seq_len - 1]])
            ax.semilogy(range(d.seq_len), log_axis_values(bound), "--", color=line.get_color(), alpha=0.6, linewidth=1)
    ax.axhline(next(iter(diagnoses.values())).epsilon, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("lag k = T - 1 - t (steps back from the loss)")
    ax.set_ylabel("||dL/dh_{T-1-k}|| / ||dL/dh_{T-1}||")
    ax.set_title(TITLES["profile"] + "\n(dashed: bound (gamma sigma_max(W_hh))^k; dotted: epsilon)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    return fig


def contribution_figure(diagnoses: Mapping[str, Diagnosis | ModuleDiagnosis]) -> Figure:
    """u[t] / max_t u[t] against position t, log scale."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for label, d in diagnoses.items():
        top = float(d.contribution.max())
        ax.semilogy(range(d.seq_len), log_axis_values(d.contribution / top if top > 0 else d.contribution), label=label)
    ax.set_xlabel("position t in the sequence")
    ax.set_ylabel("||dL/dx_t|| / max_t ||dL/dx_t||")
    ax.set_title(TITLES["contribution"], fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    return fig


def update_figure(diagnoses: Mapping[str, Diagnosis]) -> Figure:
    """Left: ||delta_t^T h_{t-1}||_F by lag (log). Right: the share of the W_hh update from the last k steps."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0))
    for label, d in diagnoses.items():
        terms = d.updates.weight_hh[-1].flip(0)  # by lag
        (line,) = left.semilogy(range(d.seq_len), log_axis_values(terms), label=label)
        total = float(terms.sum())
        if total > 0:
            right.plot(range(1, d.seq_len + 1), (terms.cumsum(0) / total).tolist(), color=line.get_color())
    left.set_xlabel("lag k")
    left.set_ylabel("||delta_t^T h_{t-1}||_F")
    right.set_xlabel("k (last steps counted)")
    right.set_ylabel("share of the W_hh update")
    right.set_ylim(0, 1.02)
    left.legend(fontsize=7)
    fig.suptitle(TITLES["updates"], fontsize=10)
    return fig


def jacobian_figure(diagnoses: Mapping[str, Diagnosis]) -> Figure:
    """Left: largest and smallest singular value of J_t by step. Right: ||P_k||_2 against the bound."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0))
    for label, d in diagnoses.items():
        sv = d.chain.singular_values
        (line,) = left.semilogy(range(sv.shape[0]), log_axis_values(sv[:, 0]), label=f"{label} max")
        left.semilogy(range(sv.shape[0]), log_axis_values(sv[:, -1]), ":", color=line.get_color())
        lags = range(1, len(d.chain.product_norm) + 1)
        right.semilogy(lags, log_axis_values(d.chain.product_norm), color=line.get_color(), label=label)
        if d.chain.bound is not None:
            right.semilogy(lags, log_axis_values(d.chain.bound), "--", color=line.get_color(), alpha=0.6, linewidth=1)
    left.set_xlabel("step t")
    left.set_ylabel("singular values of dh_t/dh_{t-1} (solid max, dotted min)")
    right.set_xlabel("k")
    right.set_ylabel("||J_{T-1} ... J_{T-k}||_2 (dashed: bound)")
    right.legend(fontsize=7)
    fig.suptitle(TITLES["jacobian"], fontsize=10)
    return fig


def layers_figure(diagnoses: Mapping[str, Diagnosis]) -> Figure:
    """||dL/dW_ih^{(l)}||_F for each layer l (0 = nearest the input), one group of bars per model."""
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    labels = list(diagnoses)
    width = 0.8 / max(1, max(d.layers.weight_ih.shape[0] for d in diagnoses.values()))
    for index, label in enumerate(labels):
        norms = diagnoses[label].layers.weight_ih
        for layer, value in enumerate(norms.tolist()):
            ax.bar(index + layer * width, log_axis_values([value])[0], width, color=f"C{layer}",
                   label=f"layer {layer}" if index == 0 else None)
    ax.set_yscale("log")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, fontsize=8)
    ax.set_ylabel("||dL/dW_ih^(l)||_F")
    ax.set_title(TITLES["layers"], fontsize=10)
    ax.legend(fontsize=7)
    return fig


def history_figure(history: TrainingHistory, label: str = "") -> Figure:
    """Left: the loss (moving mean) with the baseline band. Right: ||g|| per step, skipped steps marked."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0))
    left.plot(history.steps, moving_mean(history.loss), label=label or "training loss")
    band = 0.05 * history.baseline
    left.axhspan(history.baseline - band, history.baseline + band, color="grey", alpha=0.2, label="baseline +-5 %")
    left.set_xlabel("step")
    left.set_ylabel("training loss (moving mean)")
    left.legend(fontsize=7)
    right.semilogy(history.steps, log_axis_values(history.grad_norm))
    for step in history.nan_events:
        right.axvline(step, color="red", alpha=0.3, linewidth=0.8)
    right.set_xlabel("step")
    right.set_ylabel("||g||_2 before clipping (red: NaN/inf)")
    fig.suptitle(TITLES["history"], fontsize=10)
    return fig
