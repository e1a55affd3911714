"""The results database: every run, its config, history, final metrics and status, in SQLite.

WAL mode, one short transaction per write, so a process killed at any moment
leaves every committed row intact. A run whose process died while it was
"running" is marked "interrupted" the next time the database is opened, and
can be resumed from its checkpoint.

Statuses: running, finished, diverged (the loss became NaN/inf), failed (an
error; ``reason`` says which), interrupted (the process died mid-run).

Rows go in and come out as the dataclasses of ``bptt.store.records``.

A path is checked before anything is written to it (``bptt.store.schema``):
another program's file is refused untouched. ``read_only=True`` opens the
database for reading only (``runs``, ``report``, ``export``, ``diagnose``): it
writes nothing, and shows a row whose process died as "interrupted" without
storing that.

Checkpoint paths are stored relative to the database's folder when they lie
inside it (absolute otherwise) and read back as absolute paths, so a database
and its run folders can be moved together, and a relative ``--db`` means the
same from any working directory. Where a run's files live by default is said
here once: ``runs_folder`` for runs trained on their own, ``sweeps_folder``
for sweeps.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bptt.store.folders import check_unclaimed, process_alive, runs_folder_for, sweeps_folder_for
from bptt.store.records import EvalRow, ProfileRow, RunRow, RunSummary, StepRow
from bptt.store.schema import (
    SCHEMA,
    DatabaseError,
    check_writable,
    inspect_database,
    migrate,
    read_only_connection,
)

STATUSES = ("running", "finished", "diverged", "failed", "interrupted")


class Database:
    """A results database at ``path`` (created on first use unless ``read_only``)."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        exists = inspect_database(self.path, read_only)
        created = False
        try:
            if read_only:
                self.connection = read_only_connection(self.path)
                return
            check_writable(self.path)
            if not exists:
                check_unclaimed(runs_folder_for(self.path), self.path)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                created = not self.path.exists()
            self.connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.connection.execute("PRAGMA foreign_keys=ON")
            self.connection.executescript(SCHEMA)
            migrate(self.connection)
            self.mark_interrupted()
        except (sqlite3.Error, OSError) as error:
            if created:  # a refused new database leaves nothing behind
                if hasattr(self, "connection"):
                    self.connection.close()
                for leftover in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                    leftover.unlink(missing_ok=True)
            raise DatabaseError(
                f"--db: cannot open {self.path} ({str(error).strip() or type(error).__name__})"
            ) from None

    @property
    def id(self) -> str | None:
        """The database's own id (a random hex string written when it was created or migrated), which its run
        folders name; None for a database of a bptt before schema versions, opened read-only."""
        try:
            row = self.connection.execute("SELECT value FROM meta WHERE key = 'database_id'").fetchone()
        except sqlite3.OperationalError:  # no meta table: an unmigrated database, read-only
            return None
        return None if row is None else str(row[0])

    @property
    def folder(self) -> Path:
        """The absolute folder the database file lies in."""
        return Path(os.path.abspath(self.path)).parent

    @property
    def runs_folder(self) -> Path:
        return runs_folder_for(self.path)

    @property
    def sweeps_folder(self) -> Path:
        return sweeps_folder_for(self.path)

    def _stored_path(self, path: str | None) -> str | None:
        """A checkpoint path as the database stores it: relative to its folder when inside it."""
        if path is None:
            return None
        absolute = Path(os.path.abspath(path))
        try:
            return absolute.relative_to(self.folder).as_posix()
        except ValueError:
            return str(absolute)

    def _read_path(self, stored: str | None) -> str | None:
        return None if stored is None else str(self.folder / stored)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise DatabaseError(f"--db: {self.path} is open for reading only")
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    # -- runs ------------------------------------------------------------------------
    def mark_interrupted(self) -> int:
        """Mark "running" rows of this host whose process is gone as "interrupted"."""
        host = socket.gethostname()
        rows = self.connection.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (host,)
        ).fetchall()
        dead = [(run_id, pid) for run_id, pid in rows if pid is None or not process_alive(pid)]
        with self.transaction() as db:
            for run_id, pid in dead:
                # Only if the row is still the dead process's: another one may have claimed it since.
                db.execute(
                    "UPDATE runs SET status = 'interrupted', reason = 'process ended while running', "
                    "updated_at = ? WHERE id = ? AND status = 'running' AND pid IS ?",
                    (time.time(), run_id, pid),
                )
        return len(dead)

    def create_run(
        self,
        identity: str,
        label: str,
        task: str,
        config: dict[str, Any],
        sweep: str | None = None,
        steps_done: int = 0,
        train_seconds: float = 0.0,
    ) -> int:
        """A new row, status running, owned by this process; ``steps_done`` and ``train_seconds``: the
        counters it is born with (a run whose first row comes after some steps is never seen at 0)."""
        now = time.time()
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (identity, sweep, label, task, config, status, steps_done, train_seconds, "
                "created_at, updated_at, pid, host) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                (
                    identity,
                    sweep,
                    label,
                    task,
                    json.dumps(config),
                    steps_done,
                    train_seconds,
                    now,
                    now,
                    os.getpid(),
                    socket.gethostname(),
                ),
            )
            assert cursor.lastrowid is not None  # an INSERT always sets it
            return cursor.lastrowid

    def claim_run(self, run_id: int, config: dict[str, Any], seen: RunRow | None = None) -> bool:
        """Take up an existing run again (resume): status running, owned by this process. With ``seen``
        (the row as this process read it), only if the row is still exactly that (same status and last
        write), in one transaction: of two processes claiming it together exactly one gets it, and the
        checkpoint read before the claim is still the run's newest. Returns whether this one got it."""
        where = ""
        params: tuple[str | float, ...] = ()
        if seen is not None:
            where, params = " AND status = ? AND updated_at = ?", (seen.status, seen.updated_at)
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE runs SET status = 'running', reason = NULL, config = ?, pid = ?, host = ?, updated_at = ? "
                "WHERE id = ?" + where,
                (json.dumps(config), os.getpid(), socket.gethostname(), time.time(), run_id, *params),
            )
            return cursor.rowcount == 1

    def truncate_history(self, run_id: int, after_step: int) -> None:
        """Drop history past ``after_step`` (written after the checkpoint a resume starts from),
        and the test result, which only the end of a run writes."""
        with self.transaction() as db:
            for table in ("steps", "evals", "gradient_profiles"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ? AND step > ?", (run_id, after_step))
            db.execute("DELETE FROM evals WHERE run_id = ? AND split = 'test'", (run_id,))

    def record_progress(
        self,
        run_id: int,
        steps: list[StepRow],
        evals: list[EvalRow],
        profiles: list[ProfileRow],
        steps_done: int,
        train_seconds: float,
        checkpoint: str | None,
    ) -> None:
        """Append history and move the run's counters, all in one transaction."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO steps (run_id, step, loss, grad_norm, clipped, skipped) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, s.step, s.loss, s.grad_norm, int(s.clipped), int(s.skipped)) for s in steps],
            )
            db.executemany(
                "INSERT OR REPLACE INTO evals (run_id, step, split, loss, metric) VALUES (?, ?, ?, ?, ?)",
                [(run_id, e.step, e.split, e.loss, e.metric) for e in evals],
            )
            db.executemany(
                "INSERT OR REPLACE INTO gradient_profiles (run_id, step, hidden, cell) VALUES (?, ?, ?, ?)",
                [
                    (run_id, p.step, json.dumps(p.hidden), None if p.cell is None else json.dumps(p.cell))
                    for p in profiles
                ],
            )
            db.execute(
                "UPDATE runs SET steps_done = ?, train_seconds = ?, checkpoint = COALESCE(?, checkpoint), "
                "updated_at = ? WHERE id = ?",
                (steps_done, train_seconds, self._stored_path(checkpoint), time.time(), run_id),
            )

    def finish_run(self, run_id: int, status: str, final: RunSummary | None, reason: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, final = ?, reason = ?, finished_at = ?, updated_at = ?, pid = NULL "
                "WHERE id = ?",
                (status, None if final is None else json.dumps(final.to_dict()), reason, now, now, run_id),
            )

    # -- queries -----------------------------------------------------------------------
    _COLUMNS = (
        "id, identity, sweep, label, task, config, status, reason, steps_done, final, checkpoint, "
        "created_at, updated_at, finished_at, train_seconds, pid, host"
    )

    def _row(self, row: tuple[Any, ...]) -> RunRow:
        (
            id_,
            identity,
            sweep,
            label,
            task,
            config,
            status,
            reason,
            steps_done,
            final,
            checkpoint,
            created_at,
            updated_at,
            finished_at,
            train_seconds,
            pid,
            host,
        ) = row
        if (
            self.read_only
            and status == "running"
            and host == socket.gethostname()
            and (pid is None or not process_alive(pid))
        ):
            status, reason = "interrupted", "process ended while running"  # what a writer would mark
        summary = None if final is None else RunSummary.from_dict(json.loads(final))
        return RunRow(
            id_,
            identity,
            sweep,
            label,
            task,
            json.loads(config),
            status,
            reason,
            steps_done,
            summary,
            self._read_path(checkpoint),
            created_at,
            updated_at,
            finished_at,
            train_seconds,
        )

    def _select(
        self, where: str = "", params: tuple[Any, ...] | list[Any] = (), tail: str = " ORDER BY id"
    ) -> list[RunRow]:
        try:
            rows = self.connection.execute(f"SELECT {self._COLUMNS} FROM runs{where}{tail}", params).fetchall()
            return [self._row(r) for r in rows]
        except (sqlite3.Error, ValueError) as error:  # ValueError: a config or summary that is not JSON
            raise DatabaseError(f"--db: {self.path}: cannot read its runs ({error})") from None

    def run(self, run_id: int) -> RunRow | None:
        rows = self._select(" WHERE id = ?", (run_id,))
        return rows[0] if rows else None

    def runs(self, sweep: str | None = None, status: str | None = None, identity: str | None = None) -> list[RunRow]:
        clauses, params = [], []
        # Read-only, a dead process's row reads "interrupted" only once fetched: filter on status after that.
        stored_status = None if self.read_only else status
        for column, value in (("sweep", sweep), ("status", stored_status), ("identity", identity)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._select(where, params)
        return rows if status is None else [r for r in rows if r.status == status]

    def sweeps(self) -> list[str]:
        """The names of the sweeps that have runs here, sorted."""
        return sorted(
            name for (name,) in self.connection.execute("SELECT DISTINCT sweep FROM runs WHERE sweep IS NOT NULL")
        )

    def latest_run(self, identity: str, sweep: str | None = None) -> RunRow | None:
        """The newest row of ``identity`` in ``sweep`` (None: runs trained on their own, outside any sweep)."""
        rows = self._select(" WHERE identity = ? AND sweep IS ?", (identity, sweep), " ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None

    def first_missing_step(self, run_id: int) -> int | None:
        """The first step below ``steps_done`` with no row in the run's history, or None when it has no gap."""
        row = self.run(run_id)
        steps = [
            s for (s,) in self.connection.execute("SELECT step FROM steps WHERE run_id = ? ORDER BY step", (run_id,))
        ]
        for expected, step in enumerate(steps, start=1):
            if step != expected:
                return expected
        done = 0 if row is None else row.steps_done
        return len(steps) + 1 if len(steps) < done else None

    def steps(self, run_id: int) -> list[StepRow]:
        rows = self.connection.execute(
            "SELECT step, loss, grad_norm, clipped, skipped FROM steps WHERE run_id = ? ORDER BY step", (run_id,)
        ).fetchall()
        return [
            StepRow(step, loss, grad_norm, bool(clipped), bool(skipped))
            for step, loss, grad_norm, clipped, skipped in rows
        ]

    def evals(self, run_id: int, split: str | None = None) -> list[EvalRow]:
        sql = "SELECT step, split, loss, metric FROM evals WHERE run_id = ?"
        params: list[Any] = [run_id]
        if split is not None:
            sql += " AND split = ?"
            params.append(split)
        return [EvalRow(*row) for row in self.connection.execute(sql + " ORDER BY step, split", params)]

    def gradient_profiles(self, run_id: int) -> list[ProfileRow]:
        rows = self.connection.execute(
            "SELECT step, hidden, cell FROM gradient_profiles WHERE run_id = ? ORDER BY step", (run_id,)
        ).fetchall()
        return [ProfileRow(step, json.loads(h), None if c is None else json.loads(c)) for step, h, c in rows]
