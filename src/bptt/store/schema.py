"""The results database's tables, and what a file must be before bptt reads or writes it.

A path given as ``--db`` is looked at before anything is written to it: it
must be absent (a new database), an empty file, or a SQLite file holding
exactly bptt's tables. A directory, a device such as /dev/null, a text file, a
truncated or damaged SQLite file and another program's database are refused
with a ``DatabaseError`` naming the path, and left as they were: the look is
taken through a read-only connection that creates no file beside the database
(see ``read_only_connection``).

The schema has a version, SQLite's ``PRAGMA user_version`` (``SCHEMA_VERSION``).
A database of a newer version is refused in one line, for reading and writing
alike; one of an older version is migrated when it is opened for writing
(version 0, before versions: the ``meta`` table and the database's id are
added). A table with a column this version does not know and could not leave
empty (NOT NULL without a default) is refused before a run trains, rather than
at the run's first write. A name too long to keep ``-wal``, ``-shm`` and the run
folders beside it is refused before the file is created.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import uuid
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
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
#: The schema this bptt writes (``PRAGMA user_version``); 0 is a database of a bptt before versions.
SCHEMA_VERSION = 1
#: The longest suffix bptt puts beside a database's stem or name (``<stem>-sweeps``, ``<name>-wal``).
LONGEST_SUFFIX = len("-sweeps")

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
    "meta": ("key", "value"),  # the database's id; added by version 1
}
#: Tables a database of an older schema version may lack: its migration adds them.
ADDED_BY_MIGRATION = {"meta": 1}
#: Tables SQLite keeps for itself (AUTOINCREMENT counters, ANALYZE statistics).
SQLITE_TABLES = ("sqlite_sequence", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3", "sqlite_stat4")
SQLITE_HEADER = b"SQLite format 3\x00"


class DatabaseError(ValueError):
    """A results database that cannot be used: the message names the path and what is wrong."""


class _CopyConnection(sqlite3.Connection):
    """A connection to a private copy of a database; closing it removes the copy."""

    copy_folder: str | None = None

    def close(self) -> None:
        super().close()
        if self.copy_folder is not None:
            shutil.rmtree(self.copy_folder, ignore_errors=True)
            self.copy_folder = None


def read_only_connection(path: Path) -> sqlite3.Connection:
    """A connection that can only read, and creates no file beside the database.

    In WAL mode a reader needs the ``-shm`` index. With no ``-wal`` file (no
    writer has the database open) the file is opened as immutable, which reads
    it without one. With a writer's ``-wal`` and ``-shm`` in a folder that can
    be written, it is read in place. Otherwise (a ``-wal`` left without its
    ``-shm``, or a read-only filesystem, where no writer can be) the database
    and its ``-wal`` are copied to a private temporary folder and read there, so
    the committed history in the ``-wal`` is read and nothing is created beside
    the database.
    """
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    if not wal.exists():
        uri = f"file:{quote(str(path.absolute()))}?mode=ro&immutable=1"
        return sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)
    folder = path.absolute().parent
    if shm.exists() and os.access(folder, os.W_OK) and not _read_only_filesystem(folder):
        uri = f"file:{quote(str(path.absolute()))}?mode=ro"
        return sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)
    copy_folder = tempfile.mkdtemp(prefix="bptt-read-")
    try:
        copy = Path(copy_folder) / "copy.db"
        shutil.copyfile(path, copy)
        shutil.copyfile(wal, f"{copy}-wal")
        uri = f"file:{quote(str(copy))}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None, factory=_CopyConnection)
    except BaseException:
        shutil.rmtree(copy_folder, ignore_errors=True)
        raise
    connection.copy_folder = copy_folder
    return connection


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
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            # (name, NOT NULL, default, part of the primary key) of every column
            info = {
                name: [(row[1], row[3], row[4], row[5]) for row in connection.execute(f"PRAGMA table_info({name})")]
                for name in TABLES
                if name in names
            }
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise DatabaseError(f"--db: {path} is a damaged or unreadable SQLite file ({_describe(error)})") from None
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"--db: {path} was written by a newer bptt (schema version {version}; this bptt knows up to "
            f"{SCHEMA_VERSION}); upgrade bptt to use it"
        )
    columns = {name: {column[0] for column in table} for name, table in info.items()}
    if not names:
        if read_only:
            raise DatabaseError(f"--db: {path} holds no tables, not a bptt results database")
        return False
    foreign = [name for name in names if name not in TABLES and name not in SQLITE_TABLES]
    missing = [name for name in TABLES if name not in names and ADDED_BY_MIGRATION.get(name, 0) <= version]
    if foreign or missing:
        shown = ", ".join(sorted(names))
        raise DatabaseError(
            f"--db: {path} is another program's SQLite database (tables: {shown}); bptt reads and writes only its own"
        )
    for name, wanted in TABLES.items():
        if name not in columns:
            continue
        lacking = [column for column in wanted if column not in columns[name]]
        if lacking:
            raise DatabaseError(
                f"--db: {path}: table {name!r} lacks column(s) {', '.join(lacking)}; not a bptt results database"
            )
        required = [c for c, not_null, default, key in info[name] if c not in wanted and not_null and default is None]
        if required and not read_only:
            raise DatabaseError(
                f"--db: {path}: table {name!r} has column(s) {', '.join(required)} that this bptt does not know and "
                "cannot leave empty (NOT NULL); its runs would fail at their first write. Written by another "
                "program or a newer bptt"
            )
    return True


def check_writable(path: Path) -> None:
    """Refuse a database that cannot be written: its folder (WAL mode puts two files beside it) and the file,
    and a name too long for the files and folders kept beside it."""
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
    longest = name_max(existing) - LONGEST_SUFFIX
    if len(os.fsencode(path.name)) > longest:
        raise DatabaseError(
            f"--db: the name {path.name[:40]}... is too long: beside a database bptt keeps files and folders "
            f"named after it (-wal, -sweeps), so its name has at most {longest} bytes here"
        )


def name_max(folder: Path) -> int:
    """The longest file name the filesystem of ``folder`` takes (255 where it does not say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def _read_only_filesystem(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def migrate(connection: sqlite3.Connection) -> None:
    """Bring a database of an older schema version to ``SCHEMA_VERSION`` (its tables already created by
    ``SCHEMA``): version 1 gives it an id, which its run folders name. One transaction."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version < 1:
            connection.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', ?)", (uuid.uuid4().hex,))
        if version < SCHEMA_VERSION:
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
