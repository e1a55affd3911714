"""The demo's page: one self-contained HTML file with the table, every figure, the story and the six impacts."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from bptt.demo.experiment import HIGHLIGHT, SEED_MODELS, DemoResult, ModelResult, format_accuracy
from bptt.demo.story import remedy_paragraphs
from bptt.diagnostics import figures
from bptt.diagnostics.diagnosis import Diagnosis
from bptt.diagnostics.history import moving_mean
from bptt.plotting.axes import data_limits
from bptt.plotting.html import Link, Section, Table, write_page
from bptt.plotting.style import legend_outside, series_styles

ACCURACY_TITLE = "Test accuracy at a short and a long delay"
LOSS_TITLE = "Training loss at the long delay"
IMPACTS_TITLE = "The six impacts of the vanishing gradient, measured"
JACOBIAN_MODELS = ("sigmoid RNN", "tanh RNN", "IRNN (ReLU, identity init)", "LSTM (forget bias 5)", "GRU")
DEEP_MODELS = ("tanh RNN x3", "tanh RNN x3 + residual")

#: Every figure title the page holds, in order.
PAGE_FIGURES = (
    ACCURACY_TITLE,
    LOSS_TITLE,
    figures.TITLES["profile"],
    figures.TITLES["contribution"],
    figures.TITLES["updates"],
    figures.TITLES["jacobian"],
    figures.TITLES["layers"],
)


def _steps(value: int | None) -> str:
    return "never" if value is None else str(value)


def _sci(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1e}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.0f} %"


def title(result: DemoResult) -> str:
    return "The vanishing gradient, shown" + (" (quick version)" if result.settings.quick_version else "")


def table_header(result: DemoResult) -> tuple[str, ...]:
    short, long = result.settings.delays["short"], result.settings.delays["long"]
    lag = result.models[0].diagnosis.lag_used if result.models else long
    return (
        "model",
        f"accuracy, delay {short}",
        f"accuracy, delay {long}",
        "memory horizon (steps)",
        f"dL/dh ratio lag {lag} / lag 0",
        "steps to converge (short / long)",
    )


def table_row(m: ModelResult) -> list[str]:
    d = m.diagnosis
    horizon = d.horizon[-1]
    return [
        m.label,
        format_accuracy(m.accuracy("short")),
        format_accuracy(m.accuracy("long")),
        f"{horizon}" + ("+" if horizon == d.seq_len - 1 else ""),
        _sci(d.gradient_ratio),
        f"{_steps(m.steps_to_converge('short'))} / {_steps(m.steps_to_converge('long'))}",
    ]


def table_rows(result: DemoResult) -> list[list[str]]:
    """The demo's one table: accuracy short/long, memory horizon, gradient ratio, steps to converge."""
    return [table_row(m) for m in result.models]


def accuracy_figure(result: DemoResult) -> Figure:
    fig = Figure(figsize=(10.5, 4.2))
    ax = fig.subplots()
    labels = [m.label for m in result.models]
    shades = {"short": "#9ecae1", "long": "#1f4e9c"}
    for offset, delay in ((-0.2, "short"), (0.2, "long")):
        values = [100 * (m.accuracy(delay) or 0.0) for m in result.models]
        ax.bar(
            [i + offset for i in range(len(labels))],
            values,
            0.4,
            color=shades[delay],
            label=f"delay {result.settings.delays[delay]} words",
        )
    ax.axhline(50, color="grey", linestyle=":", linewidth=1, label="chance (50 %)")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"{ACCURACY_TITLE}, after training", fontsize=10)
    legend_outside(ax)
    return fig


def loss_figure(result: DemoResult) -> Figure:
    fig = Figure(figsize=(10.5, 4.2))
    ax = fig.subplots()
    styles = series_styles(result.families())
    for m in result.models:
        losses = list(m.outcomes["long"].losses)
        ax.plot(range(1, len(losses) + 1), moving_mean(losses), label=m.label, **styles[m.label].line())
    baseline = result.models[0].outcomes["long"].final.baseline
    ax.axhline(baseline, color="grey", linestyle=":", label="memoryless baseline ln 2")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss, cross-entropy in nats (moving mean of 20)")
    ax.set_title(f"{LOSS_TITLE} ({result.settings.delays['long']} words)", fontsize=10)
    legend_outside(ax)
    return fig


