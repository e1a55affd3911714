"""``bptt demo --beyond``: the cells that reached thousands of steps, on delayed sentiment at a long delay.

The demo's task (one polar word decides the label, negations off) with the polar word ``DELAY``
(200) words before the end: far past the reach of the plain RNNs. Every cell bptt builds beyond
the RNN, LSTM and GRU is trained with its own recommended settings (its registry entry's
defaults: learning rate, layers, its own parameters), beside a tanh RNN and a GRU for reference,
each for the same number of steps with the same sizes. Then, on a fixed test batch, the
gradient each model's loss sends back to its first layer's state is recorded step by step
(``bptt.record_gradients``): ||dL/dh| at lag 200 over lag 0 says how much of the signal
reaches the polar word.

Written to its own page, ``beyond.html`` beside the demo's ``index.html``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from bptt.config import build_config
from bptt.modules import record_gradients
from bptt.modules.cells import CELLS
from bptt.plotting.html import Section, Table, write_page
from bptt.report.published import CLAIM_OF_CELL
from bptt.training import Trainer

DELAY = 200
STEPS = 300
#: The cells the notes already cover; every other registered cell is one of the "beyond".
CLASSIC = ("rnn", "lstm", "gru")
#: The reference rows: the plain RNN the notes start with, and the gated cell that learns the most.
REFERENCES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("tanh RNN", {"cell": "rnn", "activation": "tanh", "lr": 0.02}),
    ("GRU", {"cell": "gru", "lr": 0.02}),
)
#: Every setting the page relies on but the cell's own.
BASE: dict[str, Any] = {
    "task": "sentiment",
    "delay": DELAY,
    "task_options": {"negation_prob": 0.0},
    "hidden_size": 32,
    "embedding_size": 16,
    "readout": "last",
    "optimizer": "adam",
    "batch_size": 32,
    "clip_norm": 1.0,
    "eval_size": 256,
    "eval_every": 100,
    "steps": STEPS,
    "seed": 0,
    "progress": False,
}
EXAMPLES = 64
#: Seconds on a quiet 2-core machine (one torch thread) per model: the nine models of the page measured
#: 64 CPU seconds in all (the wall-clock time of a quiet machine), LN-LSTM's autograd loop the slowest.
EXPECTED_SECONDS_PER_MODEL = 12


@dataclass
class BeyondModel:
    label: str
    cell: str
    accuracy: float | None
    ratio: float | None  # ||dL/dh|| at lag DELAY over lag 0, first layer
    profile: list[float]  # ||dL/dh|| by lag, first layer
    seconds: float
    settings: dict[str, Any]


def models() -> list[tuple[str, dict[str, Any]]]:
    """(label, settings) of every model on the page: the references, then each cell beyond the notes."""
    beyond = [(CLAIM_OF_CELL.get(name, name), {"cell": name}) for name in CELLS.in_order() if name not in CLASSIC]
    return [*REFERENCES, *beyond]


def _profile(trainer: Trainer) -> list[float]:
    """||dL/dh_t|| of the first layer by lag, recorded on a fixed test batch."""
    model, task = trainer.model, trainer.task
    batch = task.eval_set("test").subset(torch.arange(EXAMPLES)).to(trainer.config.device)
    model.train()
    with record_gradients(model) as record:
        loss = task.loss(model(batch.inputs, batch.lengths), batch)
        loss.backward()
    model.zero_grad(set_to_none=True)
    by_lag = record.by_lag()
    return [] if by_lag is None else by_lag[0].double().tolist()


def train_one(label: str, settings: dict[str, Any], seed: int, device: str) -> BeyondModel:
    config = build_config({**BASE, **settings, "seed": seed, "device": device})
    started = time.perf_counter()
    trainer = Trainer(config)
    result = trainer.run()
    profile = _profile(trainer)
    ratio = profile[DELAY] / profile[0] if len(profile) > DELAY and profile[0] > 0 else None
    shown = {k: v for k, v in config.model_dump().items() if k in ("lr", "num_layers", "activation", "cell_options")}
    return BeyondModel(
        label, config.cell, result.final.test_metric, ratio, profile, time.perf_counter() - started, shown
    )


def run_beyond(
    seed: int = 0, device: str = "cpu", done: Callable[[BeyondModel, int, int], None] | None = None
) -> list[BeyondModel]:
    chosen = models()
    results = []
    for index, (label, settings) in enumerate(chosen):
        results.append(train_one(label, settings, seed, device))
        if done is not None:
            done(results[-1], index + 1, len(chosen))
    return results


def profile_figure(results: list[BeyondModel]) -> Figure:
    fig = Figure(figsize=(8, 4.2))
    ax = fig.add_subplot()
    for m in results:
        if m.profile:
            ax.semilogy(range(len(m.profile)), [max(v, 1e-30) for v in m.profile], label=m.label)
    ax.axvline(DELAY, color="0.6", linestyle=":", label=f"the polar word (lag {DELAY})")
    ax.set_xlabel("lag k (steps before the end)")
    ax.set_ylabel("||dL/dh|| (first layer)")
    ax.set_title(f"after {STEPS} training steps at delay {DELAY}")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return fig


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.0f} %" if percent else f"{value:.2g}"


def table_rows(results: list[BeyondModel]) -> list[list[str]]:
    return [[m.label, _fmt(m.accuracy, True), _fmt(m.ratio), f"{m.seconds:.0f}"] for m in results]


TABLE_HEADER = ("model", f"accuracy at delay {DELAY}", f"||dL/dh|| lag {DELAY} / lag 0", "seconds")


def write_beyond_page(results: list[BeyondModel], path: str | Path, seconds: float) -> Path:
    cells = [m for m in results if m.cell not in CLASSIC]
    story = Section(
        "Delayed sentiment at a long delay",
        [
            f"The polar word sits {DELAY} words before the end; chance is 50 %. Every model has {BASE['hidden_size']} "
            f"hidden units per layer and trains {STEPS} steps with Adam at its own recommended learning rate, layers "
            "and cell settings (listed below); a tanh RNN and a GRU are the reference.",
            Table(TABLE_HEADER, table_rows(results), "Test accuracy, and how much gradient reaches the polar word"),
            profile_figure(results),
        ],
    )
    settings = Section(
        "Settings",
        [
            Table(
                ("model", "settings"),
                [[m.label, ", ".join(f"{k} {v}" for k, v in m.settings.items())] for m in results],
            )
        ],
    )
    lead = (
        f"bptt demo --beyond: {len(cells)} cells beyond the notes ({', '.join(m.label for m in cells) or 'none built'})"
        f" and {len(results) - len(cells)} references, in {seconds:.0f} s."
    )
    return write_page(path, "bptt demo: beyond the notes", [story, settings], lead)
