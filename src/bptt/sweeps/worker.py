"""What a sweep worker does: train one run with no database, handing its history to the driver.

Each run owns a folder, ``<checkpoint root>/<sweep>/<identity>/``, holding

    checkpoint.pt        the latest checkpoint (written atomically by the Trainer)
    owner                which attempt of which driver may write here (JSON)
    progress/*.json      the spool: history the worker has flushed and the driver
                         has not yet committed to the database
    progress/quarantine/ spool files that could not be read, moved aside

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

Spool files are JSON, read back field by field into ``StepRow``, ``EvalRow``
and ``ProfileRow``: nothing in the folder is ever unpickled, and a file that
does not parse (a ``.pkl`` of an older bptt included) is moved to
``progress/quarantine/`` with a warning instead of stopping the sweep.

A worker writes only while the ``owner`` file names its own attempt: a driver
that takes a run over writes a new one, and a worker left over from a killed
driver then stops at its next flush. On the driver's machine a worker also
stops within a fraction of a second of the driver's death.

On a cluster the folder must be on a filesystem the driver and every worker
share (the same path everywhere); the database stays on the driver.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import numbers
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from bptt.config import RunConfig
from bptt.files import write_text
from bptt.store import EvalRow, ProfileRow, RunSummary, StepRow
from bptt.store.database import process_alive
from bptt.training.loop import Progress, Trainer
from bptt.training.runtime import intra_op_threads

OWNER_FILE = "owner"
QUARANTINE = "quarantine"


class SpoolWarning(UserWarning):
    """A spool file that could not be read was moved to quarantine."""


class NotOwnerError(RuntimeError):
    """Another attempt owns the run's folder now: this worker stops writing."""


@dataclass(frozen=True)
class Assignment:
    """A run as the driver hands it to a worker (plain data, so it travels anywhere).

    owner: the attempt's token, which the run folder's ``owner`` file must hold
    for the worker to write there (None: no check); driver: (host, pid) of the
    driver, which a worker on the same host outlives by at most a fraction of a second.
    """

    config: dict[str, Any]
    directory: str
    resume: bool
    threads: int = 1
    owner: str | None = None
    driver: tuple[str, int] | None = None


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


def claim_folder(directory: str | Path, token: str) -> None:
    """Make ``token`` the owner of a run folder (the driver, before it hands the run out)."""
    write_text(Path(directory) / OWNER_FILE, json.dumps({"owner": token}))