def jacobian_text(diagnoses: dict[str, Diagnosis]) -> list[str]:
    """What the Jacobian figure shows, read from the same numbers the figure draws."""
    lines = [
        "Every backward step multiplies the gradient by the step Jacobian J_t = dh_t/dh_{t-1} = "
        "diag(act'(a_t)) W_hh, so ||J_t||_2 <= gamma sigma_max(W_hh) (gamma = 1/4 for sigmoid, 1 for tanh and "
        "ReLU) and the product of k steps is at most (gamma sigma_max(W_hh))^k: the dotted bound on the right. "
        "Pascanu et al.'s condition is sufficient: when gamma sigma_max(W_hh) < 1 the bound shrinks and the "
        "gradient must vanish; above 1 the bound grows and guarantees nothing either way."
    ]
    top = data_limits([d.chain.product_norm.tolist() for d in diagnoses.values()] + [[1.0]])
    for label, d in diagnoses.items():
        chain = d.chain
        k = min(d.lag_used, len(chain.product_norm))
        product = float(chain.product_norm[k - 1]) if k > 0 else math.nan
        share, median = chain.shrinking_share(), float(chain.step_gains.median())
        measured = (
            f"the measured product (solid) is {_sci(product)} at k = {k}; sigma_max(J_t) < 1 at "
            f"{100 * share:.0f} % of steps (median {median:.2g}, left)"
        )
        condition = chain.condition
        if not condition.applies:
            lines.append(
                f"{label}: a gated cell, so no bound is drawn (its gates, not W_hh alone, set J_t); {measured}."
            )
            continue
        slope = condition.gamma * condition.sigma_max
        if condition.vanishing_guaranteed:
            reading = (
                f"gamma sigma_max(W_hh) = {slope:.2g} < 1, so the bound shrinks with k and the gradient must vanish"
            )
        else:
            leaves = top is not None and chain.bound is not None and float(chain.bound.max()) > top[1]
            reading = (
                f"gamma sigma_max(W_hh) = {slope:.2g} >= 1, so the bound grows with k"
                + (" (its dotted line leaves the top of the axis)" if leaves else "")
                + " and guarantees nothing"
            )
            if product < d.epsilon:
                reading += (
                    "; yet the product shrinks: most single steps already shrink every direction (act'(a_t) "
                    "far below gamma)"
                    if share >= 0.5
                    else "; yet the product shrinks although most single steps can grow some direction: saturated "
                    "units (act' near 0) pass almost nothing back, so what one step grows, later steps shrink"
                )
        lines.append(f"{label}: sigma_max(W_hh) = {condition.sigma_max:.3g}; {reading}; {measured}.")
    return lines


def impacts_tables(result: DemoResult) -> list[Table]:
    """The six impacts as tables: per model, across seeds, and through depth."""
    impacts = result.impacts()
    short, long = result.settings.delays["short"], result.settings.delays["long"]
    per_model = Table(
        (
            "model",
            f"slow convergence: steps to half the baseline (delay {short} / {long})",
            f"long-term dependencies: accuracy (delay {short} / {long})",
            "overemphasis on recent data: input contribution from the last 10 words",
            "instability: output change per relative input change",
        ),
        [
            [
                m.label,
                "{} / {}".format(*(_steps(v) for v in impacts["slow_convergence"][m.label])),
                "{} / {}".format(*(format_accuracy(v) for v in impacts["long_term_dependencies"][m.label])),
                _pct(impacts["recent_input_share"][m.label]),
                f"{impacts['sensitivity'][m.label]:.2g}",
            ]
            for m in result.models
        ],
        IMPACTS_TITLE,
    )
    models = result.by_label()
    seeds = Table(
        ("model", "seeds", "local minima: seeds stuck at the baseline", "instability: accuracy mean (min-max)"),
        [
            [
                label,
                str(len(models[label].seed_outcomes) + 1),
                _pct(impacts["local_minima"][label]),
                f"{_pct(spread.mean)} ({_pct(spread.low)}-{_pct(spread.high)})",
            ]
            for label, spread in impacts["seed_spread"].items()
        ],
        f"Across seeds at delay {long}",
    )
    tables = [per_model, seeds]
    if impacts["depth_bottom_to_top"]:
        tables.append(
            Table(
                ("model", "difficulty with depth: ||dL/dW_ih|| of layer 0 / layer 2"),
                [[label, _sci(v)] for label, v in impacts["depth_bottom_to_top"].items()],
                "Through depth (3 stacked layers)",
            )
        )
    return tables


