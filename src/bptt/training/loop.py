"""The training loop: one run from a config, recorded in the results database.

Every random draw of a run comes from ``config.seed``: its initial weights
(``bptt.build``), its training batches (the data generator) and its dropout
masks (a stream of torch's default generator that the run keeps to itself:
each step runs inside ``torch.random.fork_rng``, so the caller's random state
is never touched). The data and dropout states are saved in every checkpoint,
so a run resumed from step k continues bit for bit as if it had never stopped
(on CPU, where the run also keeps its intra-op thread count: ``bptt.training.runtime``).

A run's row in the database is created with its first flush of history (the
first checkpoint, or its end if that comes sooner), so a run killed before it
has anything to keep leaves no row behind. ``--resume`` takes up the newest
row of the same sweep (None for runs trained on their own) and identity, and
reads the checkpoint from that run's own folder only.
"""

from __future__ import annotations

import contextlib
import errno
import math
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from bptt.build import make_model, make_task
from bptt.config import RunConfig, build_config, check_device
from bptt.modules import constrain, record_gradients
from bptt.store import Database, EvalRow, ProfileRow, RunSummary, StepRow
from bptt.tasks import Task, generator
from bptt.training.checkpoint import save_checkpoint
from bptt.training.divergence import divergence, final_state_norm
from bptt.training.evaluation import evaluate
from bptt.training.memory import check_memory
from bptt.training.optim import build_optimizer, clip_gradients
from bptt.training.progress import ProgressBar
from bptt.training.results import (
    NonFiniteGradientError,
    Progress,
    RunFailedError,
    RunResult,
    environment_failure,
    finite_or_none,
    run_summary,
)
from bptt.training.resume import load_into, own_run_folder, take_up
from bptt.training.runtime import StopOnInterrupt, Terminated, TrainingInterrupted, flush_denormals, intra_op_threads

#: The generator stream of a run's dropout masks (see ``bptt.build`` for the others).
DROPOUT_STREAM = 4


