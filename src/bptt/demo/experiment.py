"""The demo's experiment: the vanishing-gradient story, trained and measured end to end.

Delayed sentiment (the textbook example): one polar word decides the label,
followed by ``delay`` neutral words. Twelve models, from the sigmoid RNN the
notes start with through every remedy they list, are trained at a short delay
(4 words, "the food is good" plus a few) and a long one (50 words). Each model
trained at the long delay is then diagnosed on a fixed batch. Negations are
switched off (``negation_prob`` 0): the label is the polar word alone, so the
only difficulty is the distance.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bptt.config import RunConfig, build_config
from bptt.diagnostics.diagnosis import Diagnosis, diagnose
from bptt.diagnostics.impacts import (
    RunOutcome,
    local_minima,
    long_term_dependencies,
    seed_spread,
    slow_convergence,
)
from bptt.training import Trainer

#: (label, settings on top of BASE) of every model, in the order of the story.
MODELS: list[tuple[str, dict[str, Any]]] = [
    ("sigmoid RNN", {"activation": "sigmoid"}),
    ("tanh RNN", {"activation": "tanh"}),
    ("ReLU RNN", {"activation": "relu"}),
    ("leaky ReLU RNN", {"activation": "leaky_relu"}),
    ("sigmoid RNN + Xavier", {"activation": "sigmoid", "init": "xavier"}),
    ("tanh RNN + Xavier", {"activation": "tanh", "init": "xavier"}),
    ("tanh RNN + clipping", {"activation": "tanh", "clip_norm": 1.0}),
    ("tanh RNN x3", {"activation": "tanh", "num_layers": 3}),
    ("tanh RNN x3 + residual", {"activation": "tanh", "num_layers": 3, "residual": True}),
    ("tanh RNN + attention", {"activation": "tanh", "readout": "attention"}),
    ("LSTM (forget bias 5)", {"cell": "lstm", "forget_bias": 5.0}),
    ("GRU", {"cell": "gru"}),
]
DELAYS = {"short": 4, "long": 50}
BASE: dict[str, Any] = {"task": "sentiment", "task_options": {"negation_prob": 0.0}, "cell": "rnn", "hidden_size": 32,
                        "embedding_size": 16, "batch_size": 32,
                        "lr": 0.02, "eval_size": 256, "eval_every": 100, "seed": 0, "progress": False}
STEPS = {"short": 400, "long": 800}
#: Models trained again with more seeds at the long delay (local minima, spread across seeds).
SEED_MODELS = ("tanh RNN", "GRU")
EXTRA_SEEDS = (1, 2)
EXAMPLES = 64
#: Pieces of the figures that compare a handful of models.
HIGHLIGHT = ("sigmoid RNN", "tanh RNN", "ReLU RNN", "tanh RNN + attention", "LSTM (forget bias 5)", "GRU")


@dataclass(frozen=True)
class DemoSettings:
    """How big the demo is. ``quick()`` is the seconds-long version for CI."""

    steps: dict[str, int] = field(default_factory=lambda: dict(STEPS))
    overrides: dict[str, Any] = field(default_factory=dict)
    extra_seeds: tuple[int, ...] = EXTRA_SEEDS
    examples: int = EXAMPLES
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> DemoSettings:
        return cls(steps={"short": 20, "long": 20}, overrides={"hidden_size": 16, "eval_size": 32},
                   extra_seeds=(1,), examples=16, seed=seed)


@dataclass
class ModelResult:
    """One model of the demo: its runs at each delay and the diagnosis of the long-delay model."""

    label: str
    outcomes: dict[str, RunOutcome]
    diagnosis: Diagnosis
    seed_outcomes: list[RunOutcome] = field(default_factory=list)

    def accuracy(self, delay: str) -> float | None:
        return self.outcomes[delay].final.test_metric

    def steps_to_converge(self, delay: str) -> int | None:
        """First step at which the moving-mean training loss is below half the memoryless baseline."""
        return slow_convergence(self.outcomes[delay])

    def accuracy_by_delay(self) -> tuple[float | None, float | None]:
        """The test accuracy at the short and the long delay (None: the run diverged)."""
        metric = {point.delay: point.metric for point in long_term_dependencies(list(self.outcomes.values()))}
        return metric.get(DELAYS["short"]), metric.get(DELAYS["long"])


@dataclass
class DemoResult:
    models: list[ModelResult]
    settings: DemoSettings
    seconds: float = 0.0

    def by_label(self) -> dict[str, ModelResult]:
        return {m.label: m for m in self.models}

    def impacts(self) -> dict[str, Any]:
        """The six impacts, measured on the demo's runs."""
        models = self.by_label()
        seeds = {label: [models[label].outcomes["long"], *models[label].seed_outcomes]
                 for label in SEED_MODELS if label in models}
        deep, residual = models.get("tanh RNN x3"), models.get("tanh RNN x3 + residual")
        ratio = lambda m: float(m.diagnosis.layers.weight_ih[0] / m.diagnosis.layers.weight_ih[-1])  # noqa: E731
        return {
            "slow_convergence": {m.label: (m.steps_to_converge("short"), m.steps_to_converge("long"))
                                 for m in self.models},
            "long_term_dependencies": {m.label: m.accuracy_by_delay() for m in self.models},
            "local_minima": {label: local_minima(runs) for label, runs in seeds.items()},
            "seed_spread": {label: seed_spread(runs) for label, runs in seeds.items()},
            "sensitivity": {m.label: m.diagnosis.sensitivity for m in self.models},
            "recent_input_share": {m.label: m.diagnosis.input_share_recent for m in self.models},
            "depth_bottom_to_top": {m.label: ratio(m) for m in (deep, residual) if m is not None},
        }


