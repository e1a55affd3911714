"""What a run holds in its process while it trains: denormals flushed to zero, Ctrl-C deferred to a step boundary.

Ctrl-C (SIGINT) during ``Trainer.run`` does not cut a step in half. The first
one asks the run to stop: the step in hand finishes, the history is flushed,
a checkpoint of that step is written and the run ends with
``TrainingInterrupted`` (a ``KeyboardInterrupt``), so ``--resume`` continues
from exactly there. A second Ctrl-C while a step is still running stops at
once, as Ctrl-C always did (the last periodic checkpoint stands); while a
checkpoint is being written, every further Ctrl-C is only noted, so the file
is always written whole (it is written atomically in any case: see
``bptt.training.checkpoint``).

The handler is installed only in the main thread and only over Python's own
default: a process that set its own (a sweep's local worker ignores SIGINT and
leaves it to the driver) keeps it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import torch


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal floats as zero while training (restored afterwards).

    Vanishing gradients are exactly the values that fall into the denormal range
    (below 1.2e-38 in float32), where x86 arithmetic runs orders of magnitude
    slower; flushing them changes only values already far below any update.
    torch has no getter for the mode, so it is switched off afterwards.
    """
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(False)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run. ``run_id``: its row (None without a database, or before its first flush);
    ``step``: the steps it had done; ``saved_step``: the step of its checkpoint (None: none written),
    equal to ``step`` when it stopped at a step boundary."""

    def __init__(self, run_id: int | None, step: int, saved_step: int | None) -> None:
        super().__init__(f"run {run_id} stopped at step {step}")
        self.run_id = run_id
        self.step = step
        self.saved_step = saved_step

    def describe(self) -> str:
        """One clause: where the run stopped and what was saved."""
        if self.run_id is None:
            return f"stopped at step {self.step}, before its first checkpoint: nothing was saved"
        if self.saved_step is None:
            return (
                f"run {self.run_id} stopped at step {self.step}, before its first checkpoint; "
                "a resume starts it from step 0"
            )
        if self.saved_step == self.step:
            return f"run {self.run_id} stopped at step {self.step}, checkpoint saved"
        return (
            f"run {self.run_id} stopped during step {self.step + 1}; its last checkpoint is of step {self.saved_step}"
        )


class StopOnInterrupt:
    """While held (``with``), SIGINT asks for a stop (``requested``) instead of raising mid-step.

    A second SIGINT raises ``KeyboardInterrupt`` as usual, except inside ``saving()``,
    where every SIGINT is only noted. Not installed (and never ``requested``) outside the
    main thread or over a handler other than Python's default.
    """

    def __init__(self) -> None:
        self.requested = False
        self._saving = 0
        self._previous: Any = None

    def __enter__(self) -> StopOnInterrupt:
        self.requested = False
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    @property
    def installed(self) -> bool:
        return self._previous is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and not self._saving:
            raise KeyboardInterrupt
        self.requested = True

    @contextmanager
    def saving(self) -> Iterator[None]:
        """A stretch (a checkpoint being written) that no SIGINT interrupts."""
        self._saving += 1
        try:
            yield
        finally:
            self._saving -= 1