class Trainer:
    """Runs one config to its end, writing history and checkpoints as it goes."""

    def __init__(
        self,
        config: RunConfig,
        db: Database | None = None,
        *,
        sweep: str | None = None,
        checkpoint_dir: str | Path | None = None,
        on_step: Callable[[int, float], None] | None = None,
        task: Task | None = None,
        recorder: Callable[[Progress], None] | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.config = check_device(config)
        # Receives one line saying what ``run(resume=True)`` takes up ("resuming run 3 from step 194").
        self.announce = announce
        # Receives every flush of history, before its checkpoint is written (a sweep
        # worker trains with db=None and hands its history to the driver this way).
        self.recorder = recorder
        self.db = db
        self.sweep = sweep
        if checkpoint_dir is None and db is not None:
            checkpoint_dir = db.runs_folder
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir).absolute()
        self.on_step = on_step
        self.task = task if task is not None else make_task(config)
        check_memory(config, self.task)  # before the model and data sets take it
        self.model = make_model(config, self.task)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(config, self.params, self.model)
        self.data_generator = generator(config.seed, stream=0)
        # (CPU state, CUDA state or None): dropout draws from torch's default generators.
        self.dropout_state: tuple[torch.Tensor, torch.Tensor | None] = (
            generator(config.seed, DROPOUT_STREAM).get_state(),
            None,
        )
        self.val_set = self.task.eval_set("val")
        self.threads = torch.get_num_threads()  # the order of its sums on a CPU; a resume takes the checkpoint's
        self.step = 0
        self.train_seconds = 0.0
        self.cpu_seconds = 0.0  # this process's CPU time in the training steps (every thread)
        self.skipped = 0
        self.clipped = 0
        self.run_id: int | None = None
        self.saved_step: int | None = None  # the step of the run's newest checkpoint
        self._folder_checked: int | None = None  # the run whose folder was found to be its own
        self._stop = StopOnInterrupt()
        self.target_step: int | None = None  # the step whose evaluation first reached the target
        self.losses: list[float] = []
        self._steps: list[StepRow] = []
        self._evals: list[EvalRow] = []
        self._profiles: list[ProfileRow] = []

    # -- checkpoints -------------------------------------------------------------------
    def checkpoint_path(self) -> Path | None:
        if self.checkpoint_dir is None or self.run_id is None:
            return None
        return self.checkpoint_dir / f"run-{self.run_id}" / "checkpoint.pt"

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "data_generator": self.data_generator.get_state(),
            "dropout_rng": list(self.dropout_state),
            "train_seconds": self.train_seconds,
            "cpu_seconds": self.cpu_seconds,
            "skipped": self.skipped,
            "clipped": self.clipped,
            "threads": self.threads,
            "config": self.config.model_dump(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.step = state["step"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.data_generator.set_state(state["data_generator"])
        self.dropout_state = tuple(state["dropout_rng"])
        self.train_seconds = state["train_seconds"]
        self.cpu_seconds = state.get("cpu_seconds", 0.0)  # absent from checkpoints of older versions
        self.skipped = state["skipped"]
        self.clipped = state["clipped"]
        self.threads = int(state.get("threads", self.threads))
        self.model.trained_steps = self.step

    def resume_from(self, path: Path) -> None:
        """Load the checkpoint at ``path`` into this run; a ``CheckpointError`` when it is another run's
        or does not fit this one (``bptt.training.resume.load_into``)."""
        load_into(self, path)

    def flush(self, checkpoint: bool) -> None:
        """Write buffered history to the database and the recorder, then (optionally) the checkpoint.

        The history goes first: if the process dies between the two, the
        checkpoint is older than the history, and a resume drops the history
        past the checkpoint and recomputes it. The database names the
        checkpoint only once the file is whole, so a row that names one always
        had it written. No Ctrl-C cuts a flush short (see ``bptt.training.runtime``).
        """
        with self._stop.saving():
            self._flush(checkpoint)

    def _flush(self, checkpoint: bool) -> None:
        if self.db is not None and self.run_id is None and (self.step > 0 or self._steps):
            self.run_id = self.db.create_run(
                self.config.identity(),
                self.config.label(),
                self.config.task,
                self.config.model_dump(),
                sweep=self.sweep,
                steps_done=self.step,
                train_seconds=self.train_seconds,
            )
        path = self.checkpoint_path() if checkpoint else None
        if self.db is not None and self.run_id is not None:
            self.db.record_progress(
                self.run_id, self._steps, self._evals, self._profiles, self.step, self.train_seconds, None
            )
        if self.recorder is not None:
            self.recorder(
                Progress(
                    self._steps,
                    self._evals,
                    self._profiles,
                    self.step,
                    self.train_seconds,
                    None if path is None else str(path),
                )
            )
        self._steps, self._evals, self._profiles = [], [], []
        if path is not None:
            own_run_folder(self)
            save_checkpoint(path, self.state())
            self.saved_step = self.step
            if self.db is not None and self.run_id is not None:
                self.db.record_progress(self.run_id, [], [], [], self.step, self.train_seconds, str(path))

    # -- the run -----------------------------------------------------------------------
    def start(self, resume: bool) -> RunResult | None:
        """Take up an earlier row (``resume``), or leave the row to the first flush; a finished run
        that already reached ``steps`` is returned as it is (see ``bptt.training.resume``)."""
        return take_up(self, resume)

    def say(self, text: str) -> None:
        if self.announce is not None:
            self.announce(text)

    def train_step(self, record: bool) -> tuple[float, float, bool, bool]:
        """One optimiser step: (loss, gradient norm, clipped, skipped), its dropout drawn from the run's stream."""
        device = torch.device(self.config.device)
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.set_rng_state(self.dropout_state[0])
            if cuda:
                if self.dropout_state[1] is None:  # first step: seed this device's stream
                    torch.cuda.manual_seed(int(generator(self.config.seed, DROPOUT_STREAM).initial_seed()))
                else:
                    torch.cuda.set_rng_state(self.dropout_state[1], cuda[0])
            try:
                return self._train_step(record)
            finally:
                self.dropout_state = (torch.get_rng_state(), torch.cuda.get_rng_state(cuda[0]) if cuda else None)

    def _train_step(self, record: bool) -> tuple[float, float, bool, bool]:
        config = self.config
        batch = self.task.train_batch(config.batch_size, self.data_generator).to(config.device)
        self.optimizer.zero_grad(set_to_none=True)
        # With a record, the forward runs inside it too: engine "auto" then runs a loop that shows each step.
        with record_gradients(self.model) if record else contextlib.nullcontext() as recording:
            prediction = self.model(batch.inputs, batch.lengths)
            loss = self.task.loss(prediction, batch)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                return loss_value, float("nan"), False, True
            loss.backward()
        if recording is not None:
            by_lag = recording.by_lag("hidden")
            cells = None if recording.cell is None else recording.by_lag("cell")
            assert by_lag is not None  # the backward above ran through the recorded layer
            # Stored by step, each sequence aligned at its own last step (the by-lag profile, flipped).
            cell = None if cells is None else cells.flip(-1).tolist()
            self._profiles.append(ProfileRow(self.step + 1, by_lag.flip(-1).tolist(), cell))
        grad_norm, clipped = clip_gradients(self.params, config.clip_norm, config.clip_value)
        if not math.isfinite(grad_norm):  # only when an element is nan or inf: the norm itself never overflows
            if config.nonfinite == "raise":
                held = "nan" if math.isnan(grad_norm) else "inf"
                raise NonFiniteGradientError(f"the gradient holds {held} values at step {self.step + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            return loss_value, grad_norm, False, True
        self.optimizer.step()
        constrain(self.model)  # the layers' own constraints (e.g. IndRNN's bound on |u|)
        return loss_value, grad_norm, clipped, False

    def reached_target(self, metric: float, loss: float | None = None) -> bool:
        """Whether a validation metric reaches ``target_metric`` (at or below it for a loss-like
        metric, at or above it for an accuracy), or the validation loss ``target_loss`` (at or below)."""
        config = self.config
        if loss is not None and config.target_loss is not None and math.isfinite(loss) and loss <= config.target_loss:
            return True
        target = config.target_metric
        if target is None or not math.isfinite(metric):
            return False
        return metric >= target if self.task.higher_is_better else metric <= target

    def summary(self, status: str, test: tuple[float, float] | None, val: tuple[float, float] | None) -> RunSummary:
        return run_summary(self, status, test, val)

    def run(self, resume: bool = False) -> RunResult:
        """Train to ``config.steps`` (or the target metric). Ctrl-C stops at the next step boundary with
        a checkpoint of that step and raises ``TrainingInterrupted`` (see ``bptt.training.runtime``)."""
        done = self.start(resume)
        if done is not None:
            return done
        with flush_denormals(), intra_op_threads(self.threads), self._stop:
            return self._run()

    def _run(self) -> RunResult:
        config = self.config
        self.model.train()
        status, reason = "finished", None
        bar = ProgressBar(config.steps, f"{config.label()} on {config.task}", enabled=config.progress)
        bar.resume_at(self.step)
        try:
            with bar:
                while self.step < config.steps:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    record = config.record_every > 0 and (self.step + 1) % config.record_every == 0
                    loss, grad_norm, clipped, skipped = self.train_step(record)
                    self.train_seconds += time.perf_counter() - started
                    self.cpu_seconds += time.process_time() - cpu_started
                    self.step += 1
                    self.model.trained_steps = self.step
                    self.skipped += skipped
                    self.clipped += clipped
                    self.losses.append(loss)
                    self._steps.append(
                        StepRow(
                            self.step, finite_or_none(loss), finite_or_none(grad_norm), bool(clipped), bool(skipped)
                        )
                    )
                    if not math.isfinite(loss):
                        status, reason = "diverged", f"loss became {loss} at step {self.step}"
                        break
                    if self.step % config.eval_every == 0 or self.step == config.steps:
                        val_loss, val_metric = evaluate(self.model, self.task, self.val_set, config.device)
                        self._evals.append(EvalRow(self.step, "val", val_loss, val_metric))
                        bar.show(val_loss=val_loss)
                        if self.reached_target(val_metric, val_loss):
                            self.target_step = self.step
                            break
                    bar.advance(1, loss=loss)
                    if self.on_step is not None:
                        self.on_step(self.step, loss)
                    if self.step % config.checkpoint_every == 0:
                        self.flush(checkpoint=True)
                    if self._stop.requested:  # Ctrl-C: the step is whole, stop here
                        how = "the user (Ctrl-C)" if self._stop.signal_number == signal.SIGINT else "SIGTERM"
                        status, reason = "interrupted", f"stopped by {how} at step {self.step}"
                        break
        except KeyboardInterrupt as error:
            # A second Ctrl-C mid-step (batch drawn, optimizer stepped or not): no checkpoint
            # of this step, so a resume starts from the last one written.
            terminated = isinstance(error, Terminated)
            self._end_interrupted(
                checkpoint=False, reason="stopped by SIGTERM" if terminated else "stopped by the user"
            )
            number = signal.SIGTERM if terminated else signal.SIGINT
            raise TrainingInterrupted(self.run_id, self.step, self.saved_step, number) from error
        except BaseException as error:
            reason = f"{type(error).__name__}: {error}"
            recorded = self._record_failure(reason)
            if environment_failure(error):
                where = f"run {self.run_id}" if self.run_id is not None else "the run"
                raise RunFailedError(f"{where} at step {self.step}: {reason}{recorded}") from error
            raise
        if status == "interrupted":
            self._end_interrupted(checkpoint=True, reason=reason)
            raise TrainingInterrupted(self.run_id, self.step, self.saved_step, self._stop.signal_number)
        if status == "finished" and self.skipped * 2 > self.step:
            status = "diverged"
            reason = f"the gradient held nan or inf on {self.skipped} of {self.step} steps, all skipped"
        val = test = None
        if status == "finished":
            val = evaluate(self.model, self.task, self.val_set, config.device)
            test = evaluate(self.model, self.task, self.task.eval_set("test"), config.device)
            self._evals.append(EvalRow(self.step, "test", *test))
            norm = final_state_norm(self.model, self.val_set, config.device)
            reason = divergence(self.task, val[0], test[0], norm)
            status = "finished" if reason is None else "diverged"
        self.flush(checkpoint=status == "finished")
        final = self.summary(status, test, val)
        if self.db is not None and self.run_id is not None:
            self.db.finish_run(self.run_id, status, final, reason)
        return RunResult(self.run_id, status, reason, self.step, final, config, self.losses, self.model, self.task)

    def _end_interrupted(self, checkpoint: bool, reason: str | None) -> None:
        """Write what was trained (a checkpoint of this step when it is whole) and mark the row interrupted."""
        with self._stop.saving():  # a further Ctrl-C waits until the row says interrupted
            self.flush(checkpoint=checkpoint)
            if self.db is not None and self.run_id is not None:
                self.db.finish_run(self.run_id, "interrupted", None, reason)

    def _record_failure(self, reason: str) -> str:
        """Record the run as failed, as far as the machine lets it; say what could not be recorded."""
        try:
            self.flush(checkpoint=False)
            if self.db is not None and self.run_id is not None:
                self.db.finish_run(self.run_id, "failed", None, reason)
        except Exception as error:  # the disk that failed the run may refuse the record of it too
            full = (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "full" in str(error)
            why = "the disk is full" if full else f"{type(error).__name__}: {error}"
            return f" (not recorded in the database: {why}; the row reads interrupted when next opened)"
        return ""


def train(
    config: RunConfig | Mapping[str, Any],
    db: Database | None = None,
    *,
    resume: bool = False,
    progress: bool | None = None,
    **kwargs: Any,
) -> RunResult:
    """Train one run to ``config.steps`` and return it with its trained model (``result.model``);
    with ``resume``, continue the latest run of the same sweep and identity. ``config`` is a ``RunConfig``
    or a mapping of its settings, e.g. ``train({"task": "adding", "seq_len": 50, "cell": "lstm"})``.
    ``progress``: a progress bar (step, loss, ETA) on a terminal or in a notebook, as the config's
    ``progress`` says unless given (on by default); False: silent. ``on_step=f`` calls ``f(step, loss)``
    after every step; the other keyword arguments are ``Trainer``'s (``sweep``, ``checkpoint_dir``, ...).

    Without ``resume`` every call trains a new run, even when ``db`` holds a finished one with the same
    settings (``bptt train`` on the command line reports that one instead, unless ``--fresh``). Ctrl-C
    stops at the next step boundary, writes a checkpoint and raises ``TrainingInterrupted`` (a
    ``KeyboardInterrupt``); ``resume=True`` continues from that step."""
    if not isinstance(config, RunConfig):
        config = build_config(dict(config))
    if progress is not None:
        config = config.model_copy(update={"progress": bool(progress)})
    return Trainer(config, db, **kwargs).run(resume=resume)