def write_demo_page(result: DemoResult, path: str | Path) -> Path:
    """Write the page; every figure inline as SVG, no outside file."""
    families = result.families()
    long = {m.label: m.diagnosis for m in result.models}
    some = {label: long[label] for label in HIGHLIGHT if label in long}
    chain = {label: long[label] for label in JACOBIAN_MODELS if label in long}
    deep = {label: long[label] for label in DEEP_MODELS if label in long}
    first = result.models[0].diagnosis
    config = result.models[0].outcomes["long"].config
    short_delay, long_delay = result.settings.delays["short"], result.settings.delays["long"]
    story = Section(
        "The story",
        [
            f"Delayed sentiment: the label is the polarity of one word, followed by {short_delay} or {long_delay} "
            f"neutral words. Chance is 50 %. Every model has {config.hidden_size} hidden units and is trained with Adam "
            "for the same number of steps; each model trained at the long delay is then measured on a fixed batch.",
            Table(
                table_header(result),
                table_rows(result),
                f"Accuracy, memory horizon and gradient ratio (measured after training at delay {long_delay}; "
                "'+' = the whole sequence)",
            ),
            accuracy_figure(result),
            loss_figure(result),
        ],
    )
    gradient = Section(
        "Why: the gradient vanishes with lag",
        [
            f"{result.models[0].label}, {first.state}: {first.verdict()}.",
            figures.profile_figure(long, families),
            "The loss's gradient with respect to the inputs, by position: the plain RNNs only feel the last few words; "
            "models that reach back to the polar word feel it too.",
            figures.contribution_figure(some, families),
            "W_hh is shared across time, so its gradient is a sum of one term per step. For the plain RNNs almost all of "
            "it comes from the last few steps: the early words barely update the weights.",
            figures.update_figure(some, families),
            *jacobian_text(chain),
            figures.jacobian_figure(chain, families),
        ],
    )
    if deep:
        gradient.add("Stacked layers: the gradient reaching the first layer, with and without residual connections.")
        gradient.add(figures.layers_figure(deep))
    remedies = Section(
        "What each remedy did", [f"{heading}. {text}" for heading, text in remedy_paragraphs(result).items()]
    )
    impacts = Section("The six impacts", impacts_tables(result))
    verdicts = Section(
        "Verdicts",
        [
            Table(
                ("model", "verdict"),
                [[label, d.verdict()] for label, d in long.items()],
                f"Every model after training at delay {long_delay}",
            )
        ],
    )
    extra = sum(len(m.seed_outcomes) for m in result.models)
    lead = (
        f"bptt demo ({result.settings.name} version): {len(result.models)} models x 2 delays"
        f" + {extra} extra seeds ({', '.join(label for label in SEED_MODELS if label in long)}), "
        f"in {result.seconds:.0f} s."
    )
    beyond = Section(
        "Beyond the notes",
        [
            Link(
                "The cells that reached thousands of steps, at a delay of 200 words (bptt demo --beyond)", "beyond.html"
            )
        ],
    )
    return write_page(path, title(result), [story, gradient, remedies, impacts, verdicts, beyond], lead)
