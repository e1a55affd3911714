"""Models rebuilt from where they were left: a saved run (its config and checkpoint), or a user's factory function.

``bptt diagnose`` measures what these return; every failure is a ``SourceError``
whose message names the option (``--run``, ``--module``) and what went wrong.

A saved run's checkpoint is read from the run's own folder only: ``run-<id>/``
for a run trained on its own, ``<sweep>/<identity>/`` for a sweep's, found
through the path its row holds (resolved against the database's folder) or at
the database's default place for it. A row naming any other file is refused,
and the file is read as plain data in any case (``bptt.training.checkpoint``).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from torch import nn

from bptt.build import make_model, make_task
from bptt.config import RunConfig, build_config, on_this_machine
from bptt.models import SequenceModel
from bptt.store import Database, RunRow
from bptt.tasks import Task
from bptt.training.checkpoint import load_checkpoint


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
    if row.checkpoint is not None:
        stored = Path(row.checkpoint)
        if stored.name != "checkpoint.pt" or not any(stored.parent.parts[-len(f) :] == f for f in folders):
            expected = " or ".join(".../" + "/".join(f) + "/checkpoint.pt" for f in folders)
            raise SourceError(
                f"--run: run {row.id}'s row names the checkpoint {stored}, outside the run's own "
                f"folder ({expected}); refused"
            )
        if stored.is_file():
            return stored
    defaults = [db.runs_folder / f"run-{row.id}" / "checkpoint.pt"]
    if row.sweep is not None:
        defaults.append(db.sweeps_folder / row.sweep / row.identity / "checkpoint.pt")
    return next((path for path in defaults if path.is_file()), None)


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
    try:
        loader_spec.loader.exec_module(source)
    except Exception as error:  # the user's file: say what failed in it, in one line
        raise SourceError(f"--module: importing {path} failed: {_first_line(error)}") from None
    factory = getattr(source, name, None)
    if not callable(factory):
        raise SourceError(f"--module: {path} defines no callable {name!r}")
    try:
        built = factory()
    except Exception as error:
        raise SourceError(f"--module: {name}() failed: {_first_line(error)}") from None
    if not isinstance(built, nn.Module):
        raise SourceError(f"--module: {name}() must return a torch.nn.Module, got {type(built).__name__}")
    return built


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
