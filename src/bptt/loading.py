"""Models rebuilt from where they were left: a saved run (its config and checkpoint), or a user's factory function.

``bptt diagnose`` measures what these return; every failure is a ``SourceError``
whose message names the option (``--run``, ``--module``) and what went wrong.

A saved run's checkpoint is read from the run's own folder only: ``run-<id>/``
for a run trained on its own, ``<sweep>/<identity>/`` for a sweep's, found
through the path its row holds (resolved against the database's folder) or at
the database's default place for it. The folder must be the run's own
(``bptt.store.folders``): its ``run.json`` names this database and run, or it lies
at the database's default place; a path that climbs (``..``), passes a symbolic
link or names any other file is refused. The file is read as plain data in any
case (``bptt.training.checkpoint``), and must hold the run's settings.

A ``--module`` file is imported as Python runs a script: its own folder is on
``sys.path`` while it loads (so it can import a file beside it), and a
``sys.exit()`` in it is one line, not a silent exit.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from torch import nn

from bptt.build import make_model, make_task
from bptt.checks import brief
from bptt.config import RunConfig, build_config, on_this_machine
from bptt.models import SequenceModel
from bptt.store import Database, RunRow
from bptt.store.folders import FolderError, folder_owner, stored_path_climbs
from bptt.tasks import Task
from bptt.training.checkpoint import CheckpointError, load_checkpoint
from bptt.training.resume import check_settings


class SourceError(ValueError):
    """A run, checkpoint or factory that cannot be loaded; the message says which and why."""


def model_from_run(
    db: Database, run_id: int, announce: Callable[[str], None] | None = None
) -> tuple[RunConfig, Task, SequenceModel]:
    """Rebuild run ``run_id``'s model from its config and load its checkpoint's weights.

    A run trained on a device this machine lacks (a GPU) is loaded on the CPU, and the returned config
    says so; ``announce`` receives the one line that tells (default: a ``UserWarning``).
    """
    row = db.run(run_id)
    if row is None:
        known = ", ".join(str(r.id) for r in db.runs()) or "none"
        raise SourceError(f"--run: no run {run_id} in {db.path} (runs: {known})")
    path = checkpoint_of(db, row)
    if path is None:
        raise SourceError(
            f"--run: run {run_id} has no checkpoint on disk (status {row.status}, "
            f"checkpoint {row.checkpoint or 'never written'})"
        )
    config, moved = on_this_machine(build_config(row.config))
    if moved is not None:
        line = f"run {run_id} was {moved}"
        if announce is None:
            warnings.warn(line, stacklevel=2)
        else:
            announce(line)
    task = make_task(config)
    model = make_model(config, task)
    state = load_checkpoint(path)
    try:
        check_settings(path, state, config)
    except CheckpointError as error:
        raise SourceError(f"--run: {error}") from None
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()
        raise SourceError(
            f"--run: checkpoint {path} does not fit run {run_id}'s model "
            f"({first[0] if first else type(error).__name__})"
        ) from None
    model.trained_steps = int(state.get("step", 0))
    return config, task, model


def own_folders(row: RunRow) -> list[tuple[str, ...]]:
    """The last parts of the folders a run's checkpoint may lie in: ``run-<id>``, and for a sweep's run
    ``<sweep>/<identity>``."""
    folders: list[tuple[str, ...]] = [(f"run-{row.id}",)]
    if row.sweep is not None:
        folders.append((row.sweep, row.identity))
    return folders


def checkpoint_of(db: Database, row: RunRow) -> Path | None:
    """The run's checkpoint file inside its own folder, or None when there is none on disk.

    Raises ``SourceError`` when the row names a file outside the run's own folder.
    """
    folders = own_folders(row)
    defaults = [db.runs_folder / f"run-{row.id}"]
    if row.sweep is not None:
        defaults.append(db.sweeps_folder / row.sweep / row.identity)
    if row.checkpoint is not None:
        stored = Path(row.checkpoint)
        expected = " or ".join(".../" + "/".join(f) + "/checkpoint.pt" for f in folders)
        outside = SourceError(
            f"--run: run {row.id}'s row names the checkpoint {brief(str(stored))}, outside the run's own "
            f"folder ({expected}); refused"
        )
        if (
            stored.name != "checkpoint.pt"
            or stored_path_climbs(row.checkpoint)
            or not any(stored.parent.parts[-len(f) :] == f for f in folders)
        ):
            raise outside
        if stored.is_file():
            _check_own(stored.parent, db, row, default_place=stored.parent in defaults, outside=outside)
            return stored
    for folder in defaults:
        if (folder / "checkpoint.pt").is_file():
            _check_own(folder, db, row, default_place=True, outside=None)
            return folder / "checkpoint.pt"
    return None


def _check_own(folder: Path, db: Database, row: RunRow, *, default_place: bool, outside: SourceError | None) -> None:
    """Refuse a folder that is not the run's own: a symbolic link, another database's or run's, or (with no
    ``run.json``) one away from the database's default place."""
    try:
        if folder.is_symlink() or (folder.parent.is_symlink() and row.sweep is not None):
            raise FolderError(f"run folder {folder} is reached through a symbolic link; refused")
        owner = folder_owner(folder)
        if owner is None and not default_place:
            raise outside or FolderError(f"run folder {folder} is not the run's own; refused")
        if owner is not None and (
            owner.get("database") not in (db.id, None)
            or owner.get("run") != row.id
            or owner.get("identity") != row.identity
        ):
            raise FolderError(f"run folder {folder} belongs to another database or run, not run {row.id}; refused")
    except FolderError as error:
        raise SourceError(f"--run: {error}") from None


def module_from_factory(spec: str) -> nn.Module:
    """Call ``factory()`` from ``path/to/file.py:factory`` and return the module it builds."""
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name:
        raise SourceError(f"--module: expected path/to/file.py:factory, got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise SourceError(f"--module: file not found: {path}")
    module_name = f"_bptt_user_{path.stem}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise SourceError(f"--module: cannot import {path}")
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"--module: {path} is not UTF-8 text") from None
    source = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = source
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # as Python runs a script: a file beside it can be imported
    try:
        loader_spec.loader.exec_module(source)
        factory = getattr(source, name, None)
        if not callable(factory):
            raise SourceError(f"--module: {path} defines no callable {brief(name)}")
        try:
            built = factory()
        except (Exception, SystemExit) as error:
            raise SourceError(f"--module: {name}() failed: {_first_line(error)}") from None
    except SourceError:
        raise
    except (Exception, SystemExit) as error:  # the user's file: say what failed in it, in one line
        raise SourceError(f"--module: importing {path} failed: {_first_line(error)}") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    if not isinstance(built, nn.Module):
        raise SourceError(f"--module: {name}() must return a torch.nn.Module, got {type(built).__name__}")
    return built


def _first_line(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"it called sys.exit({brief(error.code)})"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
