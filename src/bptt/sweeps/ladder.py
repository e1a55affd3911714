"""A length ladder: for each model, climb a task's length until every seed fails.

In a spec::

    ladder:
      rungs:                                   # task -> its lengths, and what counts as solved
        adding: {seq_len: [100, 500, 1000, 2000, 5000], solved_below: 0.01, stop_at: 0.5}
        copy: {seq_len: [100, 500, 1000], solved_below_baseline: 0.1, max_steps: [3000, 3000, 2000]}
      timing: {task: adding, seq_len: 1000, steps: 30, eval_size: 100}   # optional

Every run of the spec on a ladder task (its ``seq_len`` left unset) becomes one run per
rung. A run is solved when its test loss is below ``solved_below``, or below
``solved_below_baseline`` times the task's memoryless baseline at that length (adding's
loss is its MSE; copy's the cross-entropy over every step). Each rung's run stops once its
validation loss is below ``stop_at`` times that value (``target_loss``; ``stop_at`` is 1 unless
given): the claim is about the test set, and a run stopped on validation at the threshold
itself leaves its test loss on either side of it. ``max_steps`` (optional, one per length)
caps the steps of a rung's runs: the long rungs cost the most per step.

A model is the runs that differ only in length and seed. Its runs at a rung wait until
every seed of the rung below is done; they run when at least one of those seeds solved
it, and are not run when every seed failed (the model stops climbing there). The
decision is read from the database each time, so a sweep stopped and started again
goes on where the ladder stood.

``timing`` adds one short run per model at the timing task (seed: the spec's first):
the model's settings with these on top, to measure the seconds per training step at
one length whatever rung the model reached. It must change what is trained (e.g. a
smaller ``eval_size``), so that it is never the same run as a rung's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bptt.config import SCHEDULE_FIELDS, ConfigError, RunConfig, build_config
from bptt.store import RunRow, RunSummary
from bptt.tasks import TASKS

if TYPE_CHECKING:
    from bptt.sweeps.spec import PlannedRun

LADDER_KEYS = ("rungs", "timing")
RUNG_KEYS = ("seq_len", "solved_below", "solved_below_baseline", "max_steps", "stop_at")
Gate = Literal["go", "wait", "stop"]


@dataclass(frozen=True)
class Rung:
    """Where a run stands on its model's ladder, and what solves it."""

    model: str  # the identity of the run's settings without its length and seed
    task: str
    seq_len: int
    threshold: float  # solved: test loss below this
    stop: float  # the run's target_loss: it stops once its validation loss is below this

    def solved(self, final: RunSummary | None) -> bool:
        loss = None if final is None else final.test_loss
        return loss is not None and math.isfinite(loss) and loss < self.threshold


@dataclass(frozen=True)
class TaskLadder:
    seq_lens: tuple[int, ...]
    solved_below: float | None
    solved_below_baseline: float | None
    max_steps: tuple[int, ...] | None = None
    stop_at: float = 1.0

    def threshold(self, baseline: float) -> float:
        if self.solved_below is not None:
            return self.solved_below
        assert self.solved_below_baseline is not None
        return self.solved_below_baseline * baseline


@dataclass(frozen=True)
class Ladder:
    tasks: dict[str, TaskLadder]
    timing: dict[str, Any]

    def rungs(self, values: dict[str, Any], where: str, error: Callable[[str], Exception]) -> list[dict[str, Any]]:
        """The settings of each rung of a run (``values`` itself when its task has no ladder)."""
        task = values.get("task", RunConfig.model_fields["task"].default)
        if task not in self.tasks:
            return [values]
        if values.get("seq_len") is not None:
            raise error(f"{where}: seq_len: the ladder sets the lengths of task {task!r}; leave seq_len unset")
        ladder = self.tasks[task]
        caps = ladder.max_steps or (None,) * len(ladder.seq_lens)
        steps = values.get("steps", RunConfig.model_fields["steps"].default)
        return [
            {**values, "seq_len": seq_len, **({} if cap is None else {"steps": min(cap, steps)})}
            for seq_len, cap in zip(ladder.seq_lens, caps)
        ]

    def rung(self, config: RunConfig, baseline: float) -> Rung | None:
        """The rung a built config stands on (None off the ladder), its threshold from the task's baseline."""
        ladder = self.tasks.get(config.task)
        if ladder is None or config.seq_len is None:
            return None
        threshold = ladder.threshold(baseline)
        return Rung(model_key(config), config.task, config.seq_len, threshold, threshold * ladder.stop_at)


def model_key(config: RunConfig) -> str:
    """What the runs of one model share: every setting but the length, the seed and the schedule."""
    return config.model_copy(update={"seq_len": None, "seed": 0}).identity()


