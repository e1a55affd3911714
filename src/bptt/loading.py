"""Models rebuilt from where they were left: a saved run (its config and checkpoint), or a user's factory function.

``bptt diagnose`` measures what these return; every failure is a ``SourceError``
whose message names the option (``--run``, ``--module``) and what went wrong.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from torch import nn

from bptt.build import make_model, make_task
from bptt.config import RunConfig, build_config
from bptt.models import SequenceModel
from bptt.store import Database
from bptt.tasks import Task
from bptt.training.checkpoint import load_checkpoint


class SourceError(ValueError):
    """A run, checkpoint or factory that cannot be loaded; the message says which and why."""


def model_from_run(db: Database, run_id: int) -> tuple[RunConfig, Task, SequenceModel]:
    """Rebuild run ``run_id``'s model from its config and load its checkpoint's weights."""
    row = db.run(run_id)
    if row is None:
        known = ", ".join(str(r.id) for r in db.runs()) or "none"
        raise SourceError(f"--run: no run {run_id} in {db.path} (runs: {known})")
    if not row.checkpoint or not Path(row.checkpoint).is_file():
        raise SourceError(f"--run: run {run_id} has no checkpoint on disk (status {row.status}, "
                          f"checkpoint {row.checkpoint or 'never written'})")
    config = build_config(row.config)
    task = make_task(config)
    model = make_model(config, task)
    state = load_checkpoint(row.checkpoint)
    if "model" not in state:
        raise SourceError(f"--run: checkpoint {row.checkpoint} holds no 'model' state")
    model.load_state_dict(state["model"])
    model.trained_steps = int(state.get("step", 0))
    return config, task, model


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
    source = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = source
    loader_spec.loader.exec_module(source)
    factory = getattr(source, name, None)
    if not callable(factory):
        raise SourceError(f"--module: {path} defines no callable {name!r}")
    built = factory()
    if not isinstance(built, nn.Module):
        raise SourceError(f"--module: {name}() must return a torch.nn.Module, got {type(built).__name__}")
    return built
