"""The sweep driver: decides what to run, hands runs to a backend, and alone writes the database.

Nothing lost, nothing twice:

* A run is found again by its sweep name and ``RunConfig.identity()``. A row
  that finished with ``steps_done >= steps`` is skipped; so is one that
  diverged (a result, not an accident) or failed (unless ``retry_failed``).
  A row that was interrupted, or finished with fewer steps than now asked
  for, is taken up again (same row) from its checkpoint.
* The driver owns every row it runs (its pid and host), so a driver killed
  with ``kill -9`` leaves rows the next ``Database`` open marks
  ``interrupted``; local workers die with their driver (see ``worker``).
* Workers train with no database. The driver commits their spool files in
  order (``worker`` explains why that keeps history and checkpoints in step)
  and writes the final row when the run's outcome arrives. The checkpoint
  path it records is the run folder's own, never one a spool file names.
* A spool file that cannot be read is quarantined with a warning. When that
  leaves a gap in a run's history, the run is not recorded as done: one taken
  up again starts from step 0 (its checkpoint is past the gap, so it is
  quarantined too), and one that ends with the gap is recorded as failed.
* Before each attempt the driver writes a new owner token into the run's
  folder; a worker of an older attempt stops at its next flush.
* One driver per sweep at a time, whatever its checkpoint folder: a lock
  beside the database (``<db>.sweep-<name>.lock``) and one in the sweep's folder.
* Run folders are the database's own (``bptt.store.folders``): before anything
  runs, a folder of another database, one no row names, or a symbolic link on the
  way to one is refused in one line. A new run's folder is emptied only when its
  ``run.json`` names this database, and never through a symbolic link.
* On a length ladder (``bptt.sweeps.ladder``) a rung's runs wait until the rung
  below has its results, and are not run when every seed failed there. Waiting
  runs are decided again after each run ends; they are started, as every run,
  in the spec's order.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bptt.store import Database
from bptt.store.database import sweeps_folder_for
from bptt.store.folders import (
    check_run_folder,
    check_unclaimed,
    claim_root,
    clear_own_folder,
    folder_owner,
    mark_run_folder,
    own_run_parts,
    refuse_links,
)
from bptt.store.schema import check_writable
from bptt.sweeps.backends import Backend, WorkerLost, make_backend
from bptt.sweeps.decisions import Decision, SweepSummary, decide, run_statuses
from bptt.sweeps.locks import lock_database, lock_sweep
from bptt.sweeps.spec import PlannedRun, SweepSpec
from bptt.sweeps.timing import SweepClock
from bptt.sweeps.worker import Assignment, Outcome, SpoolWarning, claim_folder, pending, quarantine
from bptt.training.progress import ProgressBar

#: A run whose worker process dies without having moved on is started again once, from its
#: checkpoint. A death after progress is not counted: a crash of one pool process brings
#: down every process of the pool, and the runs beside the one that crashed did nothing wrong.
ATTEMPTS = 2


def checkpoint_root_for(db_path: str | Path) -> Path:
    """Run folders live next to the database by default (``bptt.store.database.sweeps_folder_for``)."""
    return sweeps_folder_for(db_path)


def run_directory(root: str | Path, sweep: str, identity: str) -> Path:
    return Path(root) / sweep / identity


@dataclass
class _Job:
    run: PlannedRun
    row_id: int
    directory: Path
    resume: bool
    attempts: int = 0
    crashes: int = 0  # worker deaths with no progress since the attempt began
    steps_at_submit: int = 0


class SweepDriver:
    """Runs the decisions of one sweep on a backend; see the module docstring."""

    clock: SweepClock | None = None  # says how the sweep goes while ``run`` runs

    def __init__(
        self,
        spec: SweepSpec,
        db: Database,
        backend: Backend,
        checkpoint_root: str | Path,
        *,
        progress: bool = True,
        on_outcome: Callable[[PlannedRun, Outcome], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.db = db
        self.backend = backend
        # Absolute: a worker may run in another working directory (Ray's are its own).
        self.root = Path(os.path.abspath(checkpoint_root))
        self.progress = progress
        self.on_outcome = on_outcome
        self.warn = warn or (lambda message: warnings.warn(message, SpoolWarning, stacklevel=2))
        self.order = {run.identity: index for index, run in enumerate(spec.runs)}  # the spec's order

    # -- the spool -----------------------------------------------------------------------
    def _steps_done(self, job: _Job) -> int:
        row = self.db.run(job.row_id)
        assert row is not None  # the driver made the row before the job
        return row.steps_done

    def commit(self, job: _Job) -> None:
        """Commit the run's spool files in order, deleting each after its commit."""
        for path, record in pending(job.directory, self.warn):
            if record["kind"] == "start":
                self.db.truncate_history(job.row_id, record["step"])
                self.db.record_progress(job.row_id, [], [], [], record["step"], record["train_seconds"], None)
            else:
                checkpoint = None if record["checkpoint"] is None else str(job.directory / "checkpoint.pt")
                self.db.record_progress(
                    job.row_id,
                    record["steps"],
                    record["evals"],
                    record["profiles"],
                    record["steps_done"],
                    record["train_seconds"],
                    checkpoint,
                )
            path.unlink()
            if self.clock is not None:
                self.clock.estimate.update(job.run.identity, record.get("steps_done", record.get("step")))

    # -- one run -------------------------------------------------------------------------
    def prepare(self, decision: Decision) -> _Job:
        config = decision.run.config.model_copy(update={"progress": False})
        directory = own_folder(self.root, self.spec.name, decision, self.db)
        if decision.row is None:
            clear_own_folder(directory)  # this database's, from a row that is gone
            row_id = self.db.create_run(
                config.identity(), config.label(), config.task, config.model_dump(), sweep=self.spec.name
            )
            mark_run_folder(directory, self.db.id, row_id, config.identity())
            return _Job(decision.run, row_id, directory, resume=False)
        if folder_owner(directory) is None:  # a folder of an older bptt, at its run's place: now marked
            mark_run_folder(directory, self.db.id, decision.row.id, config.identity())
        job = _Job(decision.run, decision.row.id, directory, resume=True)
        self.commit(job)  # what a killed driver left in the spool
        gap = self.db.first_missing_step(job.row_id)
        checkpoint = directory / "checkpoint.pt"
        if gap is not None and checkpoint.exists():
            quarantine(
                checkpoint, f"the history before it lacks step {gap}, so the run starts again from step 0", self.warn
            )
        self.db.claim_run(job.row_id, config.model_dump())
        return job

    def submit(self, job: _Job) -> Any:
        job.attempts += 1
        row = self.db.run(job.row_id)
        job.steps_at_submit = 0 if row is None else row.steps_done
        config = job.run.config.model_copy(update={"progress": False})
        owner = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        claim_folder(job.directory, owner)
        # A new run whose first worker died resumes too: its checkpoint is this row's own.
        assignment = Assignment(
            config.model_dump(),
            str(job.directory),
            job.resume or job.attempts > 1,
            self.backend.threads,
            owner,
            (socket.gethostname(), os.getpid()),
        )
        return self.backend.submit(assignment)

    def finish(self, job: _Job, outcome: Outcome) -> None:
        self.commit(job)
        gap = self.db.first_missing_step(job.row_id)
        if gap is not None and outcome.status in ("finished", "diverged"):
            outcome = dataclasses.replace(
                outcome,
                status="failed",
                final=None,
                reason=(
                    f"its history lacks step {gap} (a spool file could not be read); --retry-failed trains it again"
                ),
            )
        final = (
            None
            if outcome.final is None
            else dataclasses.replace(outcome.final, run_id=job.row_id, resumed_from=outcome.started_from)
        )
        self.db.finish_run(job.row_id, outcome.status, final, outcome.reason)
        if self.clock is not None:
            self.clock.ended(job.run.identity, outcome.steps_done)
        if self.on_outcome is not None:
            self.on_outcome(job.run, outcome)

    # -- the sweep -------------------------------------------------------------------------
    def _climb(self, waiting: dict[str, Decision], todo: list[Decision]) -> int:
        """Decide the waiting ladder runs again: those now ready join ``todo`` (in the spec's order),
        those the ladder stopped leave. Returns how many left for good (skipped)."""
        if not waiting:
            return 0
        skipped = 0
        for decision in decide(self.spec, self.db, only=set(waiting)):
            if decision.action == "wait":
                continue
            del waiting[decision.run.identity]
            if decision.action == "skip":
                skipped += 1
                if self.clock is not None:
                    self.clock.dropped(decision.run.identity)
            else:
                todo.append(decision)
        todo.sort(key=lambda d: self.order[d.run.identity])
        return skipped

    def run(self, decisions: list[Decision]) -> SweepSummary:
        started = time.perf_counter()
        todo = [d for d in decisions if d.action in ("new", "resume")]
        waiting = {d.run.identity: d for d in decisions if d.action == "wait"}
        skipped = len(decisions) - len(todo) - len(waiting)
        in_flight: dict[Any, _Job] = {}
        problems: list[tuple[str, str, str]] = []
        ran = 0
        bar = ProgressBar(len(todo) + len(waiting), f"sweep {self.spec.name}", enabled=self.progress)
        try:
            with bar:
                # the waiting rungs are planned too (the estimate is an upper bound); those a ladder stops leave it
                planned = [*todo, *waiting.values()]
                self.clock = SweepClock.of(self.spec.name, planned, skipped, bar, self.backend.capacity, self.progress)
                self.clock.tell()
                while todo or in_flight:
                    while todo and len(in_flight) < self.backend.capacity:
                        job = self.prepare(todo.pop(0))
                        in_flight[self.submit(job)] = job
                    done = self.backend.wait(list(in_flight), timeout=0.5)
                    for job in in_flight.values():
                        self.commit(job)
                    self.clock.tell()
                    for handle in done:
                        job = in_flight.pop(handle)
                        try:
                            outcome = self.backend.outcome(handle)
                        except WorkerLost as lost:
                            self.commit(job)
                            if self._steps_done(job) <= job.steps_at_submit:
                                job.crashes += 1
                            if job.crashes < ATTEMPTS:
                                in_flight[self.submit(job)] = job
                                continue
                            outcome = Outcome("failed", str(lost), self._steps_done(job), None, 0, 0.0)
                        self.finish(job, outcome)
                        ran += 1
                        if outcome.status != "finished":
                            problems.append((job.run.config.label(), outcome.status, outcome.reason or ""))
                            bar.show(problems=len(problems))
                        bar.advance(1)
                        stopped = self._climb(waiting, todo)
                        skipped += stopped
                        bar.advance(stopped)
                        if stopped:
                            self.clock.tell(now=True)  # the plan shrank
        except BaseException:
            # Ctrl-C or a driver error: stop the workers, keep what they flushed, mark the rest.
            self.backend.close(cancel=True)
            for job in in_flight.values():
                self.commit(job)
                self.db.finish_run(job.row_id, "interrupted", None, "sweep stopped before the run ended")
            raise
        self.backend.close()
        return SweepSummary(
            self.spec.name,
            len(decisions),
            skipped + len(waiting),
            ran,
            time.perf_counter() - started,
            run_statuses(self.db, self.spec),
            problems,
        )