def demo_config(settings: DemoSettings, model: dict[str, Any], delay: str, seed: int | None = None) -> RunConfig:
    values = {**BASE, **model, **settings.overrides, "delay": DELAYS[delay], "steps": settings.steps[delay],
              "seed": settings.seed if seed is None else seed}
    return build_config(values)


def run_demo(settings: DemoSettings, progress: Callable[[str, int], None] | None = None) -> DemoResult:
    """Train and diagnose every model; ``progress(what, runs_done)`` is called before each step of the work."""
    started = time.perf_counter()
    done = 0

    def note(text: str) -> None:
        if progress is not None:
            progress(text, done)

    results = []
    for label, model in MODELS:
        outcomes: dict[str, RunOutcome] = {}
        trained = None
        for delay in DELAYS:
            note(f"{label}, delay {DELAYS[delay]}")
            config = demo_config(settings, model, delay)
            trainer = Trainer(config)
            task = trainer.task
            outcomes[delay] = RunOutcome.from_result(trainer.run())
            done += 1
            trained = (trainer.model, task)
        note(f"{label}: diagnosing")
        diagnosis = diagnose(trained[0], trained[1], examples=settings.examples, label=label)
        seed_outcomes = []
        if label in SEED_MODELS:
            for seed in settings.extra_seeds:
                note(f"{label}, delay {DELAYS['long']}, seed {seed}")
                config = demo_config(settings, model, "long", seed)
                seed_outcomes.append(RunOutcome.from_result(Trainer(config).run()))
                done += 1
        results.append(ModelResult(label, outcomes, diagnosis, seed_outcomes))
    return DemoResult(results, settings, time.perf_counter() - started)


def demo_runs(settings: DemoSettings) -> int:
    """How many training runs ``run_demo`` does (for a progress bar)."""
    return len(MODELS) * len(DELAYS) + len(SEED_MODELS) * len(settings.extra_seeds)


def format_accuracy(value: float | None) -> str:
    return "diverged" if value is None or not math.isfinite(value) else f"{100 * value:.0f} %"
