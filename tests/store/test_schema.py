"""The database's schema version, columns it does not know, names too long, and reading one that cannot be
written beside: each is refused in one line or read without a file created."""

import hashlib
import os
import shutil
import sqlite3

import pytest

from bptt.cli.main import main
from bptt.config import build_config
from bptt.store import Database
from bptt.store.schema import SCHEMA, SCHEMA_VERSION
from bptt.training import Trainer

TINY = {"task": "adding", "seq_len": 5, "hidden_size": 4, "batch_size": 4, "eval_size": 4, "steps": 2}
FLAGS = ["--task", "adding", "--seq-len", "5", "--hidden-size", "4", "--batch-size", "4", "--eval-size", "4"]


def _digest(folder):
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _sql(path, *statements):
    connection = sqlite3.connect(path)
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()


def _trained(path):
    with Database(path) as db:
        Trainer(build_config({**TINY, "progress": False}), db).run()
    return path


@pytest.mark.parametrize("argv", [["runs"], ["train", *FLAGS, "--steps", "4"], ["export", "-o", "out.csv"]])
def test_a_database_of_a_newer_schema_is_refused_untouched(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    _trained(tmp_path / "r.db")
    _sql(tmp_path / "r.db", f"PRAGMA user_version = {SCHEMA_VERSION + 4}")
    before = _digest(tmp_path)
    assert main([*argv, "--db", "r.db"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"bptt: error: --db: r.db was written by a newer bptt (schema version {SCHEMA_VERSION + 4}; this bptt "
        f"knows up to {SCHEMA_VERSION}); upgrade bptt to use it"
    )
    assert _digest(tmp_path) == before


def test_a_database_of_an_older_schema_is_read_as_it_is_and_migrated_when_written(tmp_path, capsys):
    path = _trained(tmp_path / "r.db")
    _sql(path, "DROP TABLE meta", "PRAGMA user_version = 0")
    with Database(path, read_only=True) as db:
        assert db.id is None and len(db.runs()) == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 0
    with Database(path) as db:
        assert len(db.id) == 32 and len(db.runs()) == 1
        first = db.id
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with Database(path) as db:
        assert db.id == first  # migrated once


def test_a_column_this_bptt_cannot_fill_is_refused_before_a_run_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    schema = SCHEMA.replace("    host TEXT\n);", "    host TEXT,\n    owner_team TEXT NOT NULL\n);", 1)
    assert schema != SCHEMA
    connection = sqlite3.connect(tmp_path / "r.db")
    connection.executescript(schema)
    connection.close()
    before = _digest(tmp_path)
    assert main(["train", "--db", "r.db", *FLAGS, "--steps", "4"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "table 'runs' has column(s) owner_team that this bptt does not know and cannot leave empty" in line
    assert _digest(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["r.db"]
    assert main(["runs", "--db", "r.db"]) == 0  # reading it is fine


def test_a_name_too_long_for_the_files_beside_it_is_refused_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    name = "a" * 252 + ".db"  # 255 bytes: the file fits, its -sweeps folder and -wal would not
    assert main(["train", "--db", name, *FLAGS, "--steps", "2"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "is too long" in line and "at most 248 bytes here" in line
    assert os.listdir(tmp_path) == []


def _with_a_wal(folder):
    """A database whose last run is only in its -wal, as a writer killed with kill -9 leaves it; no -shm."""
    path = _trained(folder / "src.db")
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("UPDATE runs SET label = 'from-the-wal'")
    writer.commit()
    copy = folder / "w.db"
    shutil.copy(path, copy)
    shutil.copy(f"{path}-wal", f"{copy}-wal")
    writer.close()
    return copy


def test_reading_a_database_with_a_wal_and_no_shm_creates_no_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    copy = _with_a_wal(tmp_path)
    before = _digest(tmp_path)
    assert main(["runs", "--db", copy.name]) == 0
    assert "from-the-wal" in capsys.readouterr().out
    assert _digest(tmp_path) == before and not (tmp_path / "w.db-shm").exists()


def test_a_database_with_a_wal_on_a_read_only_filesystem_is_read_not_called_damaged(
    tmp_path, monkeypatch, capsys, read_only_folder
):
    copy = _with_a_wal(tmp_path)
    with read_only_folder(tmp_path / "ro", [copy, f"{copy}-wal"]) as folder:
        if folder is None:
            pytest.skip("no read-only folder on this machine")
        monkeypatch.chdir(tmp_path)
        assert main(["runs", "--db", "ro/w.db"]) == 0, capsys.readouterr().err
        assert "from-the-wal" in capsys.readouterr().out
        assert sorted(os.listdir(folder)) == ["w.db", "w.db-wal"]
