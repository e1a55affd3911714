"""One driver per sweep: a lock beside the database and one in the sweep's checkpoint folder, each
held (``fcntl.flock``) for as long as the driver runs, and released by the kernel when it dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from bptt.files import ignored_folder
from bptt.store import DatabaseError
from bptt.store.schema import name_max


class SweepLockedError(RuntimeError):
    """Another driver is running this sweep on the same database or the same checkpoint folder."""


def _hold(path: Path, held_by: str) -> Any:
    handle = open(path, "w")  # noqa: SIM115 (held open: the lock lives as long as the handle)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SweepLockedError(f"{held_by} (lock {path} is held)") from None
    return handle


def lock_sweep(root: Path, name: str) -> Any:
    """Hold the lock of the sweep's checkpoint folder until the returned handle is closed."""
    folder = root / name
    ignored_folder(root)  # run state, kept out of the user's git repository
    folder.mkdir(exist_ok=True)
    return _hold(folder / ".lock", f"sweep {name!r} is already running in {folder}")


def lock_database(db_path: str | Path, name: str) -> Any:
    """Hold the sweep's lock beside its database until the returned handle is closed: one driver per
    sweep and database, whatever checkpoint folder each is given."""
    path = Path(os.path.abspath(db_path))
    lock = path.with_name(f"{path.name}.sweep-{name}.lock")
    if len(os.fsencode(lock.name)) > name_max(path.parent):
        raise DatabaseError(
            f"--db: the lock file beside {path.name} for sweep {name!r} would be named longer than this "
            f"filesystem takes ({name_max(path.parent)} bytes); give the database or the sweep a shorter name"
        )
    return _hold(lock, f"sweep {name!r} is already running on {db_path}")
