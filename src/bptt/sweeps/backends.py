"""Where a sweep's runs execute: a local process pool, or a Ray cluster.

Both backends do one thing: run ``worker.run_assignment`` somewhere and hand
back its ``Outcome``. Neither touches the database; the driver does.

Why Ray core tasks and not Ray Tune: a sweep here is a fixed grid, and the
project already owns what Tune would add. Run identity, skipping finished
runs, resuming from checkpoints and recording results live in the results
database and the run folders; Tune would keep a second copy of each (its
experiment folder, trial checkpoints, ``Tuner.restore``) that could disagree
with the first, and it brings search algorithms and schedulers a grid does not
use (plus the ``ray[tune]`` dependencies). One remote function per run, one
CPU each, is all the cluster needs to do.

A local Ray instance (no ``--address``) is the driver's own: its session
lives in a private temporary folder that is removed when the sweep ends (or,
after a ``kill -9``, by the next sweep), its usage statistics are off, and
its processes end with the driver. Ray's head always starts its API server
process (``dashboard.py``); with the dashboard disabled it serves no pages and
listens on 127.0.0.1 only.
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
import multiprocessing
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from bptt.config import ConfigError
from bptt.store.database import process_alive
from bptt.sweeps.worker import Assignment, Outcome, init_local_worker, run_assignment


class WorkerLost(RuntimeError):
    """The process running a run died (not the run failing: that is an Outcome)."""


class Backend(Protocol):
    name: str
    capacity: int  # runs in flight at once
    threads: int  # torch threads per run

    def submit(self, assignment: Assignment) -> Any: ...
    def wait(self, handles: list[Any], timeout: float) -> list[Any]: ...
    def outcome(self, handle: Any) -> Outcome: ...
    def close(self, cancel: bool = False) -> None: ...


def default_workers() -> int:
    return os.cpu_count() or 1


class LocalBackend:
    """A pool of ``workers`` spawned processes on this machine, each with ``threads`` torch threads.

    One thread per run by default: the recurrent models of a sweep are small, so
    runs side by side use the cores better than threads inside one run, and
    intra-op threads on oversubscribed cores are ruinous (on a loaded 2-core
    machine, 2 threads per run ran a sweep 8x slower than 1).
    """

    name = "local"

    def __init__(self, workers: int, threads: int | None = None) -> None:
        self.capacity = workers
        self.threads = threads or 1
        self._pool = self._start()

    def _start(self) -> futures.ProcessPoolExecutor:
        # spawn, not fork: the driver has torch (and its thread pools) loaded already.
        return futures.ProcessPoolExecutor(
            self.capacity,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_local_worker,
            initargs=(os.getpid(),),
        )

    def submit(self, assignment: Assignment) -> futures.Future:
        try:
            return self._pool.submit(run_assignment, assignment)
        except futures.process.BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            return self._pool.submit(run_assignment, assignment)

    def wait(self, handles: list[futures.Future], timeout: float) -> list[futures.Future]:
        done, _ = futures.wait(handles, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        return list(done)

    def outcome(self, handle: futures.Future) -> Outcome:
        try:
            return handle.result()
        except futures.process.BrokenProcessPool as error:
            raise WorkerLost(f"worker process died ({error})") from None

    def close(self, cancel: bool = False) -> None:
        if cancel:
            # Processes first: shutdown() alone would wait for the runs in flight.
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.kill()
        self._pool.shutdown(wait=True, cancel_futures=cancel)


#: Session folders of local Ray instances: ``bptt-ray-<driver pid>-<random>``, short enough for Ray's
#: socket paths (at most 107 characters on Linux).
RAY_FOLDER_PREFIX = "bptt-ray-"


def _ray_parent() -> Path:
    return Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())


def remove_stale_ray_folders() -> list[Path]:
    """Remove the session folders of local Ray instances whose driver is gone; return them."""
    removed = []
    for folder in _ray_parent().glob(RAY_FOLDER_PREFIX + "*"):
        found = re.match(rf"{RAY_FOLDER_PREFIX}(\d+)-", folder.name)
        if found and folder.is_dir() and not process_alive(int(found.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class RayBackend:
    """Ray core tasks, one CPU each, on the cluster at ``address`` or on a local Ray instance."""

    name = "ray"

    def __init__(self, workers: int | None, address: str | None = None, threads: int = 1) -> None:
        try:
            import ray  # optional (the ray extra): imported only when this backend is used
        except ImportError:
            raise ConfigError("--backend ray: ray is not installed; pip install 'bptt[ray]'") from None
        self.ray = ray
        self._started = not ray.is_initialized()
        self.session_folder: Path | None = None
        self._environment: list[str] = []  # variables set here, unset again by close()
        if self._started:
            self._set_environment({"RAY_USAGE_STATS_ENABLED": "0"})
            if address:
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            else:
                # A private instance on this machine: no dashboard, nothing to reach outside.
                remove_stale_ray_folders()
                self.session_folder = Path(
                    tempfile.mkdtemp(prefix=f"{RAY_FOLDER_PREFIX}{os.getpid()}-", dir=_ray_parent())
                )
                try:
                    ray.init(
                        address="local",
                        num_cpus=workers or default_workers(),
                        include_dashboard=False,
                        logging_level=logging.ERROR,
                        log_to_driver=False,
                        _temp_dir=str(self.session_folder),
                    )
                except Exception as error:
                    self.close()
                    first = str(error).strip().splitlines()
                    raise ConfigError(
                        f"--backend ray: a local Ray instance did not start "
                        f"({first[0] if first else type(error).__name__})"
                    ) from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.capacity = workers or cpus
        self.threads = threads
        # The driver decides what a lost run becomes, so Ray does not retry on its own.
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_assignment)
        self._outstanding: set[Any] = set()

    def _set_environment(self, values: dict[str, str]) -> None:
        """Set variables Ray reads, unless the user set them; ``close`` unsets them again."""
        for name, value in values.items():
            if name not in os.environ:
                self._environment.append(name)
                os.environ[name] = value

    def submit(self, assignment: Assignment) -> Any:
        handle = self._remote.remote(assignment)
        self._outstanding.add(handle)
        return handle

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        done, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        if done:  # collect every finished one, not only the first
            done, _ = self.ray.wait(handles, num_returns=len(handles), timeout=0)
        return done

    def outcome(self, handle: Any) -> Outcome:
        self._outstanding.discard(handle)
        try:
            return self.ray.get(handle)
        except self.ray.exceptions.RayError as error:
            raise WorkerLost(f"ray worker lost ({type(error).__name__}: {str(error).splitlines()[0]})") from None

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for handle in getattr(self, "_outstanding", ()):
                self.ray.cancel(handle, force=True)
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        if self.session_folder is not None:
            shutil.rmtree(self.session_folder, ignore_errors=True)
        for name in self._environment:
            os.environ.pop(name, None)
        self._environment = []


def make_backend(name: str, workers: int | None, address: str | None, threads: int | None) -> Backend:
    if name == "local":
        return LocalBackend(workers or default_workers(), threads)
    if name == "ray":
        return RayBackend(workers, address, threads or 1)
    raise ValueError(f"backend must be one of local, ray, got {name!r}")
