"""Files a run reads back never run code: crafted checkpoints, planted paths and spool files.

Every crafted file here, when unpickled, creates a folder (the canary); each test asserts the canary
is absent afterwards, along with what bptt did instead (one line naming the file, a quarantine).
"""

import json
import os
import pickle
import sqlite3

import numpy as np
import pytest
import torch

from bptt.cli.main import main
from bptt.config import build_config
from bptt.store import Database
from bptt.sweeps import expand_spec, run_sweep
from bptt.sweeps.runner import checkpoint_root_for
from bptt.sweeps.worker import Assignment, pending, run_assignment
from bptt.training import CheckpointError, Trainer
from bptt.training.checkpoint import load_checkpoint

SMALL = {
    "task": "adding",
    "seq_len": 5,
    "hidden_size": 4,
    "batch_size": 4,
    "eval_size": 4,
    "steps": 4,
    "eval_every": 2,
    "checkpoint_every": 2,
    "progress": False,
}
FLAGS = [
    "--task",
    "adding",
    "--seq-len",
    "5",
    "--hidden-size",
    "4",
    "--batch-size",
    "4",
    "--eval-size",
    "4",
    "--eval-every",
    "2",
    "--checkpoint-every",
    "2",
]


class Canary:
    def __init__(self, folder):
        self.folder = str(folder)

    def __reduce__(self):
        return (os.mkdir, (self.folder,))


@pytest.fixture
def canary(tmp_path):
    return tmp_path / "code-ran"


def craft(path, canary):
    """A checkpoint whose unpickling runs os.mkdir(canary), shaped like a real one."""
    torch.save({"step": 2, "model": Canary(canary), "optimizer": {}, "config": {}}, path)


