"""What a sweep does with each planned run (``decide``: skip, start, resume or wait on the ladder), read
from the database's latest row of the same sweep and identity, and what a sweep reports when it ends."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from bptt.store import Database, RunRow
from bptt.sweeps.ladder import gates
from bptt.sweeps.spec import PlannedRun, SweepSpec

Action = Literal["skip", "new", "resume", "wait"]


@dataclass(frozen=True)
class Decision:
    run: PlannedRun
    action: Action
    row: RunRow | None
    note: str

    def describe(self) -> str:
        """What happens to the run, said once: ``new``, ``finished`` (skipped), ``resume: extend 4 -> 8 steps``,
        ``waits for T=500 (1 of 3 seeds done)``."""
        return self.note if self.action in ("new", "skip", "wait") else f"{self.action}: {self.note}"


@dataclass
class SweepSummary:
    name: str
    planned: int
    skipped: int
    ran: int
    seconds: float
    statuses: dict[str, int]
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (label, status, reason)

    @property
    def runs_per_minute(self) -> float:
        return 60.0 * self.ran / self.seconds if self.seconds > 0 else 0.0


def run_statuses(db: Database, spec: SweepSpec) -> dict[str, int]:
    """How many of the spec's runs stand at each status; ``not run`` for those with no row (a ladder
    run not reached, or stopped)."""
    statuses: Counter[str] = Counter()
    for run in spec.runs:
        rows = db.runs(sweep=spec.name, identity=run.identity)
        statuses[rows[-1].status if rows else "not run"] += 1
    return dict(statuses)


def decide(
    spec: SweepSpec, db: Database | None, retry_failed: bool = False, only: set[str] | None = None
) -> list[Decision]:
    """What each planned run needs, from the latest row of the same sweep and identity (no database: all new);
    ``only``: the identities to decide (the ladder still reads every run)."""
    latest: dict[str, RunRow | None] = {}
    for run in spec.runs:
        rows = [] if db is None else db.runs(sweep=spec.name, identity=run.identity)
        latest[run.identity] = rows[-1] if rows else None
    ladder = gates(spec.runs, lambda run: latest[run.identity]) if spec.ladder is not None else {}
    decisions = []
    for run in spec.runs:
        if only is not None and run.identity not in only:
            continue
        row = latest[run.identity]
        steps = run.config.steps
        gate, why = ladder.get(run.identity, ("go", ""))
        if row is None and gate != "go":
            decisions.append(Decision(run, "wait" if gate == "wait" else "skip", None, why))
        elif row is None:
            decisions.append(Decision(run, "new", None, "new"))
        elif row.done(steps, run.config.target_metric, run.config.target_loss):
            decisions.append(Decision(run, "skip", row, "finished"))
        elif row.status == "finished":
            decisions.append(Decision(run, "resume", row, f"extend {row.steps_done} -> {steps} steps"))
        elif row.status == "diverged":
            decisions.append(Decision(run, "skip", row, "diverged"))
        elif row.status == "failed" and not retry_failed:
            decisions.append(Decision(run, "skip", row, "failed (--retry-failed runs it again)"))
        elif row.status == "running":
            decisions.append(Decision(run, "skip", row, "running in another process"))
        else:
            decisions.append(Decision(run, "resume", row, f"{row.status} at step {row.steps_done}"))
    return decisions
