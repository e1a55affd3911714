"""Run folders tied to their database: each folder bptt keeps checkpoints in belongs to one database.

A database keeps its runs' checkpoints in folders beside it (``Database.runs_folder``,
``<stem>-runs/run-<id>/``, for runs trained on their own; ``<sweep>/<identity>/`` under
``Database.sweeps_folder`` or a sweep's ``--checkpoint-dir``). Two databases with the same
stem (``a.db`` and ``a.sqlite``), or a new database where a deleted one's folders are
left behind, would otherwise share ``run-1/``: a new run 1 would overwrite the old
checkpoint, and ``--resume`` would continue the other database's model. So:

* the folders named after a database (``<stem>-runs/``, ``<stem>-sweeps/``) hold
  ``database.json`` naming the database's id (``Database.id``), written when bptt
  creates them (with a ``.gitignore`` of ``*``). A database whose folder names
  another is refused (``FolderError``, one line) before anything trains. A folder of
  an older bptt, with no ``database.json``, is taken as the database's own when every
  run folder in it is one the database has a row for.
* every run folder holds ``run.json``: the database's id, the run's row id and its
  identity. A checkpoint is written into and read from a folder whose ``run.json``
  names this database and run, or (a folder of an older bptt) one at the database's
  default place, which is then given its ``run.json``.
* no folder below the root (``run-<id>``, ``<sweep>``, ``<identity>``) may be a
  symbolic link, and no stored path may climb out (``..``): bptt neither writes,
  reads nor deletes through one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bptt.files import ignored_folder, write_text

DATABASE_FILE = "database.json"
RUN_FILE = "run.json"


class FolderError(ValueError):
    """A run folder that is not this database's, or one reached through a symbolic link: the message says
    which and what to do."""


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is not running either.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def runs_folder_for(db_path: str | Path) -> Path:
    """Where runs trained on their own keep their folders: ``<db stem>-runs/`` next to the database (absolute)."""
    path = Path(os.path.abspath(db_path))
    return path.parent / (path.stem + "-runs")


def sweeps_folder_for(db_path: str | Path) -> Path:
    """Where sweeps keep their run folders by default: ``<db stem>-sweeps/`` next to the database (absolute).

    A database whose name already says sweeps (``sweeps.db``) keeps them in ``<db stem>-runs/``
    (``sweeps-runs/``, beside its own runs' ``run-<id>/`` folders), unless a ``sweeps-sweeps/``
    written by an earlier bptt is there: that one is still used, so its runs resume.
    """
    path = Path(os.path.abspath(db_path))
    folder = path.parent / (path.stem + "-sweeps")
    try:
        earlier = folder.is_dir()
    except OSError:  # a name too long for the filesystem: refused where the database is opened
        earlier = False
    if path.stem.lower().endswith("sweeps") and not earlier:
        return runs_folder_for(path)
    return folder


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def refuse_links(root: Path, *parts: str) -> Path:
    """``root / parts...``, refusing any of ``parts`` (the folders below the root) that is a symbolic link."""
    path = Path(root)
    for part in parts:
        if part in ("", ".", "..") or "/" in part:
            raise FolderError(f"run folder {path}/{part}: not a plain folder name")
        path = path / part
        if path.is_symlink():
            raise FolderError(f"run folder {path} is a symbolic link; bptt writes run folders only where they lie")
    return path


def run_marker(database_id: str | None, run_id: int, identity: str) -> dict[str, Any]:
    return {"database": database_id, "run": run_id, "identity": identity}


def mark_run_folder(folder: Path, database_id: str | None, run_id: int, identity: str) -> None:
    """Write ``run.json`` into ``folder`` (created if absent): it belongs to this database's run."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / RUN_FILE, json.dumps(run_marker(database_id, run_id, identity)))


def folder_owner(folder: Path) -> dict[str, Any] | None:
    """What ``run.json`` in ``folder`` says (None: no such file, a folder of an older bptt)."""
    return _read_json(folder / RUN_FILE)


def check_run_folder(
    folder: Path, database_id: str | None, run_id: int | None, identity: str, *, default_place: bool
) -> bool:
    """Whether ``folder`` is this database's folder for the run (``run_id`` None: a run not yet created).

    True: its ``run.json`` names this database and run, or it has none and lies at the database's
    default place (``default_place``: a folder of an older bptt). False: it does not exist. Raises
    ``FolderError`` for a symbolic link or a folder of another database or run.
    """
    if folder.is_symlink():
        raise FolderError(f"run folder {folder} is a symbolic link; bptt writes run folders only where they lie")
    if not folder.exists():
        return False
    owner = folder_owner(folder)
    if owner is None:
        if default_place and run_id is not None:
            return True
        raise FolderError(
            f"run folder {folder} holds files no row of this database names (left by a database that is "
            "gone, or another's); move it away, or give another --checkpoint-dir"
        )
    if database_id is not None and owner.get("database") not in (database_id, None):
        raise FolderError(
            f"run folder {folder} belongs to another database (id {str(owner.get('database'))[:12]}); "
            "move it away, or give this database another name or --checkpoint-dir"
        )
    if (run_id is not None and owner.get("run") != run_id) or owner.get("identity") != identity:
        raise FolderError(
            f"run folder {folder} belongs to run {owner.get('run')} of other settings, not run {run_id}; "
            "move it away, or give another --checkpoint-dir"
        )
    return True


def clear_own_folder(folder: Path) -> None:
    """Empty a run folder bptt owns for a new start: its files and folders, never through a symbolic link."""
    if folder.is_symlink() or not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


def claim_root(
    root: Path, database_id: str | None, database: Path, own_runs: Callable[[], set[tuple[str, ...]]]
) -> None:
    """Make ``root`` (a folder named after the database) this database's, or refuse it.

    Absent: created with ``database.json`` and a ``.gitignore``. Holding ``database.json``: it must name
    this database. Without one (an older bptt's): taken when every run folder in it is one the
    database has a row for (``own_runs()``: ``("run-3",)`` or ``("sweep", "identity")`` for each row),
    else refused: the folders would be another database's, or a deleted one's.
    """
    if database_id is None:  # an unmigrated database, read-only: nothing to claim with
        return
    marker = root / DATABASE_FILE
    if not root.exists():
        ignored_folder(root)
        write_text(marker, json.dumps({"database": database_id, "path": str(database)}))
        return
    recorded = _read_json(marker)
    if recorded is not None:
        if recorded.get("database") != database_id:
            raise FolderError(
                f"--db: {root} belongs to another database ({recorded.get('path', 'unknown')}); "
                f"give {database.name} another name, or move {root.name}/ away"
            )
        return
    owned = own_runs()
    stray = [path for path in _run_folders(root) if path.relative_to(root).parts not in owned]
    if stray:
        raise FolderError(
            f"--db: {root} holds run folders that {database.name} has no row for ({stray[0].relative_to(root)}); "
            f"they are another database's, or a deleted one's: move {root.name}/ away, or give {database.name} "
            "another name"
        )
    write_text(marker, json.dumps({"database": database_id, "path": str(database)}))


def own_run_parts(rows: list[Any]) -> set[tuple[str, ...]]:
    """The run folders the database's rows (``RunRow``) may have, relative to a root named after it."""
    parts: set[tuple[str, ...]] = set()
    for row in rows:
        parts.add((f"run-{row.id}",))
        if row.sweep is not None:
            parts.add((row.sweep, row.identity))
    return parts


def check_unclaimed(root: Path, database: Path) -> None:
    """Before a new database is created: refuse when ``root`` (a folder named after it) already holds
    another database's folders (its ``database.json``, or run folders): a deleted database's, or one of the
    same stem (``a.db`` beside ``a.sqlite``). Nothing is created to find out."""
    if not root.is_dir():
        return
    recorded = _read_json(root / DATABASE_FILE)
    stray = _run_folders(root)
    if recorded is not None or stray:
        owner = recorded.get("path", "another database") if recorded is not None else "a database that is gone"
        raise FolderError(
            f"--db: {root} holds the run folders of {owner}; a new {database.name} would share them. "
            f"Give it another name, or move {root.name}/ away"
        )


def _run_folders(root: Path) -> list[Path]:
    """The run folders under ``root``: ``run-<id>/``, and ``<sweep>/<identity>/`` (folders holding a checkpoint,
    a spool or an owner file)."""
    found = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.is_symlink():
            continue
        if entry.name.startswith("run-") and entry.name[4:].isdigit():
            found.append(entry)
            continue
        for inner in sorted(entry.iterdir()):
            if inner.is_dir() and any((inner / name).exists() for name in ("checkpoint.pt", "progress", "owner")):
                found.append(inner)
    return found


def stored_path_climbs(stored: str) -> bool:
    """Whether a stored checkpoint path holds ``..`` (or is not in normal form): it could lead anywhere."""
    return ".." in Path(stored).parts or os.path.normpath(stored) != stored