def test_a_crafted_checkpoint_is_refused_by_train_resume_and_diagnose(tmp_path, canary, capsys):
    db = tmp_path / "r.db"
    assert main(["train", "--db", str(db), *FLAGS, "--steps", "4"]) == 0
    checkpoint = tmp_path / "r-runs" / "run-1" / "checkpoint.pt"
    craft(checkpoint, canary)
    capsys.readouterr()
    assert main(["train", "--db", str(db), *FLAGS, "--steps", "8", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"bptt: error: checkpoint {checkpoint}: refused: it holds Python objects, which could run code "
        f"when read; if you trust the file, convert it with `bptt convert-checkpoint {checkpoint}`"
    )
    assert main(["diagnose", "--db", str(db), "--run", "1"]) == 2
    assert "refused: it holds Python objects" in capsys.readouterr().err
    assert not canary.exists()
    with Database(db) as opened:
        assert opened.run(1).status == "finished" and opened.run(1).steps_done == 4  # untouched


def test_a_crafted_checkpoint_is_refused_by_a_sweep_worker(tmp_path, canary):
    config = build_config(SMALL)
    folder = tmp_path / "run"
    folder.mkdir()
    craft(folder / "checkpoint.pt", canary)
    outcome = run_assignment(Assignment(config.model_dump(), str(folder), resume=True))
    assert outcome.status == "failed" and "CheckpointError" in outcome.reason and "refused" in outcome.reason
    assert not canary.exists()


def test_a_checkpoint_path_planted_in_a_database_row_is_not_followed(tmp_path, canary, capsys):
    db = tmp_path / "r.db"
    assert main(["train", "--db", str(db), *FLAGS, "--steps", "4"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    craft(elsewhere / "evil.pt", canary)
    planted = tmp_path / "other" / "run-1"
    planted.mkdir(parents=True)
    craft(planted / "checkpoint.pt", canary)
    (tmp_path / "r-runs" / "run-1" / "checkpoint.pt").unlink()
    connection = sqlite3.connect(db)
    connection.execute("UPDATE runs SET checkpoint = ?, status = 'interrupted'", (str(elsewhere / "evil.pt"),))
    connection.commit()
    capsys.readouterr()
    # Outside the run's own folder: refused by name, before anything is read.
    assert main(["diagnose", "--db", str(db), "--run", "1"]) == 2
    assert "outside the run's own folder" in capsys.readouterr().err
    # A resume reads only its own folder's checkpoint, which is gone: one line, no new run.
    assert main(["train", "--db", str(db), *FLAGS, "--steps", "8", "--resume"]) == 2
    assert "has no checkpoint at" in capsys.readouterr().err
    # A path shaped like the run's own folder, elsewhere (absolute, or climbing out with ..): the folder is
    # not the run's own (no run.json of this database and run, not its default place), so refused unread.
    for planted_path in (
        str(planted / "checkpoint.pt"),
        "../other/run-1/checkpoint.pt",
        "r-runs/../other/run-1/checkpoint.pt",
    ):
        connection.execute("UPDATE runs SET checkpoint = ?", (planted_path,))
        connection.commit()
        assert main(["diagnose", "--db", str(db), "--run", "1"]) == 2
        assert "outside the run's own folder" in capsys.readouterr().err
    connection.close()
    assert not canary.exists()


def _sweep(tmp_path, **options):
    spec = expand_spec({"name": "t", "base": {k: v for k, v in SMALL.items() if k != "progress"}})
    warnings_seen = []
    summary = run_sweep(spec, tmp_path / "r.db", workers=1, progress=False, warn=warnings_seen.append, **options)
    return spec, summary, warnings_seen


def test_planted_spool_files_are_quarantined_unread_and_the_run_resumes(tmp_path, canary):
    spec, _, _ = _sweep(tmp_path)
    run_folder = checkpoint_root_for(tmp_path / "r.db") / "t" / spec.runs[0].identity
    with Database(tmp_path / "r.db") as db:
        db.connection.execute("UPDATE runs SET status = 'interrupted'")
    progress = run_folder / "progress"
    progress.mkdir(exist_ok=True)
    (progress / "00000000000000000001-000000.pkl").write_bytes(pickle.dumps(Canary(canary)))
    (progress / "00000000000000000002-000000.json").write_text("{not json")
    (progress / "00000000000000000003-000000.json").write_text(json.dumps({"kind": "progress", "steps": "x"}))
    _, summary, warned = _sweep(tmp_path)
    assert not canary.exists()
    assert len(warned) == 3 and all("could not be read" in w and "quarantine/" in w for w in warned)
    assert sorted(p.name for p in (progress / "quarantine").iterdir()) == [
        "00000000000000000001-000000.pkl",
        "00000000000000000002-000000.json",
        "00000000000000000003-000000.json",
    ]
    assert summary.statuses == {"finished": 1}
    with Database(tmp_path / "r.db") as db:
        (row,) = db.runs()
        assert row.status == "finished" and [s.step for s in db.steps(row.id)] == [1, 2, 3, 4]
    # The planted files held no history, so the run kept its checkpoint: it resumed, not restarted.
    assert row.final.resumed_from == 4


def test_a_spool_file_lost_with_history_restarts_the_run_from_step_0(tmp_path):
    spec = expand_spec({"name": "t", "base": {**{k: v for k, v in SMALL.items() if k != "progress"}, "steps": 6}})
    folder = checkpoint_root_for(tmp_path / "r.db") / "t" / spec.runs[0].identity
    with Database(tmp_path / "r.db") as db:
        row_id = db.create_run(spec.runs[0].identity, "tanh", "adding", spec.runs[0].config.model_dump(), sweep="t")
        db.finish_run(row_id, "interrupted", None, "the driver died with the worker")
    # A worker trained to step 4 (spool files for steps 1-2 and 3-4, then its checkpoint), then every process died.
    run_assignment(Assignment({**spec.runs[0].config.model_dump(), "steps": 4}, str(folder), resume=False))
    files = sorted((folder / "progress").glob("*.json"))
    files[1].write_text("damaged")  # the steps 1-2 record
    warned = []
    summary = run_sweep(spec, tmp_path / "r.db", workers=1, progress=False, warn=warned.append)
    assert summary.statuses == {"finished": 1}
    assert any("lacks step 1" in w for w in warned) and (folder / "quarantine" / "checkpoint.pt").exists()
    with Database(tmp_path / "r.db") as db:
        row = db.run(row_id)
        assert row.final.resumed_from == 0 and [s.step for s in db.steps(row_id)] == [1, 2, 3, 4, 5, 6]


def test_convert_checkpoint_turns_objects_into_plain_data(tmp_path, capsys):
    trainer = Trainer(build_config(SMALL))
    trainer.run()
    state = trainer.state()
    state["model"] = {name: value.numpy() for name, value in state["model"].items()}  # arrays: objects to pickle
    state["train_seconds"] = np.float64(state["train_seconds"])
    path = tmp_path / "old.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="convert-checkpoint"):
        load_checkpoint(path)
    assert main(["convert-checkpoint", str(path)]) == 0
    plain = load_checkpoint(path)
    resumed = Trainer(build_config(SMALL))
    resumed.load_state(plain)
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


def test_a_leftover_pickle_spool_of_an_older_version_is_never_unpickled(tmp_path, canary):
    progress = tmp_path / "progress"
    progress.mkdir()
    (progress / "0-000000.pkl").write_bytes(pickle.dumps(Canary(canary)))
    warned = []
    assert list(pending(tmp_path, warned.append)) == []
    assert not canary.exists() and "never unpickled" in warned[0]
    assert (progress / "quarantine" / "0-000000.pkl").exists()
