"""The demo's experiment: the vanishing-gradient story, trained and measured end to end.

Delayed sentiment (the textbook example): one polar word decides the label,
followed by ``delay`` neutral words. Twelve models, from the sigmoid RNN the
notes start with through every remedy they list, are trained at a short delay
(4 words, "the food is good" plus a few) and a long one (50 words). Each model
trained at the long delay is then diagnosed on a fixed batch. Negations are
switched off (``negation_prob`` 0): the label is the polar word alone, so the
only difficulty is the distance.

``DemoSettings.quick()`` is the same story, smaller: fewer models, a long delay
of 20 words, fewer steps; the gated cells still beat the plain RNNs there.

While each model trains at the long delay, its gradient profile (batch-mean
||dL/dh_t|| on the fixed batch the diagnosis measures, in float64) is recorded
before the first step and every ``record_every`` steps after, so the page can
replay how the profile changed during training. Each record measures a copy of
the model between two steps (``Replay``): training runs exactly as it would
without it, so recording changes no number the demo reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from bptt.config import RunConfig, build_config
from bptt.diagnostics.common import cast_batch, fixed_batch, measuring_copy
from bptt.diagnostics.diagnosis import Diagnosis, diagnose
from bptt.diagnostics.impacts import RunOutcome, local_minima, long_term_dependencies, seed_spread, slow_convergence
from bptt.modules import record_gradients
from bptt.store import ProfileRow
from bptt.training import Trainer


@dataclass(frozen=True)
class DemoModel:
    """One model of the demo.

    family: how the figures group it ("plain" RNNs, "remedy", "gated" cells).
    remedy: the remedy family of the notes it stands for ("problem", "activation",
    "initialisation", "clipping", "depth", "attention", "gates").
    cost: its training cost per step relative to a one-layer tanh RNN (for the ETA).
    """

    label: str
    settings: dict[str, Any]
    family: str
    remedy: str
    cost: float = 1.0


#: Every model, in the order of the story.
MODELS: tuple[DemoModel, ...] = (
    DemoModel("sigmoid RNN", {"activation": "sigmoid"}, "plain", "problem"),
    DemoModel("tanh RNN", {"activation": "tanh"}, "plain", "activation"),
    # IRNN (Le, Jaitly & Hinton 2015): ReLU, W_hh = identity at the start, a small learning rate.
    DemoModel(
        "IRNN (ReLU, identity init)", {"activation": "relu", "init": "identity", "lr": 0.001}, "remedy", "activation"
    ),
    DemoModel(
        "leaky ReLU RNN + identity init",
        {"activation": "leaky_relu", "init": "identity", "lr": 0.001},
        "remedy",
        "activation",
    ),
    DemoModel("sigmoid RNN + Xavier", {"activation": "sigmoid", "init": "xavier"}, "remedy", "initialisation"),
    DemoModel("tanh RNN + Xavier", {"activation": "tanh", "init": "xavier"}, "remedy", "initialisation"),
    DemoModel("tanh RNN + clipping", {"activation": "tanh", "clip_norm": 1.0}, "remedy", "clipping"),
    DemoModel("tanh RNN x3", {"activation": "tanh", "num_layers": 3}, "plain", "depth", 2.0),
    DemoModel(
        "tanh RNN x3 + residual", {"activation": "tanh", "num_layers": 3, "residual": True}, "remedy", "depth", 2.1
    ),
    DemoModel("tanh RNN + attention", {"activation": "tanh", "readout": "attention"}, "remedy", "attention", 1.4),
    DemoModel("LSTM (forget bias 5)", {"cell": "lstm", "forget_bias": 5.0, "lr": 0.005}, "gated", "gates", 1.3),
    DemoModel("GRU", {"cell": "gru"}, "gated", "gates", 2.2),
)
DELAYS = {"short": 4, "long": 50}
#: Every setting the demo relies on, set here rather than left to the defaults.
BASE: dict[str, Any] = {
    "task": "sentiment",
    "task_options": {"negation_prob": 0.0},
    "cell": "rnn",
    "init": "pytorch",
    "hidden_size": 32,
    "embedding_size": 16,
    "num_layers": 1,
    "readout": "last",
    "residual": False,
    "optimizer": "adam",
    "batch_size": 32,
    "lr": 0.02,
    "clip_norm": None,
    "eval_size": 256,
    "eval_every": 100,
    "seed": 0,
    "progress": False,
}
STEPS = {"short": 300, "long": 700}
#: Record the gradient profile every this many steps while a model trains at the long delay (the replay).
RECORD_EVERY = {"full": 50, "quick": 25}
#: Models trained again with more seeds at the long delay (local minima, spread across seeds).
SEED_MODELS = ("tanh RNN", "GRU")
EXTRA_SEEDS = (1, 2)
EXAMPLES = 64
#: The models of the figures that compare a handful.
HIGHLIGHT = (
    "sigmoid RNN",
    "tanh RNN",
    "IRNN (ReLU, identity init)",
    "tanh RNN + attention",
    "LSTM (forget bias 5)",
    "GRU",
)
QUICK_MODELS = (
    "sigmoid RNN",
    "tanh RNN",
    "IRNN (ReLU, identity init)",
    "tanh RNN x3",
    "tanh RNN x3 + residual",
    "tanh RNN + attention",
    "LSTM (forget bias 5)",
    "GRU",
)
#: The demo's time on a quiet 2-core machine (one torch thread): about its CPU time, measured
#: under load at 52 s (full) and 20 s (quick).
EXPECTED_SECONDS = {"full": 60, "quick": 20}


@dataclass(frozen=True)
class DemoSettings:
    """How big the demo is, and where it trains (``device``: every run and diagnosis).
    ``quick()`` is the same story, smaller, for CI."""

    steps: dict[str, int] = field(default_factory=lambda: dict(STEPS))
    delays: dict[str, int] = field(default_factory=lambda: dict(DELAYS))
    models: tuple[str, ...] = tuple(m.label for m in MODELS)
    overrides: dict[str, Any] = field(default_factory=dict)
    extra_seeds: tuple[int, ...] = EXTRA_SEEDS
    examples: int = EXAMPLES
    seed: int = 0
    quick_version: bool = False
    device: str = "cpu"
    record_every: int | None = None  # None: RECORD_EVERY of this version; 0: record nothing

    @classmethod
    def quick(cls, seed: int = 0, device: str = "cpu") -> DemoSettings:
        return cls(
            steps={"short": 150, "long": 300},
            delays={"short": 4, "long": 20},
            models=QUICK_MODELS,
            overrides={"eval_size": 128},
            extra_seeds=(1,),
            examples=32,
            seed=seed,
            quick_version=True,
            device=device,
        )

    @property
    def name(self) -> str:
        return "quick" if self.quick_version else "full"

    def chosen(self) -> list[DemoModel]:
        return [m for m in MODELS if m.label in self.models]

    def expected_seconds(self) -> int:
        return EXPECTED_SECONDS[self.name]

    @property
    def replay_every(self) -> int:
        return RECORD_EVERY[self.name] if self.record_every is None else self.record_every


@dataclass
class ModelResult:
    """One model of the demo: its runs at each delay, the diagnosis of the long-delay model and the
    profiles recorded while it trained (``replay``: at step 0 and every ``record_every`` steps, by step)."""

    model: DemoModel
    outcomes: dict[str, RunOutcome]
    diagnosis: Diagnosis
    seed_outcomes: list[RunOutcome] = field(default_factory=list)
    replay: list[ProfileRow] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.model.label

    def accuracy(self, delay: str) -> float | None:
        return self.outcomes[delay].final.test_metric

    def steps_to_converge(self, delay: str) -> int | None:
        """First step at which the moving-mean training loss is below half the memoryless baseline."""
        return slow_convergence(self.outcomes[delay])

    def accuracy_by_delay(self) -> tuple[float | None, float | None]:
        """The test accuracy at the short and the long delay (None: the run diverged)."""
        metric = {point.delay: point.metric for point in long_term_dependencies(list(self.outcomes.values()))}
        short, long = (self.outcomes[d].config.delay for d in ("short", "long"))
        return metric.get(short), metric.get(long)


@dataclass
class DemoResult:
    models: list[ModelResult]
    settings: DemoSettings
    seconds: float = 0.0

    def by_label(self) -> dict[str, ModelResult]:
        return {m.label: m for m in self.models}

    def families(self) -> dict[str, str]:
        return {m.label: m.model.family for m in self.models}

    def impacts(self) -> dict[str, Any]:
        """The six impacts, measured on the demo's runs."""
        models = self.by_label()
        seeds = {
            label: [models[label].outcomes["long"], *models[label].seed_outcomes]
            for label in SEED_MODELS
            if label in models
        }
        deep, residual = models.get("tanh RNN x3"), models.get("tanh RNN x3 + residual")
        ratio = lambda m: float(m.diagnosis.layers.weight_ih[0] / m.diagnosis.layers.weight_ih[-1])  # noqa: E731
        return {
            "slow_convergence": {
                m.label: (m.steps_to_converge("short"), m.steps_to_converge("long")) for m in self.models
            },
            "long_term_dependencies": {m.label: m.accuracy_by_delay() for m in self.models},
            "local_minima": {label: local_minima(runs) for label, runs in seeds.items()},
            "seed_spread": {label: seed_spread(runs) for label, runs in seeds.items()},
            "sensitivity": {m.label: m.diagnosis.sensitivity for m in self.models},
            "recent_input_share": {m.label: m.diagnosis.input_share_recent for m in self.models},
            "depth_bottom_to_top": {m.label: ratio(m) for m in (deep, residual) if m is not None},
        }


