"""The demo's page: one self-contained HTML file with the table, every figure, the story and the six impacts.

The figures are matplotlib's (the same as saved for papers), made interactive
by the page's script: pick a model (its button, its table row, a legend entry)
to highlight it in every figure and table, hide a family of models, read every
model's g[k] / g[0] at any lag, and replay the gradient profiles recorded while
the models trained. The explorable (``bptt explore``) is written beside the page
as ``explore.html``, and the page links to it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from bptt.demo.experiment import HIGHLIGHT, SEED_MODELS, DemoResult
from bptt.demo.story import remedy_notes
from bptt.demo.tables import IMPACTS_TITLE, impacts_tables, jacobian_text, table_header, table_rows, title
from bptt.diagnostics import figures
from bptt.diagnostics.curves import moving_mean
from bptt.explore.page import write_explorable
from bptt.plotting import interactive
from bptt.plotting.html import Link, Note, Raw, Section, Table, write_page
from bptt.plotting.style import family_panels, legend_outside, series_key, series_styles

__all__ = ["IMPACTS_TITLE", "PAGE_FIGURES", "jacobian_text", "table_header", "table_rows", "write_demo_page"]

ACCURACY_TITLE = "Test accuracy at a short and a long delay"
LOSS_TITLE = "Training loss at the long delay"
JACOBIAN_MODELS = ("sigmoid RNN", "tanh RNN", "IRNN (ReLU, identity init)", "LSTM (forget bias 5)", "GRU")
DEEP_MODELS = ("tanh RNN x3", "tanh RNN x3 + residual")
EXPLORABLE = "explore.html"
#: Settings of the explorable the page links to, each with what it shows.
EXPLORE_LINKS = (
    ("cell=sigmoid&spectral_norm=1", "a sigmoid RNN: gamma sigma_max = 1/4, the gradient must vanish"),
    ("cell=tanh&spectral_norm=1.5&input_scale=3", "tanh with large inputs: the bound allows growth, saturation wins"),
    ("cell=relu&init=identity&spectral_norm=1", "IRNN: ReLU with W_hh = I carries the gradient"),
    ("cell=lstm&init=orthogonal&spectral_norm=1", "an LSTM: the forget gates set the decay"),
)

#: Every figure title the page holds, in order (the two live charts are drawn by the page's script).
PAGE_FIGURES = (
    ACCURACY_TITLE,
    LOSS_TITLE,
    figures.TITLES["profile"],
    figures.TITLES["contribution"],
    figures.TITLES["updates"],
    figures.TITLES["jacobian"],
    figures.TITLES["layers"],
)


def accuracy_figure(result: DemoResult) -> Figure:
    fig = Figure(figsize=(10.5, 4.6), layout="constrained")
    ax = fig.subplots()
    labels = [m.label for m in result.models]
    shades = {"short": "#9ecae1", "long": "#1f4e9c"}
    for offset, delay in ((-0.2, "short"), (0.2, "long")):
        values = [100 * (m.accuracy(delay) or 0.0) for m in result.models]
        bars = ax.bar(
            [i + offset for i in range(len(labels))],
            values,
            0.4,
            color=shades[delay],
            label=f"delay {result.settings.delays[delay]} words",
        )
        for bar, label in zip(bars, labels):
            bar.set_gid(f"bptt-series--{series_key(label)}")
    ax.axhline(50, color="grey", linestyle=":", linewidth=1, label="chance (50 %)")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=9)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"{ACCURACY_TITLE}, after training", fontsize=10)
    legend_outside(ax)
    return fig


def loss_figure(result: DemoResult) -> Figure:
    """The moving-mean training loss at the long delay: one panel per family when there are many models."""
    families = result.families()
    styles = series_styles(families)
    panels = family_panels(families)
    fig = Figure(figsize=(10.5, 4.2 if len(panels) == 1 else 0.6 + 2.6 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    models = result.by_label()
    baseline = result.models[0].outcomes["long"].final.baseline
    for ax, (name, labels) in zip(axes, panels):
        for label in labels:
            losses = list(models[label].outcomes["long"].losses)
            ax.plot(range(1, len(losses) + 1), moving_mean(losses), label=label, **styles[label].line())
        ax.axhline(baseline, color="grey", linestyle=":", label="memoryless baseline ln 2")
        ax.set_ylabel("cross-entropy (nats)")
        if name:
            ax.set_title(name, fontsize=10, loc="left")
        legend_outside(ax)
    axes[-1].set_xlabel("training step (moving mean of 20 steps)")
    heading = f"{LOSS_TITLE} ({result.settings.delays['long']} words)"
    if len(panels) == 1:
        axes[0].set_title(heading, fontsize=10)
    else:
        fig.suptitle(heading, fontsize=10)
    return fig


def page_data(result: DemoResult) -> dict[str, Any]:
    """What the page's script reads: the models, each one's profile by lag (g[k] / g[0], top layer)
    and the profiles recorded during training at the long delay."""
    families = result.families()
    styles = series_styles(families)
    steps = sorted({row.step for m in result.models for row in m.replay})
    lags, replay = {}, {}
    for m in result.models:
        key = styles[m.label].key
        lags[key] = interactive.compact(interactive.relative(m.diagnosis.profile.hidden[-1].tolist()))
        at = {row.step: row.hidden[-1][::-1] for row in m.replay}  # recorded by step t: by lag
        replay[key] = [interactive.compact(interactive.relative(at[s])) if s in at else None for s in steps]
    first = result.models[0].diagnosis
    group = {
        "id": "demo",
        "keys": [styles[m.label].key for m in result.models],
        "epsilon": first.epsilon,
        "lag": {"profiles": lags},
        "replay": {"steps": steps, "profiles": replay} if steps else None,
    }
    return {"models": interactive.model_entries(styles, families), "groups": [group]}


def _explore_links() -> Raw:
    items = "".join(f'<li><a href="{EXPLORABLE}#{query}">{html.escape(text)}</a></li>' for query, text in EXPLORE_LINKS)
    return Raw(
        f'<p>The mechanism itself, live: <a href="{EXPLORABLE}">the explorable</a> (written beside this page; '
        "<code>bptt explore</code> writes it on its own) runs a small RNN forward and backward in your "
        "browser. Change the activation, the scale of W_hh, the init, the length, the input scale or the "
        f"clipping threshold, and watch the product of derivatives move. Start with:</p><ul>{items}</ul>"
    )


def write_demo_page(result: DemoResult, path: str | Path) -> Path:
    """Write the page, every figure inline as SVG, no outside file; and the explorable beside it."""
    path = Path(path)
    families = result.families()
    styles = series_styles(families)
    long = {m.label: m.diagnosis for m in result.models}
    some = {label: long[label] for label in HIGHLIGHT if label in long}
    chain = {label: long[label] for label in JACOBIAN_MODELS if label in long}
    deep = {label: long[label] for label in DEEP_MODELS if label in long}
    first = result.models[0].diagnosis
    config = result.models[0].outcomes["long"].config
    short_delay, long_delay = result.settings.delays["short"], result.settings.delays["long"]
    data = page_data(result)
    keys = [styles[m.label].key for m in result.models]
    story = Section(
        "The story",
        [
            f"Delayed sentiment: the label is the polarity of one word, followed by {short_delay} or {long_delay} "
            f"neutral words. Chance is 50 %. Every model has {config.hidden_size} hidden units and is trained with Adam "
            "for the same number of steps; each model trained at the long delay is then measured on a fixed batch. "
            "Pick a model (a button, a table row or a legend entry) to highlight it in every figure; pick it again to "
            "clear.",
            interactive.controls(data["models"]),
            Table(
                table_header(result),
                table_rows(result),
                f"Accuracy, memory horizon and reach, gradient ratios (measured after training at delay {long_delay}; "
                "'+' = the whole sequence; '-' = not this kind of cell)",
                keys=keys,
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
            "Every model's dL/dh at one lag against lag 0 (log scale): move the lag and watch the plain RNNs fall "
            f"below epsilon ({first.epsilon:g}) while the remedies and the gated cells stay above it.",
            interactive.lag_slider("demo", max(d.seq_len for d in long.values()) - 1, first.lag_used),
        ],
    )
    replay = data["groups"][0]["replay"]
    if replay is not None:
        gradient.add(
            f"The same profiles as they were during training at delay {long_delay}: measured on the same batch, "
            f"before training and every {result.settings.replay_every} steps. Move the step back to see where each "
            "model started."
        )
        gradient.add(interactive.step_slider("demo", replay["steps"]))
    gradient.blocks += [
        "The loss's gradient with respect to the inputs, by position: the plain RNNs only feel the last few words; "
        "models that reach back to the polar word feel it too.",
        figures.contribution_figure(some, families),
        "W_hh is shared across time, so its gradient is a sum of one term per step. For the plain RNNs almost all of "
        "it comes from the last few steps: the early words barely update the weights.",
        figures.update_figure(some, families),
        *jacobian_text(chain),
        figures.jacobian_figure(chain, families),
    ]
    if deep:
        gradient.add("Stacked layers: the gradient reaching the first layer, with and without residual connections.")
        gradient.add(figures.layers_figure(deep))
    gradient.add(_explore_links())
    remedies = Section(
        "What each remedy did", [Note(note.heading, note.lead, note.paragraphs) for note in remedy_notes(result)]
    )
    impacts = Section("The six impacts", impacts_tables(result))
    verdicts = Section(
        "Verdicts",
        [
            Table(
                ("model", "verdict"),
                [[label, d.verdict()] for label, d in long.items()],
                f"Every model after training at delay {long_delay}",
                keys=keys,
                prose=True,
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
    write_explorable(path.parent / EXPLORABLE)
    return write_page(
        path,
        title(result),
        [story, gradient, remedies, impacts, verdicts, beyond],
        lead,
        data=data,
        scripts=interactive.scripts(),
    )
