import contextlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import torch

from bptt.config import build_config
from bptt.store import Database
from bptt.training import Trainer

SMALL = {"hidden_size": 8, "batch_size": 8, "steps": 4, "eval_size": 16, "eval_every": 2, "progress": False}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def fill(db_path, record_every=2):
    """A small sweep's worth of runs: two remedies x two lengths x two seeds on adding, one tanh RNN at T=600."""
    with Database(db_path) as db:
        for init in ("pytorch", "xavier"):
            for seq_len in (8, 16):
                for seed in (0, 1):
                    config = build_config(
                        {
                            **SMALL,
                            "task": "adding",
                            "init": init,
                            "seq_len": seq_len,
                            "seed": seed,
                            "record_every": record_every,
                        }
                    )
                    Trainer(config, db, sweep="s").run()
        Trainer(
            build_config({**SMALL, "task": "adding", "seq_len": 600, "steps": 2, "eval_every": 1}), db, sweep="s"
        ).run()
        Trainer(
            build_config({**SMALL, "task": "sentiment", "delay": 3, "record_every": record_every}), db, sweep="s"
        ).run()
        Trainer(
            build_config(
                {
                    **SMALL,
                    "task": "adding",
                    "seq_len": 40,
                    "activation": "relu",
                    "init": "identity",
                    "init_scale": 10.0,
                    "steps": 50,
                }
            ),
            db,
            sweep="s",
        ).run()


def _mount_tmpfs(folder, size):
    """Mount a tmpfs of ``size`` at ``folder`` (root only); whether it worked."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


def _unmount(folder):
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@contextlib.contextmanager
def _read_only_folder(folder, files=()):
    """``folder`` holding copies of ``files``, then made read-only: a read-only tmpfs as root, mode 0555
    for anyone else (whose writes the mode bits stop). Yields the folder, or None where neither can be had."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = _mount_tmpfs(folder, "8m")
    if os.geteuid() == 0 and not mounted:
        yield None
        return
    for path in map(Path, files):
        (shutil.copytree if path.is_dir() else shutil.copy)(path, folder / path.name)
    try:
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        else:
            for path in sorted(folder.rglob("*"), reverse=True):
                path.chmod(0o555 if path.is_dir() else 0o444)
            folder.chmod(0o555)
        yield folder
    finally:
        if mounted:
            _unmount(folder)
        else:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(0o755)


@pytest.fixture(scope="session")
def read_only_folder():
    """``read_only_folder(folder, files)``: a context in which ``folder`` holds copies of ``files`` and is
    read-only (a read-only tmpfs as root, mode 0555 for anyone else); it gives None where neither can be had."""
    return _read_only_folder


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a filesystem of 1 MiB (a tmpfs, root only; skipped elsewhere): a disk that fills."""
    folder = tmp_path / "small"
    folder.mkdir()
    if not _mount_tmpfs(folder, "1m"):
        pytest.skip("a small filesystem needs root and mount")
    yield folder
    _unmount(folder)


@pytest.fixture
def sweep_db(tmp_path):
    """Call it to get the path of a database holding the runs of sweep "s" (see ``fill``)."""

    def make(record_every=2):
        path = tmp_path / "r.db"
        fill(path, record_every)
        return path

    return make


def _run_states(db_path):
    """(status, steps_done) of every run, read without taking a lock; [] until the database and its table exist."""
    if not db_path.exists():
        return []
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return connection.execute("SELECT status, steps_done FROM runs").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


@pytest.fixture
def run_states():
    """``run_states(db_path)``: what a watcher of another process's database sees, for kill tests."""
    return _run_states