def demo_config(settings: DemoSettings, model: DemoModel, delay: str, seed: int | None = None) -> RunConfig:
    values = {
        **BASE,
        **model.settings,
        **settings.overrides,
        "delay": settings.delays[delay],
        "steps": settings.steps[delay],
        "seed": settings.seed if seed is None else seed,
        "device": settings.device,
    }
    return build_config(values)


@dataclass(frozen=True)
class Plan:
    """What the demo trains, with each run's relative cost (steps x cost per step), for the ETA."""

    runs: list[tuple[DemoModel, str, int]]  # (model, delay name, seed)
    settings: DemoSettings

    def cost(self, model: DemoModel, delay: str) -> float:
        return self.settings.steps[delay] * model.cost * (1 + self.settings.delays[delay] / 10)

    @property
    def total(self) -> float:
        return sum(self.cost(model, delay) for model, delay, _ in self.runs)


def demo_plan(settings: DemoSettings) -> Plan:
    runs = []
    for model in settings.chosen():
        runs += [(model, delay, settings.seed) for delay in settings.delays]
        if model.label in SEED_MODELS:
            runs += [(model, "long", seed) for seed in settings.extra_seeds]
    return Plan(runs, settings)


class Replay:
    """Called after every training step (``Trainer.on_step``): every ``every`` steps, the gradient profile
    of the model as it stands, on the task's fixed batch in float64 (as the diagnosis measures it),
    appended to ``rows``. It measures a copy, so the run trains exactly as it would without it."""

    def __init__(self, trainer: Trainer, every: int, examples: int, rows: list[ProfileRow]) -> None:
        self.trainer, self.every, self.rows = trainer, every, rows
        self.batch = cast_batch(fixed_batch(trainer.task, examples), torch.float64).to(trainer.config.device)

    def __call__(self, step: int, loss: float | None) -> None:
        if step % self.every:
            return
        model, task, batch = measuring_copy(self.trainer.model), self.trainer.task, self.batch
        with record_gradients(model) as record:
            task.loss(model(batch.inputs, batch.lengths), batch).backward()
        # Stored as the database stores a profile: by step t, each sequence aligned at its own last step.
        hidden, cell = record.by_lag("hidden"), record.by_lag("cell") if record.cell is not None else None
        assert hidden is not None  # the backward above reached every step
        self.rows.append(ProfileRow(step, hidden.flip(-1).tolist(), None if cell is None else cell.flip(-1).tolist()))


