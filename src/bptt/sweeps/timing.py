"""How far a sweep has come and how long it has left, from the work its runs hold.

Runs of one sweep differ in cost a hundredfold (a step of adding T=600 with 150 GRU
units against one of MNIST-1D's 40 steps), so "runs done of runs planned" says little
about the time left. Each run's work is counted instead: ``step_work`` models one
training step's cost, its evaluations are added (``run_work``), and the time left is
the work left over the pace measured on the runs themselves (work done per second of wall
time by one worker, which takes in the machine's load):

    time left = max(work left / (pace * workers), longest run left / pace)

the second term for the end of a sweep, when fewer runs than workers are left. Each run's
pace is timed between its own reports, from its first one on (which leaves out the worker's
start: a process, torch, the data): runs side by side report a checkpoint's worth of steps
each, at moments of their own, and a pace timed across the sweep from its first report would
count the second worker's first checkpoint as done in the seconds between the two. The
work of a run counts every step it plans: a run that reaches its ``target_metric`` (or
diverges) stops sooner, so the estimate can only shrink as such runs end, and says so.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch

from bptt.build import make_task
from bptt.config import RunConfig
from bptt.modules.cells import CELLS
from bptt.sweeps.spec import PlannedRun
from bptt.training.progress import ProgressBar

#: What a step costs besides the matrix products, per time step and gate unit, in multiply-adds
#: per sequence: the elementwise gate arithmetic and the time loop's own cost. Fitted to the
#: step times of the 20 shapes of canonical-quick on a 2-core CPU (the fast engine, one thread
#: per run), which the model then gives within a factor of 0.4 to 1.3 each.
PER_UNIT = 500.0
#: Seconds between two lines of progress (besides one at the start and one at each run's end).
PROGRESS_EVERY = 300.0
#: An evaluation's forward pass over one example, as a share of a training step over one example.
FORWARD_SHARE = 0.45


def step_work(cell: str, hidden_size: int, input_size: int, num_layers: int, batch_size: int, length: int) -> float:
    """One training step's work in multiply-adds (a model of its cost, not a count of FLOPs):
    ``length`` time steps of ``batch_size`` sequences through ``num_layers`` layers, each time step
    ``gates * hidden_size * (hidden_size + inputs + PER_UNIT)`` per sequence, ``gates`` the cell's gate
    blocks (its layer's ``GATES``: 1 for the RNN, 3 for the GRU, 4 for the LSTM). The cells beyond the
    notes are priced as that many blocks of the same work; the model was fitted on the RNN, LSTM and
    GRU alone, so their estimates are rougher."""
    gates = CELLS.get(cell).layer.GATES * hidden_size
    per_time_step = 0.0
    for layer in range(num_layers):
        inputs = input_size if layer == 0 else hidden_size
        per_time_step += batch_size * gates * (hidden_size + inputs + PER_UNIT)
    return length * per_time_step


def run_work(config: RunConfig, length: int, input_size: int, steps: int) -> float:
    """The work of ``steps`` training steps of ``config`` with their evaluations (every ``eval_every``
    steps and once at the end on the validation and the test set, ``eval_size`` examples each)."""
    step = step_work(config.cell, config.hidden_size, input_size, config.num_layers, config.batch_size, length)
    evaluations = steps / config.eval_every + 2
    return step * (steps + evaluations * FORWARD_SHARE * config.eval_size / config.batch_size)


def _shape(config: RunConfig) -> tuple[Any, ...]:
    return (config.task, config.seq_len, config.delay, config.task_variant, config.data_dir, config.embedding_size)


def task_shapes(configs: Iterable[RunConfig]) -> dict[tuple[Any, ...], tuple[int, int]]:
    """(time steps per sequence, input size) of each distinct task, from one sampled sequence."""
    shapes: dict[tuple[Any, ...], tuple[int, int]] = {}
    for config in configs:
        key = _shape(config)
        if key not in shapes:
            try:
                task = make_task(config.model_copy(update={"eval_size": 1}))
                length = task.train_batch(1, torch.Generator().manual_seed(0)).inputs.shape[0]
                inputs = config.embedding_size if task.input_kind == "tokens" else task.input_size
            except Exception:  # an estimate never stops a sweep: the worker reports a task that fails
                length, inputs = config.seq_len or 1, 1
            shapes[key] = (int(length), int(inputs))
    return shapes


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


@dataclass
class SweepEstimate:
    """The work of the runs a sweep trains, what of it is done, and the pace measured since ``started``.

    ``steps``: identity -> (steps planned, steps done when the sweep started); ``work_per_step``:
    identity -> work of one step, evaluations included.
    """

    steps: dict[str, tuple[int, int]]
    work_per_step: dict[str, float]
    workers: int = 1
    started: float = field(default_factory=time.monotonic)
    done: dict[str, int] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    # identity -> (time, steps done) of the run's first report in this sweep, and of its latest
    first: dict[str, tuple[float, int]] = field(default_factory=dict)
    latest: dict[str, tuple[float, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, runs: Iterable[tuple[PlannedRun, int]], workers: int = 1) -> SweepEstimate:
        """The estimate for ``runs``, each with the steps it had done before the sweep started."""
        runs = list(runs)
        shapes = task_shapes(run.config for run, _ in runs)
        steps, work = {}, {}
        for run, before in runs:
            length, inputs = shapes[_shape(run.config)]
            steps[run.identity] = (run.config.steps, min(before, run.config.steps))
            work[run.identity] = run_work(run.config, length, inputs, run.config.steps) / run.config.steps
        return cls(steps, work, workers)

    def update(self, identity: str, steps_done: int | None, now: float | None = None) -> None:
        """The run has done ``steps_done`` steps (None: nothing new), reported at ``now``."""
        if steps_done is None:
            return
        self.done[identity] = steps_done
        report = (time.monotonic() if now is None else now, steps_done)
        self.first.setdefault(identity, report)
        self.latest[identity] = report

    def end(self, identity: str, steps_done: int, now: float | None = None) -> None:
        """A run ended (all its steps, its target, diverged or failed): no work of it is left."""
        self.update(identity, steps_done, now)
        self.ended.add(identity)

    def drop(self, identity: str) -> None:
        """The run will not run (a ladder stopped below its rung): neither planned nor ended."""
        for table in (self.steps, self.work_per_step, self.done, self.first, self.latest):
            table.pop(identity, None)
        self.ended.discard(identity)

    def pace(self) -> float | None:
        """Work per wall second of one worker: the work the runs did between their first report and
        their latest over the time between them, all runs together; None before any run reported twice."""
        work = seconds = 0.0
        for identity, (start, steps) in self.first.items():
            end, latest = self.latest[identity]
            if end > start and identity in self.work_per_step:
                work += max(0, latest - steps) * self.work_per_step[identity]
                seconds += end - start
        return work / seconds if work > 0 else None

    def _left(self, identity: str) -> float:
        if identity in self.ended:
            return 0.0
        planned, before = self.steps[identity]
        return max(0, planned - max(before, self.done.get(identity, before))) * self.work_per_step[identity]

    @property
    def steps_planned(self) -> int:
        return sum(planned for planned, _ in self.steps.values())

    @property
    def steps_done(self) -> int:
        return sum(min(self.done.get(i, before), planned) for i, (planned, before) in self.steps.items())

    def seconds_left(self) -> float | None:
        """Wall seconds left at the pace measured so far (see the module docstring); None until a run
        has reported twice."""
        pace = self.pace()
        if pace is None:
            return None
        left = [self._left(i) for i in self.steps]
        return max(sum(left) / (pace * max(1, self.workers)), max(left, default=0.0) / pace)

    def line(self, runs_ended: int, runs_total: int, now: float | None = None) -> str:
        """One line of progress: runs ended, steps, time so far and the estimate of the time left."""
        now = time.monotonic() if now is None else now
        left = self.seconds_left()
        estimate = (
            "time left: measured once the first steps are in"
            if left is None
            else f"about {_clock(left)} left (if every run trains all its steps; one that stops at its target "
            "ends sooner)"
        )
        return (
            f"{runs_ended} of {runs_total} runs ended, {self.steps_done:,} of {self.steps_planned:,} steps; "
            f"{_clock(now - self.started)} so far, {estimate}"
        )


class SweepClock:
    """Tells how a sweep goes: on a terminal the bar's steps and time left, and on stderr (above the
    bar on a terminal, plain elsewhere, e.g. a log file) a line at the start, at the first estimate,
    at each run's end and every ``every`` seconds; nothing when not ``enabled``."""

    def __init__(
        self,
        name: str,
        runs: Iterable[tuple[PlannedRun, int]],
        skipped: int,
        bar: ProgressBar,
        workers: int,
        enabled: bool,
        every: float = PROGRESS_EVERY,
    ) -> None:
        self.estimate = SweepEstimate.of(runs, workers) if enabled else SweepEstimate({}, {}, workers)
        self.name, self.skipped, self.bar, self.enabled, self.every = name, skipped, bar, enabled, every
        self._told: float | None = None
        self._estimated = False

    @classmethod
    def of(
        cls, name: str, decisions: Iterable[Any], skipped: int, bar: ProgressBar, workers: int, enabled: bool
    ) -> SweepClock:
        """The clock of the runs a sweep trains (its decisions that run: ``run`` and ``row`` each)."""
        runs = [(d.run, 0 if d.row is None else d.row.steps_done) for d in decisions]
        return cls(name, runs, skipped, bar, workers, enabled)

    def dropped(self, identity: str) -> None:
        """A waiting run will not run (its ladder stopped): it leaves the plan."""
        self.estimate.drop(identity)

    def ended(self, identity: str, steps_done: int) -> None:
        """A run ended: no work of it is left; a line says so."""
        self.estimate.end(identity, steps_done)
        self.tell(now=True)

    def tell(self, now: bool = False) -> None:
        """Update the bar; print a line when one is due (``now``: at a run's end). On a terminal the
        bar's live display takes the line above itself (rich redirects stderr while it shows)."""
        if not self.enabled:
            return
        at = time.monotonic()
        left = self.estimate.seconds_left()
        steps = f"{self.estimate.steps_done:,}/{self.estimate.steps_planned:,} steps"
        self.bar.estimate(left, f"sweep {self.name} ({steps})")
        first_estimate = left is not None and not self._estimated
        if not (now or first_estimate or self._told is None or at - self._told >= self.every):
            return
        runs, ended = len(self.estimate.steps), len(self.estimate.ended)
        before = f" ({self.skipped} done before)" if self._told is None and self.skipped else ""
        print(f"sweep {self.name}{before}: {self.estimate.line(ended, runs, at)}", file=sys.stderr, flush=True)
        self._told, self._estimated = at, self._estimated or left is not None
