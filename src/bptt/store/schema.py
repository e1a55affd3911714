"""The results database's tables, and what a file must be before bptt reads or writes it.

A path given as ``--db`` is looked at before anything is written to it: it
must be absent (a new database), an empty file, or a SQLite file holding
exactly bptt's tables. A directory, a device such as /dev/null, a text file, a
truncated or damaged SQLite file and another program's database are refused
with a ``DatabaseError`` naming the path, and left as they were: the look is
taken through a read-only connection that creates no journal files.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    identity TEXT NOT NULL,
    sweep TEXT,
    label TEXT NOT NULL,
    task TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    steps_done INTEGER NOT NULL DEFAULT 0,
    final TEXT,
    checkpoint TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    train_seconds REAL NOT NULL DEFAULT 0,
    pid INTEGER,
    host TEXT
);
CREATE INDEX IF NOT EXISTS runs_identity ON runs (identity);
CREATE INDEX IF NOT EXISTS runs_sweep ON runs (sweep);
CREATE TABLE IF NOT EXISTS steps (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    loss REAL,
    grad_norm REAL,
    clipped INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS evals (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    split TEXT NOT NULL,
    loss REAL,
    metric REAL,
    PRIMARY KEY (run_id, step, split)
);
CREATE TABLE IF NOT EXISTS gradient_profiles (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    hidden TEXT NOT NULL,
    cell TEXT,
    PRIMARY KEY (run_id, step)
);
"""

#: Each table of a results database and the columns bptt reads from it.
TABLES = {
    "runs": (
        "id",
        "identity",
        "sweep",
        "label",
        "task",
        "config",
        "status",
        "reason",
        "steps_done",
        "final",
        "checkpoint",
        "created_at",
        "updated_at",
        "finished_at",
        "train_seconds",
        "pid",
        "host",
    ),
    "steps": ("run_id", "step", "loss", "grad_norm", "clipped", "skipped"),
    "evals": ("run_id", "step", "split", "loss", "metric"),
    "gradient_profiles": ("run_id", "step", "hidden", "cell"),
}
#: Tables SQLite keeps for itself (AUTOINCREMENT counters, ANALYZE statistics).
SQLITE_TABLES = ("sqlite_sequence", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3", "sqlite_stat4")
SQLITE_HEADER = b"SQLite format 3\x00"


class DatabaseError(ValueError):
    """A results database that cannot be used: the message names the path and what is wrong."""


def read_only_connection(path: Path) -> sqlite3.Connection:
    """A connection that can only read, and creates no file beside the database.

    In WAL mode a reader needs the ``-shm`` index; when no writer has the
    database open (no ``-wal`` file) the file is opened as immutable, which
    reads it without creating one.
    """
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    if not Path(f"{path}-wal").exists():
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)


def _describe(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def inspect_database(path: Path, read_only: bool) -> bool:
    """Whether ``path`` already holds a results database; a ``DatabaseError`` when it cannot be one.

    Absent and empty files are new databases, except for reading (``read_only``),
    where they hold nothing to read.
    """
    if not path.exists():
        if read_only:
            raise DatabaseError(f"--db: no database at {path}")
        return False
    if path.is_dir():
        raise DatabaseError(f"--db: {path} is a directory, not a database file")
    if not path.is_file():
        raise DatabaseError(f"--db: {path} is not a regular file")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        raise DatabaseError(f"--db: cannot read {path} ({error.strerror})") from None
    if not header:
        if read_only:
            raise DatabaseError(f"--db: {path} is an empty file, not a database")
        return False
    if header != SQLITE_HEADER:
        raise DatabaseError(f"--db: {path} is not a SQLite database")
    try:
        connection = read_only_connection(path)
        try:
            names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            columns = {
                name: {row[1] for row in connection.execute(f"PRAGMA table_info({name})")}
                for name in TABLES
                if name in names
            }
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise DatabaseError(f"--db: {path} is a damaged or unreadable SQLite file ({_describe(error)})") from None
    if not names:
        if read_only:
            raise DatabaseError(f"--db: {path} holds no tables, not a bptt results database")
        return False
    foreign = [name for name in names if name not in TABLES and name not in SQLITE_TABLES]
    missing = [name for name in TABLES if name not in names]
    if foreign or missing:
        shown = ", ".join(sorted(names))
        raise DatabaseError(
            f"--db: {path} is another program's SQLite database (tables: {shown}); bptt reads and writes only its own"
        )
    for name, wanted in TABLES.items():
        lacking = [column for column in wanted if column not in columns[name]]
        if lacking:
            raise DatabaseError(
                f"--db: {path}: table {name!r} lacks column(s) {', '.join(lacking)}; not a bptt results database"
            )
    return True


def check_writable(path: Path) -> None:
    """Refuse a database that cannot be written: its folder (WAL mode puts two files beside it) and the file."""
    folder = path.absolute().parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise DatabaseError(f"--db: {existing} is not a folder")
    for target in (existing, path) if path.exists() else (existing,):
        if not os.access(target, os.W_OK):
            why = "read-only file system" if _read_only_filesystem(target) else "permission denied"
            raise DatabaseError(f"--db: cannot write {target} ({why})")


def _read_only_filesystem(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
