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
"""
from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
from typing import Any, Protocol

from bptt.config import ConfigError
from bptt.sweeps.worker import Assignment, Outcome, init_local_worker, run_assignment


class WorkerLost(RuntimeError):
    """The process running a run died (not the run failing: that is an Outcome)."""


class Backend(Protocol):
    name: str
    capacity: int  # runs in flight at once

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
        return futures.ProcessPoolExecutor(self.capacity, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=init_local_worker, initargs=(os.getpid(),))

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
        if self._started:
            if address:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            else:
                # A private instance on this machine: no dashboard, nothing to reach outside.
                ray.init(address="local", num_cpus=workers or default_workers(), include_dashboard=False,
                         logging_level="ERROR", log_to_driver=False)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.capacity = workers or cpus
        self.threads = threads
        # The driver decides what a lost run becomes, so Ray does not retry on its own.
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_assignment)
        self._outstanding: set[Any] = set()

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
            for handle in self._outstanding:
                self.ray.cancel(handle, force=True)
        if self._started:
            self.ray.shutdown()


def make_backend(name: str, workers: int | None, address: str | None, threads: int | None) -> Backend:
    if name == "local":
        return LocalBackend(workers or default_workers(), threads)
    if name == "ray":
        return RayBackend(workers, address, threads or 1)
    raise ValueError(f"backend must be one of local, ray, got {name!r}")
