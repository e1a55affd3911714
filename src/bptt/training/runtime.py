"""What a run holds in its process while it trains: denormals flushed to zero, its thread count, Ctrl-C and
SIGTERM deferred to a step boundary.

Ctrl-C (SIGINT) during ``Trainer.run`` does not cut a step in half, and neither
does SIGTERM (what ``timeout``, schedulers and containers send), which is treated
the same way: the run ends with ``TrainingInterrupted`` saying which signal it
was, and ``bptt train`` exits with 128 + the signal's number (130, 143). The first
one asks the run to stop: the step in hand finishes, the history is flushed,
a checkpoint of that step is written and the run ends with
``TrainingInterrupted`` (a ``KeyboardInterrupt``), so ``--resume`` continues
from exactly there. A second Ctrl-C while a step is still running stops at
once, as Ctrl-C always did (the last periodic checkpoint stands); while a
checkpoint is being written, every further Ctrl-C is only noted, so the file
is always written whole (it is written atomically in any case: see
``bptt.training.checkpoint``).

The handler is installed only in the main thread and only over Python's own
default (for SIGTERM: the system's, or ``raise_terminated``, which the CLI sets for
every command): a process that set its own (a sweep's local worker ignores both
and leaves them to the driver) keeps it.

A run's arithmetic on a CPU depends on its intra-op thread count: a large matrix
product or sum is split across threads, and a different split adds in a different
order (float32 sums then differ in their last bits). A run keeps the count it
started with (``intra_op_threads``), records it in its checkpoints, and a resume
trains at that count again, so a resumed run continues bit for bit whatever the
thread count of the process that resumes it.
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


@contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    """Run with ``count`` torch intra-op threads; the process's own count is restored afterwards."""
    previous = torch.get_num_threads()
    if count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises ``KeyboardInterrupt`` (see ``raise_terminated``)."""


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM handler that stops the program as Ctrl-C does, so every ``finally`` and cleanup runs."""
    raise Terminated


def signal_name(number: int) -> str:
    return "Ctrl-C" if number == signal.SIGINT else signal.Signals(number).name


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM: ``signal_number``) stopped a run. ``run_id``: its row (None without a database,
    or before its first flush); ``step``: the steps it had done; ``saved_step``: the step of its checkpoint
    (None: none written), equal to ``step`` when it stopped at a step boundary."""

    def __init__(
        self, run_id: int | None, step: int, saved_step: int | None, signal_number: int = signal.SIGINT
    ) -> None:
        super().__init__(f"run {run_id} stopped at step {step}")
        self.run_id = run_id
        self.step = step
        self.saved_step = saved_step
        self.signal_number = int(signal_number)

    @property
    def exit_code(self) -> int:
        """The shell's code for a program a signal stopped: 128 + its number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + self.signal_number

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


#: The handlers ``StopOnInterrupt`` replaces: Python's own, the system's default, and the CLI's SIGTERM one.
_DEFAULTS = {signal.SIGINT: (signal.default_int_handler,), signal.SIGTERM: (signal.SIG_DFL, raise_terminated)}


class StopOnInterrupt:
    """While held (``with``), SIGINT or SIGTERM asks for a stop (``requested``, ``signal_number``) instead
    of raising mid-step.

    A second one raises ``KeyboardInterrupt`` (``Terminated`` for SIGTERM) as usual, except inside
    ``saving()``, where every one is only noted. Not installed (and never ``requested``) outside the
    main thread; for each signal, only over its default handler (see ``_DEFAULTS``).
    """

    def __init__(self) -> None:
        self.requested = False
        self.signal_number = int(signal.SIGINT)
        self._saving = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnInterrupt:
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            for number, defaults in _DEFAULTS.items():
                if signal.getsignal(number) in defaults:
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}

    @property
    def installed(self) -> bool:
        return signal.SIGINT in self._previous

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and not self._saving:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        if not self.requested:
            self.signal_number = signum
        self.requested = True

    @contextmanager
    def saving(self) -> Iterator[None]:
        """A stretch (a checkpoint being written) that no SIGINT interrupts."""
        self._saving += 1
        try:
            yield
        finally:
            self._saving -= 1
