"""Taking up an earlier run: ``--resume`` continues the newest row of the same sweep and identity.

A "running" row belongs to a live process (rows of dead ones read "interrupted" once
the database is open), so it is never taken over. A finished run that already reached
its steps (or target) comes back as it is, with its trained model; an interrupted or
shorter finished one continues from its checkpoint, read from the run's own folder only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bptt.store import RunSummary
from bptt.training.checkpoint import CheckpointError
from bptt.training.results import RunResult

if TYPE_CHECKING:
    from bptt.training.loop import Trainer


def take_up(trainer: Trainer, resume: bool) -> RunResult | None:
    """Take up an earlier row for ``trainer`` (``resume``), or leave the row to its first flush
    (None); a finished run that already reached ``steps`` is returned as it is."""
    if trainer.db is None or not resume:
        return None
    previous = trainer.db.latest_run(trainer.config.identity(), trainer.sweep)
    # A "running" row belongs to a live process (rows of dead ones read "interrupted"
    # once the database is open), so it is never taken over.
    if previous is None or previous.status not in ("finished", "interrupted"):
        trainer.say(
            "--resume: no earlier run with these settings; starting afresh"
            if previous is None
            else f"--resume: run {previous.id} is {previous.status} (only finished and interrupted runs "
            "are taken up); starting a new run afresh"
        )
        return None
    if previous.done(trainer.config.steps, trainer.config.target_metric, trainer.config.target_loss):
        trainer.say(f"run {previous.id} already finished at step {previous.steps_done}; nothing more to train")
        trainer.run_id = previous.id
        done = trainer.checkpoint_path()
        if done is not None and done.is_file():  # the trained model comes back with the result
            trainer.resume_from(done)
        return RunResult(
            previous.id,
            previous.status,
            previous.reason,
            previous.steps_done,
            previous.final or RunSummary(),
            trainer.config,
            model=trainer.model,
            task=trainer.task,
        )
    trainer.run_id = previous.id
    path = trainer.checkpoint_path()
    assert path is not None
    if path.is_file():
        trainer.resume_from(path)
    elif previous.checkpoint is not None:
        trainer.run_id = None
        raise CheckpointError(
            f"--resume: run {previous.id} ({previous.status} at step {previous.steps_done}) "
            f"has no checkpoint at {path} any more; leave out --resume to start it afresh"
        )
    # else: the run never reached a checkpoint; this row is taken up from step 0.
    trainer.saved_step = trainer.step if path.is_file() else None
    trainer.say(
        f"resuming run {previous.id} from step {trainer.step}"
        + ("" if path.is_file() else " (it had no checkpoint yet)")
    )
    trainer.db.claim_run(previous.id, trainer.config.model_dump())
    trainer.db.truncate_history(previous.id, trainer.step)
    for leftover in path.parent.glob(path.name + ".tmp*"):  # from a process killed mid-write
        leftover.unlink(missing_ok=True)
    return None
