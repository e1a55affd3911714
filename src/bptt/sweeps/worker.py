"""What a sweep worker does: train one run with no database, handing its history to the driver.

Each run owns a folder, ``<checkpoint root>/<sweep>/<identity>/``, holding

    checkpoint.pt        the latest checkpoint (written atomically by the Trainer)
    progress/*.pkl       the spool: history the worker has flushed and the driver
                         has not yet committed to the database

At every flush the worker writes one spool file (atomically: a temporary name,
then a rename) *before* the checkpoint that follows it, which keeps the
Trainer's rule "history first, then the checkpoint" across processes: whatever
moment the driver or the worker is killed, every step up to the newest
checkpoint is either in the database or still in the spool. The driver commits
spool files in order and deletes each after its commit; committing one twice is
harmless (rows are keyed by run and step).

The first spool file of every attempt is a ``start`` record with the step the
attempt begins at (0, or the checkpoint's step), so the driver drops history a
dead attempt wrote past that checkpoint before the new history arrives.

On a cluster the folder must be on a filesystem the driver and every worker
share (the same path everywhere); the database stays on the driver.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from bptt.config import RunConfig
from bptt.store import EvalRow, ProfileRow, RunSummary, StepRow
from bptt.training.checkpoint import load_checkpoint
from bptt.training.loop import Progress, Trainer


@dataclass(frozen=True)
class Assignment:
    """A run as the driver hands it to a worker (plain data, so it pickles anywhere)."""

    config: dict[str, Any]
    directory: str
    resume: bool
    threads: int = 1


@dataclass(frozen=True)
class Outcome:
    """How a run ended on its worker. ``started_from``: the step this attempt began at."""

    status: str
    reason: str | None
    steps_done: int
    final: RunSummary | None
    started_from: int
    seconds: float
    host: str = field(default_factory=lambda: os.uname().nodename)


class Spool:
    """The run's progress folder: numbered, atomically written pickles."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory) / "progress"
        # Names sort in write order: this attempt's start time, then a counter.
        self._prefix = f"{time.time_ns():020d}"
        self._count = 0

    def put(self, record: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{self._prefix}-{self._count:06d}.pkl"
        self._count += 1
        tmp = self.directory / (name + f".tmp{os.getpid()}")
        tmp.write_bytes(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, self.directory / name)

    def progress(self, progress: Progress) -> None:
        self.put({"kind": "progress", **vars(progress)})


#: The rows a progress record holds, by key.
ROW_TYPES = {"steps": StepRow, "evals": EvalRow, "profiles": ProfileRow}


def pending(directory: str | Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The spool files of a run folder in write order, each with its record (for the driver).

    A progress record's rows come back as ``StepRow``, ``EvalRow`` and
    ``ProfileRow``, also from a spool that holds them as plain tuples in the
    same field order, so a folder a sweep left behind is committed whatever
    wrote it.
    """
    spool = Path(directory) / "progress"
    if not spool.is_dir():
        return
    for path in sorted(spool.glob("*.pkl")):
        record = pickle.loads(path.read_bytes())
        if record["kind"] == "progress":
            for key, row_type in ROW_TYPES.items():
                record[key] = [row if isinstance(row, row_type) else row_type(*row) for row in record[key]]
        yield path, record


class SweepTrainer(Trainer):
    """A Trainer with no database: checkpoints in the run's folder, history to the spool."""

    def __init__(self, config: RunConfig, directory: str | Path) -> None:
        self.spool = Spool(directory)
        super().__init__(config, None, checkpoint_dir=directory, recorder=self.spool.progress)
        self.started_from = 0

    def checkpoint_path(self) -> Path | None:
        assert self.checkpoint_dir is not None
        return self.checkpoint_dir / "checkpoint.pt"

    def start(self, resume: bool) -> None:
        path = self.checkpoint_path()
        if resume and path is not None and path.exists():
            self.load_state(load_checkpoint(path))
        self.started_from = self.step
        self.spool.put({"kind": "start", "step": self.step, "train_seconds": self.train_seconds})
        return None


def run_assignment(assignment: Assignment) -> Outcome:
    """Train one run to its end on this worker; never raises for a failed run."""
    started = time.perf_counter()
    torch.set_num_threads(max(1, assignment.threads))
    config = RunConfig(**assignment.config)
    trainer: SweepTrainer | None = None
    try:
        trainer = SweepTrainer(config, assignment.directory)
        result = trainer.run(resume=assignment.resume)
    except Exception as error:  # recorded by the driver, the sweep goes on
        step = 0 if trainer is None else trainer.step
        return Outcome("failed", f"{type(error).__name__}: {error}", step, None,
                       0 if trainer is None else trainer.started_from, time.perf_counter() - started)
    return Outcome(result.status, result.reason, result.steps_done, result.final, trainer.started_from,
                   time.perf_counter() - started)


# -- local worker processes ---------------------------------------------------------------
def _exit_when_orphaned(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.2)


def init_local_worker(parent: int) -> None:
    """Initializer of a local pool process: die with the driver, leave Ctrl-C to the driver.

    A worker that outlived a killed driver would go on writing checkpoints for a
    run the restarted sweep resumes; on Linux the kernel kills it with the driver
    (PR_SET_PDEATHSIG), elsewhere a watchdog thread notices within 0.2 s.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
