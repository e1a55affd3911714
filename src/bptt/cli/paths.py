"""Outputs checked before any work: a file or folder the command will write must be writable now.

Nothing is created to find out, so a refused command leaves the disk as it was.
A refusal is a usage error: one line naming the option, exit code 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import click


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    return path


def _why(path: Path) -> str:
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "read-only file system" if read_only else "permission denied"


def writable_folder(path: str | Path, option: str) -> Path:
    """``path`` as a folder to write in: it exists and is writable, or can be created where it is."""
    path = Path(path)
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise click.UsageError(f"{option}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise click.UsageError(f"{option}: cannot write in {existing} ({_why(existing)})")
    return path


def writable_file(path: str | Path, option: str) -> Path:
    """``path`` as a file to write: a writable regular file, or a new one in a writable folder."""
    path = Path(path)
    if path.is_dir():
        raise click.UsageError(f"{option}: {path} is a folder, not a file")
    if path.exists():
        if not path.is_file():
            raise click.UsageError(f"{option}: {path} is not a regular file")
        if not os.access(path, os.W_OK):
            raise click.UsageError(f"{option}: cannot write {path} ({_why(path)})")
        return path
    writable_folder(path.parent, option)
    return path