def model_settings(settings: dict[str, Any], length: str = "seq_len") -> dict[str, Any]:
    """A stored run's settings that ``model_key`` counts: every one but its ``length``, its seed and the
    schedule; empty ones left out, so a run stored before a setting existed reads as one stored after."""
    dropped = {length, "seed", *SCHEDULE_FIELDS}
    return {k: v for k, v in settings.items() if k not in dropped and v is not None and v != {} and v != []}


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def parse_ladder(data: Any, source: str, error: Callable[[str], Exception]) -> Ladder | None:
    """The spec's ``ladder`` key, checked; None when the spec has none."""
    if data is None:
        return None
    if not isinstance(data, dict) or "rungs" not in data:
        raise error(f"sweep {source}: ladder: must be a mapping with 'rungs' (and optionally 'timing')")
    for key in data:
        if key not in LADDER_KEYS:
            raise error(f"sweep {source}: ladder: unknown key {key!r}; allowed: {', '.join(LADDER_KEYS)}")
    rungs = data["rungs"]
    if not isinstance(rungs, dict) or not rungs:
        raise error(f"sweep {source}: ladder.rungs: must map task names to their rungs")
    tasks = {}
    for task, entry in rungs.items():
        where = f"ladder.rungs.{task}"
        if task not in TASKS:
            raise error(f"sweep {source}: {where}: unknown task; the tasks: {', '.join(TASKS.names())}")
        if not isinstance(entry, dict):
            raise error(f"sweep {source}: {where}: must be a mapping of {', '.join(RUNG_KEYS)}")
        for key in entry:
            if key not in RUNG_KEYS:
                raise error(f"sweep {source}: {where}: unknown key {key!r}; allowed: {', '.join(RUNG_KEYS)}")
        lengths = entry.get("seq_len")
        if (
            not isinstance(lengths, list)
            or not lengths
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in lengths)
            or sorted(set(lengths)) != lengths
        ):
            raise error(f"sweep {source}: {where}.seq_len: must be increasing lengths > 0, got {lengths!r}")
        given = [key for key in ("solved_below", "solved_below_baseline") if key in entry]
        if len(given) != 1 or not _positive(entry[given[0]]):
            raise error(
                f"sweep {source}: {where}: give one of solved_below (a test loss) or solved_below_baseline "
                f"(a fraction of the memoryless baseline), a number > 0"
            )
        caps = entry.get("max_steps")
        if caps is not None and (
            not isinstance(caps, list)
            or len(caps) != len(lengths)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in caps)
        ):
            raise error(f"sweep {source}: {where}.max_steps: one step count > 0 per length, got {caps!r}")
        stop_at = entry.get("stop_at", 1.0)
        if not _positive(stop_at) or stop_at > 1:
            raise error(f"sweep {source}: {where}.stop_at: a fraction of the threshold in (0, 1], got {stop_at!r}")
        tasks[task] = TaskLadder(
            tuple(lengths),
            entry.get("solved_below"),
            entry.get("solved_below_baseline"),
            None if caps is None else tuple(caps),
            float(stop_at),
        )
    timing = data.get("timing") or {}
    if not isinstance(timing, dict):
        raise error(f"sweep {source}: ladder.timing: must be a mapping of run settings")
    if timing:
        if timing.get("task") not in tasks or "seq_len" not in timing:
            raise error(f"sweep {source}: ladder.timing: must name a ladder task and a seq_len")
        try:
            build_config(dict(timing))
        except ConfigError as problem:
            raise error(f"sweep {source}: ladder.timing: {problem}") from None
    return Ladder(tasks, dict(timing))


# -- the climb ------------------------------------------------------------------------------
def _done(row: RunRow | None, config: RunConfig) -> bool:
    """Whether a lower rung's run has its result: finished as asked, or ended for good."""
    if row is None:
        return False
    return row.done(config.steps, config.target_metric, config.target_loss) or row.status in ("diverged", "failed")


def gates(runs: Sequence[PlannedRun], latest: Callable[[PlannedRun], RunRow | None]) -> dict[str, tuple[Gate, str]]:
    """For each rung run above its model's lowest planned rung: go, wait or stop, and why.

    ``latest`` gives a run's latest row (None: never started).
    """
    by_model: dict[str, dict[int, list[tuple[Rung, PlannedRun]]]] = {}
    for run in runs:
        if run.rung is not None:
            by_model.setdefault(run.rung.model, {}).setdefault(run.rung.seq_len, []).append((run.rung, run))
    result: dict[str, tuple[Gate, str]] = {}
    for levels in by_model.values():
        lengths = sorted(levels)
        gate: tuple[Gate, str] = ("go", "")
        for below, length in itertools.pairwise(lengths):
            if gate[0] == "go":
                lower = levels[below]
                rows = [latest(run) for _, run in lower]
                if not all(_done(row, run.config) for row, (_, run) in zip(rows, lower)):
                    finished = sum(_done(row, run.config) for row, (_, run) in zip(rows, lower))
                    gate = ("wait", f"waits for T={below} ({finished} of {len(lower)} seeds done)")
                elif not any(rung.solved(None if row is None else row.final) for row, (rung, _) in zip(rows, lower)):
                    gate = ("stop", f"not run: every seed failed at T={below}")
            elif gate[0] == "wait":
                gate = ("wait", f"waits for T={below}")
            for _, run in levels[length]:
                result[run.identity] = gate
    return result
