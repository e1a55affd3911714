"""The results database: every run, its config, history, final metrics and status, in SQLite.

WAL mode, one short transaction per write, so a process killed at any moment
leaves every committed row intact. A run whose process died while it was
"running" is marked "interrupted" the next time the database is opened, and
can be resumed from its checkpoint.

Statuses: running, finished, diverged (the loss became NaN/inf), failed (an
error; ``reason`` says which), interrupted (the process died mid-run).

Rows go in and come out as the dataclasses of ``bptt.store.records``.
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

from bptt.store.records import EvalRow, ProfileRow, RunRow, RunSummary, StepRow

STATUSES = ("running", "finished", "diverged", "failed", "interrupted")

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


def _pid_alive(pid: int) -> bool:
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


class Database:
    """A results database at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.connection.executescript(SCHEMA)
        self.mark_interrupted()

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
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
        dead = [(run_id, pid) for run_id, pid in rows if pid is None or not _pid_alive(pid)]
        with self.transaction() as db:
            for run_id, pid in dead:
                # Only if the row is still the dead process's: another one may have claimed it since.
                db.execute(
                    "UPDATE runs SET status = 'interrupted', reason = 'process ended while running', "
                    "updated_at = ? WHERE id = ? AND status = 'running' AND pid IS ?",
                    (time.time(), run_id, pid),
                )
        return len(dead)

    def create_run(self, identity: str, label: str, task: str, config: dict[str, Any], sweep: str | None = None) -> int:
        now = time.time()
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (identity, sweep, label, task, config, status, created_at, updated_at, pid, host) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                (identity, sweep, label, task, json.dumps(config), now, now, os.getpid(), socket.gethostname()),
            )
            return int(cursor.lastrowid)

    def claim_run(self, run_id: int, config: dict[str, Any]) -> None:
        """Take up an existing run again (resume): status running, owned by this process."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = 'running', reason = NULL, config = ?, pid = ?, host = ?, updated_at = ? "
                "WHERE id = ?",
                (json.dumps(config), os.getpid(), socket.gethostname(), time.time(), run_id),
            )

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
                [(run_id, p.step, json.dumps(p.hidden), None if p.cell is None else json.dumps(p.cell))
                 for p in profiles],
            )
            db.execute(
                "UPDATE runs SET steps_done = ?, train_seconds = ?, checkpoint = COALESCE(?, checkpoint), "
                "updated_at = ? WHERE id = ?",
                (steps_done, train_seconds, checkpoint, time.time(), run_id),
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
    def _row(self, row: tuple[Any, ...]) -> RunRow:
        (id_, identity, sweep, label, task, config, status, reason, steps_done, final, checkpoint,
         created_at, updated_at, finished_at, train_seconds) = row
        summary = None if final is None else RunSummary.from_dict(json.loads(final))
        return RunRow(id_, identity, sweep, label, task, json.loads(config), status, reason, steps_done, summary,
                      checkpoint, created_at, updated_at, finished_at, train_seconds)

    _COLUMNS = ("id, identity, sweep, label, task, config, status, reason, steps_done, final, checkpoint, "
                "created_at, updated_at, finished_at, train_seconds")

    def run(self, run_id: int) -> RunRow | None:
        row = self.connection.execute(f"SELECT {self._COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else self._row(row)

    def runs(self, sweep: str | None = None, status: str | None = None, identity: str | None = None) -> list[RunRow]:
        clauses, params = [], []
        for column, value in (("sweep", sweep), ("status", status), ("identity", identity)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.connection.execute(f"SELECT {self._COLUMNS} FROM runs{where} ORDER BY id", params).fetchall()
        return [self._row(r) for r in rows]

    def latest_run(self, identity: str) -> RunRow | None:
        row = self.connection.execute(
            f"SELECT {self._COLUMNS} FROM runs WHERE identity = ? ORDER BY id DESC LIMIT 1", (identity,)
        ).fetchone()
        return None if row is None else self._row(row)

    def steps(self, run_id: int) -> list[StepRow]:
        rows = self.connection.execute(
            "SELECT step, loss, grad_norm, clipped, skipped FROM steps WHERE run_id = ? ORDER BY step", (run_id,)
        ).fetchall()
        return [StepRow(step, loss, grad_norm, bool(clipped), bool(skipped))
                for step, loss, grad_norm, clipped, skipped in rows]

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