@dataclass(frozen=True)
class Progress:
    """Where the demo stands: ``done`` of ``total`` cost units after ``elapsed`` seconds."""

    text: str
    done: float
    total: float
    elapsed: float

    @property
    def remaining_seconds(self) -> float | None:
        """Seconds left at the pace so far (None before the first run ends)."""
        if self.done <= 0:
            return None
        return self.elapsed * (self.total - self.done) / self.done


def run_demo(
    settings: DemoSettings,
    progress: Callable[[Progress], None] | None = None,
    finished: Callable[[ModelResult, Progress], None] | None = None,
) -> DemoResult:
    """Train and diagnose every model. ``progress`` is called before each run, ``finished`` after each model."""
    plan = demo_plan(settings)
    started = time.perf_counter()
    done = 0.0

    def now(text: str) -> Progress:
        return Progress(text, done, plan.total, time.perf_counter() - started)

    results = []
    for model in settings.chosen():
        outcomes: dict[str, RunOutcome] = {}
        trained = None
        replay: list[ProfileRow] = []
        for delay in settings.delays:
            if progress is not None:
                progress(now(f"{model.label}, delay {settings.delays[delay]}"))
            trainer = Trainer(demo_config(settings, model, delay))
            if delay == "long" and settings.replay_every:
                trainer.on_step = Replay(trainer, settings.replay_every, settings.examples, replay)
                trainer.on_step(0, None)  # the profile before training
            outcomes[delay] = RunOutcome.from_result(trainer.run())
            done += plan.cost(model, delay)
            trained = (trainer.model, trainer.task)
        diagnosis = diagnose(trained[0], trained[1], examples=settings.examples, label=model.label)
        seed_outcomes = []
        if model.label in SEED_MODELS:
            for seed in settings.extra_seeds:
                if progress is not None:
                    progress(now(f"{model.label}, delay {settings.delays['long']}, seed {seed}"))
                seed_outcomes.append(RunOutcome.from_result(Trainer(demo_config(settings, model, "long", seed)).run()))
                done += plan.cost(model, "long")
        result = ModelResult(model, outcomes, diagnosis, seed_outcomes, replay)
        results.append(result)
        if finished is not None:
            finished(result, now(model.label))
    return DemoResult(results, settings, time.perf_counter() - started)


def format_accuracy(value: float | None) -> str:
    return "diverged" if value is None or not math.isfinite(value) else f"{100 * value:.0f} %"