def folder_owner(directory: str | Path) -> str | None:
    try:
        return json.loads((Path(directory) / OWNER_FILE).read_text(encoding="utf-8"))["owner"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Spool:
    """The run's progress folder: numbered, atomically written JSON records."""

    def __init__(self, directory: str | Path, owner: str | None = None) -> None:
        self.run_folder = Path(directory)
        self.directory = self.run_folder / "progress"
        self.owner = owner
        # Names sort in write order: this attempt's start time, then a counter.
        self._prefix = f"{time.time_ns():020d}"
        self._count = 0

    def check_owner(self) -> None:
        if self.owner is not None and folder_owner(self.run_folder) != self.owner:
            raise NotOwnerError(f"run folder {self.run_folder} belongs to another attempt now")

    def put(self, record: dict[str, Any]) -> None:
        """Write one record; rows (``StepRow`` ...) are written as lists of their fields, in field order."""
        self.check_owner()
        name = f"{self._prefix}-{self._count:06d}.json"
        self._count += 1
        write_text(self.directory / name, json.dumps(record, default=_fields))

    def progress(self, progress: Progress) -> None:
        self.put({"kind": "progress", **vars(progress)})


def _fields(row: Any) -> list[Any]:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return [getattr(row, f.name) for f in dataclasses.fields(row)]
    raise TypeError(f"a spool record cannot hold a {type(row).__name__}")


# -- reading a spool back (the driver) ------------------------------------------------------
def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count, got {value!r}")
    return value


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _flag(value: Any) -> bool:
    if value not in (True, False, 0, 1):
        raise ValueError(f"expected true or false, got {value!r}")
    return bool(value)


def _curves(value: Any) -> list[list[float]]:
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise ValueError("expected a list of lists of numbers")
    curves = [[_number(x) for x in row] for row in value]
    if any(x is None for row in curves for x in row):
        raise ValueError("expected numbers in a gradient profile, got null")
    return cast(list[list[float]], curves)


def parse_record(data: Any) -> dict[str, Any]:
    """A spool record from its JSON value, every field checked; ValueError, TypeError or KeyError if malformed."""
    if not isinstance(data, dict):
        raise ValueError("not a mapping")
    if data["kind"] == "start":
        return {"kind": "start", "step": _count(data["step"]), "train_seconds": _number(data["train_seconds"]) or 0.0}
    if data["kind"] != "progress":
        raise ValueError(f"unknown kind {data['kind']!r}")
    evals = []
    for step, split, loss, metric in data["evals"]:
        if split not in ("val", "test"):
            raise ValueError(f"unknown split {split!r}")
        evals.append(EvalRow(_count(step), split, _number(loss), _number(metric)))
    checkpoint = data["checkpoint"]
    if checkpoint is not None and not isinstance(checkpoint, str):
        raise ValueError("checkpoint must be a path or null")
    return {
        "kind": "progress",
        "steps": [
            StepRow(_count(step), _number(loss), _number(norm), _flag(clipped), _flag(skipped))
            for step, loss, norm, clipped, skipped in data["steps"]
        ],
        "evals": evals,
        "profiles": [
            ProfileRow(_count(step), _curves(hidden), None if cell is None else _curves(cell))
            for step, hidden, cell in data["profiles"]
        ],
        "steps_done": _count(data["steps_done"]),
        "train_seconds": _number(data["train_seconds"]) or 0.0,
        "checkpoint": checkpoint,
    }


def _read(path: Path) -> dict[str, Any]:
    if path.suffix != ".json":
        raise ValueError("a pickle from an older bptt, which is never unpickled")
    try:
        return parse_record(json.loads(path.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not JSON ({error})") from None
    except (KeyError, TypeError) as error:
        raise ValueError(f"malformed record ({type(error).__name__}: {error})") from None


def quarantine(path: Path, why: str, warn: Callable[[str], None] | None = None) -> Path:
    """Move a file of a run folder to ``quarantine/`` beside it, with a warning saying ``why``; returns where it went."""
    folder = path.parent / QUARANTINE
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    os.replace(path, target)
    message = f"{path}: {why}; moved to {folder}/"
    if warn is None:
        warnings.warn(message, SpoolWarning, stacklevel=2)
    else:
        warn(message)
    return target


def pending(directory: str | Path, warn: Callable[[str], None] | None = None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The spool files of a run folder in write order, each with its record (for the driver).

    A progress record's rows come back as ``StepRow``, ``EvalRow`` and
    ``ProfileRow``. A file that cannot be read is quarantined (see ``quarantine``)
    and skipped; ``warn`` receives the warning (default: ``warnings.warn``).
    """
    spool = Path(directory) / "progress"
    if not spool.is_dir():
        return
    files = sorted((p for p in spool.iterdir() if p.suffix in (".json", ".pkl") and p.is_file()), key=lambda p: p.stem)
    for path in files:
        try:
            record = _read(path)
        except (OSError, ValueError) as error:
            quarantine(path, f"could not be read ({error})", warn)
            continue
        yield path, record


class SweepTrainer(Trainer):
    """A Trainer with no database: checkpoints in the run's folder, history to the spool."""

    def __init__(self, config: RunConfig, directory: str | Path, owner: str | None = None) -> None:
        self.spool = Spool(directory, owner)
        super().__init__(config, None, checkpoint_dir=directory, recorder=self.spool.progress)
        self.started_from = 0

    def checkpoint_path(self) -> Path | None:
        assert self.checkpoint_dir is not None
        return self.checkpoint_dir / "checkpoint.pt"

    def start(self, resume: bool) -> None:
        path = self.checkpoint_path()
        self.spool.check_owner()
        for leftover in self.spool.directory.glob("*.tmp*"):  # from a worker killed mid-write
            leftover.unlink(missing_ok=True)
        if resume and path is not None and path.exists():
            self.resume_from(path)
        self.started_from = self.step
        self.spool.put({"kind": "start", "step": self.step, "train_seconds": self.train_seconds})
        return


def _stop_with_driver(driver: tuple[str, int] | None, finished: threading.Event) -> None:
    """On the driver's host, end this worker process as soon as the driver is gone."""
    if driver is None or driver[0] != socket.gethostname():
        return
    pid = driver[1]

    def watch() -> None:
        while not finished.wait(0.1):
            if not process_alive(pid):
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def run_assignment(assignment: Assignment) -> Outcome:
    """Train one run to its end on this worker; never raises for a failed run."""
    started = time.perf_counter()
    finished = threading.Event()
    _stop_with_driver(assignment.driver, finished)
    trainer: SweepTrainer | None = None
    try:
        config = RunConfig(**assignment.config)
        # The run starts at the sweep's thread count (a resume at its checkpoint's); the process's own comes back.
        with intra_op_threads(max(1, assignment.threads)):
            trainer = SweepTrainer(config, assignment.directory, assignment.owner)
            result = trainer.run(resume=assignment.resume)
    except NotOwnerError as error:
        return Outcome(
            "interrupted",
            str(error),
            0 if trainer is None else trainer.step,
            None,
            0 if trainer is None else trainer.started_from,
            time.perf_counter() - started,
        )
    except Exception as error:  # recorded by the driver, the sweep goes on
        step = 0 if trainer is None else trainer.step
        return Outcome(
            "failed",
            f"{type(error).__name__}: {error}",
            step,
            None,
            0 if trainer is None else trainer.started_from,
            time.perf_counter() - started,
        )
    finally:
        finished.set()
    return Outcome(
        result.status,
        result.reason,
        result.steps_done,
        result.final,
        trainer.started_from,
        time.perf_counter() - started,
    )


# -- local worker processes ---------------------------------------------------------------
def _exit_when_orphaned(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.2)


def init_local_worker(parent: int) -> None:
    """Initializer of a local pool process: die with the driver, leave Ctrl-C and SIGTERM to the driver.

    A worker that outlived a killed driver would go on writing checkpoints for a
    run the restarted sweep resumes; on Linux the kernel kills it with the driver
    (PR_SET_PDEATHSIG), elsewhere a watchdog thread notices within 0.2 s.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
