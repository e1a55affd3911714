"""The demo's page: one self-contained HTML file with the table, every figure and the six impacts."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bptt.demo.experiment import DELAYS, HIGHLIGHT, SEED_MODELS, DemoResult, format_accuracy  # noqa: E402
from bptt.diagnostics import figures  # noqa: E402
from bptt.diagnostics.history import moving_mean  # noqa: E402
from bptt.report.html import Section, Table, write_page  # noqa: E402

ACCURACY_TITLE = "Test accuracy at a short and a long delay"
LOSS_TITLE = "Training loss at the long delay"

#: Every figure title the page holds, in order.
PAGE_FIGURES = (ACCURACY_TITLE, LOSS_TITLE, figures.TITLES["profile"], figures.TITLES["contribution"],
                figures.TITLES["updates"], figures.TITLES["jacobian"], figures.TITLES["layers"])


def _steps(value: int | None) -> str:
    return "never" if value is None else str(value)


def _sci(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1e}"


def table_rows(result: DemoResult) -> list[list[str]]:
    """The demo's one table: accuracy short/long, memory horizon, gradient ratio, steps to converge."""
    rows = []
    for m in result.models:
        d = m.diagnosis
        horizon = d.horizon[-1]
        rows.append([
            m.label, format_accuracy(m.accuracy("short")), format_accuracy(m.accuracy("long")),
            f"{horizon}" + ("+" if horizon == d.seq_len - 1 else ""), _sci(d.gradient_ratio),
            f"{_steps(m.steps_to_converge('short'))} / {_steps(m.steps_to_converge('long'))}",
        ])
    return rows


TABLE_HEADER = ("model", f"accuracy, delay {DELAYS['short']}", f"accuracy, delay {DELAYS['long']}",
                "memory horizon (steps)", "dL/dh ratio lag 50 / lag 0", "steps to converge (short / long)")


def accuracy_figure(result: DemoResult) -> Figure:
    fig, ax = plt.subplots(figsize=(9, 4.0))
    labels = [m.label for m in result.models]
    for offset, delay in ((-0.2, "short"), (0.2, "long")):
        values = [100 * (m.accuracy(delay) or 0.0) for m in result.models]
        ax.bar([i + offset for i in range(len(labels))], values, 0.4, label=f"delay {DELAYS[delay]}")
    ax.axhline(50, color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(ACCURACY_TITLE, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def loss_figure(result: DemoResult) -> Figure:
    fig, ax = plt.subplots(figsize=(9, 4.0))
    for m in result.models:
        losses = list(m.outcomes["long"].losses)
        ax.plot(range(1, len(losses) + 1), moving_mean(losses), label=m.label, linewidth=1)
    baseline = result.models[0].outcomes["long"].final.baseline
    ax.axhline(baseline, color="grey", linestyle=":", label="memoryless baseline ln 2")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (moving mean of 20)")
    ax.set_title(LOSS_TITLE, fontsize=10)
    ax.legend(fontsize=7, ncol=3)
    return fig


def impacts_table(result: DemoResult) -> Table:
    impacts = result.impacts()
    pct = lambda v: "n/a" if v is None or math.isnan(v) else f"{100 * v:.0f} %"  # noqa: E731
    models = result.by_label()
    pick = lambda key, fmt: "; ".join(f"{label}: {fmt(impacts[key][label])}" for label in HIGHLIGHT if label in models)  # noqa: E731
    rows = [
        ["slow convergence", "steps until the loss is below half the baseline (short / long)",
         pick("slow_convergence", lambda v: f"{_steps(v[0])} / {_steps(v[1])}")],
        ["long-term dependencies", f"accuracy at delay {DELAYS['short']} / {DELAYS['long']}",
         pick("long_term_dependencies", lambda v: f"{format_accuracy(v[0])} / {format_accuracy(v[1])}")],
        ["local minima", "fraction of seeds stuck at the baseline (long delay)",
         "; ".join(f"{k}: {pct(v)} of {len(models[k].seed_outcomes) + 1}" for k, v in impacts["local_minima"].items())],
        ["instability", "accuracy across seeds (mean, range); output change per relative input change",
         "; ".join(f"{k}: {pct(s.mean)} ({pct(s.low)}-{pct(s.high)})" for k, s in impacts["seed_spread"].items())
         + "; sensitivity " + pick("sensitivity", lambda v: f"{v:.2g}")],
        ["overemphasis on recent data", "share of the input contribution from the last 10 inputs",
         pick("recent_input_share", pct)],
        ["difficulty with depth", "||dL/dW_ih|| of layer 0 / layer 2 (3 layers)",
         "; ".join(f"{k}: {_sci(v)}" for k, v in impacts["depth_bottom_to_top"].items())],
    ]
    return Table(("impact", "measured as", "result"), rows, "The six impacts of the vanishing gradient, measured")


def write_demo_page(result: DemoResult, path: str | Path) -> Path:
    """Write the page; every figure inline as SVG, no outside file."""
    models = result.by_label()
    long = {m.label: m.diagnosis for m in result.models}
    some = {label: long[label] for label in HIGHLIGHT if label in long}
    rnn = {label: long[label] for label in ("sigmoid RNN", "tanh RNN", "ReLU RNN", "LSTM (forget bias 5)", "GRU")
           if label in long}
    deep = {label: long[label] for label in ("tanh RNN x3", "tanh RNN x3 + residual") if label in long}
    first = result.models[0].diagnosis
    hidden = result.models[0].outcomes["long"].config.hidden_size
    story = Section("The story", [
        f"Delayed sentiment: the label is the polarity of one word, followed by {DELAYS['short']} or "
        f"{DELAYS['long']} neutral words. Chance is 50 %. Every model has {hidden} "
        "hidden units and is trained with Adam for the same number of steps; each model trained at the long delay is "
        "then measured on a fixed batch.",
        Table(TABLE_HEADER, table_rows(result), "Accuracy, memory horizon and gradient ratio (measured after training "
              "at the long delay; '+' = the whole sequence)"),
        accuracy_figure(result), loss_figure(result),
    ])
    gradient = Section("Why: the gradient vanishes with lag", [
        f"Sigmoid RNN, after training: {first.verdict()}.",
        figures.profile_figure(long),
        "The loss's gradient with respect to the inputs, by position: the sigmoid and tanh RNNs only feel the last "
        "few words; attention, LSTM and GRU reach back to the polar word.",
        figures.contribution_figure(some),
        "W_hh is shared across time, so its gradient is a sum of one term per step. For the plain RNNs almost all of "
        "it comes from the last few steps: the early words barely update the weights.",
        figures.update_figure(some),
        "Every backward step multiplies by the step Jacobian dh_t/dh_{t-1} = diag(act'(a_t)) W_hh. With "
        "|sigmoid'| <= 1/4, its norm stays below 1/4 sigma_max(W_hh) and the product shrinks geometrically.",
        figures.jacobian_figure(rnn),
        "Stacked layers: the gradient reaching the first layer, with and without residual connections.",
        figures.layers_figure(deep) if deep else "",
    ])
    impacts = Section("The six impacts", [impacts_table(result)])
    verdicts = Section("Verdicts", [f"{label}: {d.verdict()}" for label, d in long.items()])
    lead = (f"bptt demo: {len(result.models)} models x 2 delays"
            f" + {sum(len(m.seed_outcomes) for m in models.values())} extra seeds"
            f" ({', '.join(SEED_MODELS)}), in {result.seconds:.0f} s.")
    # Text as <text> elements: a smaller page whose titles and labels are searchable.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        return write_page(path, "The vanishing gradient, shown", [story, gradient, impacts, verdicts], lead)