def own_folder(root: Path, sweep: str, decision: Decision, db: Database) -> Path:
    """The run's folder, ``root/sweep/identity``, once it is known to be this database's (or absent);
    ``FolderError`` for a symbolic link on the way, or a folder of another database or run."""
    directory = refuse_links(root, sweep, decision.run.identity)
    row_id = None if decision.row is None else decision.row.id
    check_run_folder(directory, db.id, row_id, decision.run.identity, default_place=True)
    return directory


def run_sweep(
    spec: SweepSpec,
    db_path: str | Path,
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    threads: int | None = None,
    checkpoint_root: str | Path | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    on_outcome: Callable[[PlannedRun, Outcome], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> SweepSummary:
    """Run every run of ``spec`` not already done, recording them in the database at ``db_path``."""
    root = Path(checkpoint_root) if checkpoint_root is not None else checkpoint_root_for(db_path)
    if not Path(db_path).exists():  # before the new database is created: its name, then its folders
        check_writable(Path(db_path))
        if Path(os.path.abspath(root)) == sweeps_folder_for(db_path):
            check_unclaimed(Path(os.path.abspath(root)), Path(db_path))
    with Database(db_path) as db:
        locks = [lock_database(db_path, spec.name)]
        try:
            if Path(os.path.abspath(root)) == db.sweeps_folder:  # named after the database: its own
                claim_root(db.sweeps_folder, db.id, db.path, lambda: own_run_parts(db.runs()))
            refuse_links(root, spec.name)
            locks.append(lock_sweep(root, spec.name))
            decisions = decide(spec, db, retry_failed)
            if all(d.action in ("skip", "wait") for d in decisions):  # nothing to run: no backend to start
                return SweepSummary(spec.name, len(decisions), len(decisions), 0, 0.0, run_statuses(db, spec))
            for decision in decisions:  # every folder checked before anything runs (a waiting run's when it starts)
                if decision.action not in ("skip", "wait"):
                    own_folder(root, spec.name, decision, db)
            driver = SweepDriver(
                spec,
                db,
                make_backend(backend, workers, address, threads),
                root,
                progress=progress,
                on_outcome=on_outcome,
                warn=warn,
            )
            return driver.run(decisions)
        finally:
            for lock in reversed(locks):
                lock.close()
