"""Taking up an earlier run: ``--resume`` continues the newest row of the same sweep and identity.

One owner per run. The checkpoint is read first (a refusal writes nothing), then the
row is claimed in one transaction, and only if it is still as read (``Database.claim_run``):
of two processes resuming the same run at once, one takes it up and the other is refused
(``RunInUseError``, one line). A "running" row
belongs to a live process (rows of dead ones read "interrupted" once the database is
open): it is neither taken over nor trained a second time beside it; ``--resume`` is
refused until that process ends.

A finished run that already reached its steps (or target) comes back as it is, with
its trained model; an interrupted or shorter finished one continues from its
checkpoint. The checkpoint is read from the run's own folder only, a folder this
database's run owns (``bptt.store.folders``), and must hold the settings of the row it
continues (``check_settings``): a checkpoint of other settings is refused by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bptt.config import SCHEDULE_FIELDS, RunConfig
from bptt.store import RunRow, RunSummary
from bptt.store.folders import check_run_folder, claim_root, folder_owner, mark_run_folder, own_run_parts, refuse_links
from bptt.training.checkpoint import CheckpointError, load_checkpoint
from bptt.training.results import RunResult

if TYPE_CHECKING:
    from bptt.training.loop import Trainer

#: The statuses a resume takes a row up from.
RESUMABLE = ("finished", "interrupted")


class RunInUseError(ValueError):
    """The run ``--resume`` would take up is being trained by another process right now."""


def check_settings(path: Path, state: dict[str, Any], config: RunConfig) -> None:
    """Refuse a checkpoint whose recorded settings are not the run's (schedule settings aside): it is
    another run's, and continuing it would train one model under another's name."""
    saved = state.get("config")
    if not isinstance(saved, dict):
        return  # a checkpoint written without its config (converted from other code): nothing to compare
    wanted = config.model_dump()
    for name, value in wanted.items():
        if name in SCHEDULE_FIELDS or name not in saved or saved[name] == value:
            continue
        raise CheckpointError(
            f"checkpoint {path}: trained with {name} {saved[name]!r:.40}, but this run has {name} {value!r:.40}: "
            "it is another run's; refused"
        )


def load_into(trainer: Trainer, path: Path) -> None:
    """Load the checkpoint at ``path`` into ``trainer``; a ``CheckpointError`` when it holds another run's
    settings or does not fit this run."""
    state = load_checkpoint(path)
    check_settings(path, state, trainer.config)
    try:
        trainer.load_state(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        text = str(error).strip().splitlines()
        raise CheckpointError(
            f"checkpoint {path}: does not fit this run ({type(error).__name__}: {text[0] if text else ''})"
        ) from None


def own_run_folder(trainer: Trainer, row: RunRow | None = None) -> None:
    """Make sure the run's folder is this database's run's before a checkpoint is read from or written into
    it: no symbolic link, no other database's or run's ``run.json``; a folder without one is given one.
    Raises ``FolderError`` otherwise. Runs without a database (a sweep's worker) are the driver's to check."""
    if trainer.db is None or trainer.run_id is None or trainer.checkpoint_dir is None:
        return
    if trainer._folder_checked == trainer.run_id:
        return
    folder = refuse_links(trainer.checkpoint_dir, f"run-{trainer.run_id}")
    identity = row.identity if row is not None else trainer.config.identity()
    default_place = trainer.checkpoint_dir == trainer.db.runs_folder
    check_run_folder(folder, trainer.db.id, trainer.run_id, identity, default_place=default_place)
    if folder_owner(folder) is None:
        mark_run_folder(folder, trainer.db.id, trainer.run_id, identity)
    trainer._folder_checked = trainer.run_id


def take_up(trainer: Trainer, resume: bool) -> RunResult | None:
    """Take up an earlier row for ``trainer`` (``resume``), or leave the row to its first flush
    (None); a finished run that already reached ``steps`` is returned as it is."""
    db = trainer.db
    if db is None:
        return None
    if trainer.checkpoint_dir == db.runs_folder:  # before anything trains: the folder is this database's
        claim_root(db.runs_folder, db.id, db.path, lambda: own_run_parts(db.runs()))
    if not resume:
        return None
    previous = db.latest_run(trainer.config.identity(), trainer.sweep)
    if previous is not None and previous.status == "running":
        raise RunInUseError(
            f"--resume: run {previous.id} is being trained by another process right now; wait for it to end "
            "(or stop it), or leave out --resume to train a new run"
        )
    if previous is None or previous.status not in RESUMABLE:
        trainer.say(
            "--resume: no earlier run with these settings; starting afresh"
            if previous is None
            else f"--resume: run {previous.id} is {previous.status} (only finished and interrupted runs "
            "are taken up); starting a new run afresh"
        )
        return None
    trainer.run_id = previous.id
    path = trainer.checkpoint_path()
    assert path is not None
    own_run_folder(trainer, previous)
    if previous.done(trainer.config.steps, trainer.config.target_metric, trainer.config.target_loss):
        trainer.say(f"run {previous.id} already finished at step {previous.steps_done}; nothing more to train")
        if path.is_file():  # the trained model comes back with the result
            trainer.resume_from(path)
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
    try:
        if path.is_file():
            trainer.resume_from(path)
        elif previous.checkpoint is not None:
            raise CheckpointError(
                f"--resume: run {previous.id} ({previous.status} at step {previous.steps_done}) "
                f"has no checkpoint at {path} any more; leave out --resume to start it afresh"
            )
        if not db.claim_run(previous.id, trainer.config.model_dump(), seen=previous):
            raise RunInUseError(
                f"--resume: run {previous.id} was taken up by another process a moment ago; wait for it to end, "
                "or leave out --resume to train a new run"
            )
    except BaseException:
        trainer.run_id = None
        raise
    # A run that never reached a checkpoint is taken up from step 0.
    trainer.saved_step = trainer.step if path.is_file() else None
    trainer.say(
        f"resuming run {previous.id} from step {trainer.step}"
        + ("" if path.is_file() else " (it had no checkpoint yet)")
    )
    db.truncate_history(previous.id, trainer.step)
    for leftover in path.parent.glob(path.name + ".tmp*"):  # from a process killed mid-write
        leftover.unlink(missing_ok=True)
    return None
