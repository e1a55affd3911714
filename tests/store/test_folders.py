"""Run folders are tied to their database: a database of the same stem, a deleted database's folders, another
database's checkpoint, a symbolic link and a path that climbs out are refused in one line; nothing is overwritten,
continued under another's name, or deleted outside bptt's own folders."""

import hashlib
import os
import sqlite3

import pytest
import yaml

from bptt.cli.main import main
from bptt.config import build_config
from bptt.store import Database
from bptt.store.folders import DATABASE_FILE, RUN_FILE
from bptt.training import Trainer

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
SPEC = {
    "name": "s",
    "base": {"task": "adding", "seq_len": 5, "hidden_size": 4, "batch_size": 4, "eval_size": 4, "steps": 2},
    "grid": {"cell": ["rnn", "gru"]},
}


def tree(root):
    """Every file under ``root`` with its content's hash: what a refused command must leave as it was."""
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def interrupted(db_path):
    """Mark every run interrupted, as a process killed mid-run leaves it (the connection closed after)."""
    connection = sqlite3.connect(db_path)
    connection.execute("UPDATE runs SET status = 'interrupted'")
    connection.commit()
    connection.close()


def refused(capsys, argv, *roots):
    before = [tree(root) for root in roots]
    capsys.readouterr()
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert [tree(root) for root in roots] == before
    return line


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_two_databases_of_one_stem_do_not_share_run_folders(here, capsys):
    assert main(["train", "--db", "a.db", *FLAGS, "--steps", "4"]) == 0
    line = refused(capsys, ["train", "--db", "a.sqlite", *FLAGS, "--steps", "4", "--seed", "7"], here)
    assert "a-runs holds the run folders of" in line and "a.db" in line and "another name" in line
    assert not (here / "a.sqlite").exists()
    # a.db's own run goes on from its own checkpoint: seed 0, as trained.
    assert main(["train", "--db", "a.db", *FLAGS, "--steps", "8", "--resume", "--json"]) == 0
    with Database(here / "a.db") as db:
        (row,) = db.runs()
        assert row.steps_done == 8 and row.config["seed"] == 0


def test_a_deleted_databases_folders_are_not_taken_over_by_a_new_one(here, capsys):
    assert main(["train", "--db", "a.db", *FLAGS, "--steps", "4"]) == 0
    os.remove(here / "a.db")
    line = refused(capsys, ["train", "--db", "a.db", *FLAGS, "--steps", "4", "--seed", "7"], here)
    assert line.startswith("bptt: error: --db: ") and "move a-runs/ away" in line


def test_an_existing_database_whose_folder_names_another_is_refused_before_training(here, capsys):
    assert main(["train", "--db", "a.db", *FLAGS, "--steps", "4"]) == 0
    (here / "made").mkdir()
    Database(here / "made" / "a.sqlite").close()  # made elsewhere and moved here: an empty results database
    os.replace(here / "made" / "a.sqlite", here / "a.sqlite")
    line = refused(capsys, ["train", "--db", "a.sqlite", *FLAGS, "--steps", "4"], here / "a-runs")
    assert "a-runs belongs to another database" in line


def test_a_checkpoint_of_other_settings_is_not_continued_under_a_rows_name(here, capsys):
    assert main(["train", "--db", "a.db", *FLAGS, "--steps", "4"]) == 0
    assert main(["train", "--db", "b.db", *FLAGS, "--steps", "4", "--seed", "7"]) == 0
    ours = here / "a-runs" / "run-1" / "checkpoint.pt"
    ours.write_bytes((here / "b-runs" / "run-1" / "checkpoint.pt").read_bytes())  # a seed-7 model
    interrupted(here / "a.db")
    line = refused(capsys, ["train", "--db", "a.db", *FLAGS, "--steps", "8", "--resume"], here)
    assert (
        line
        == f"bptt: error: checkpoint {ours}: trained with seed 7, but this run has seed 0: it is another run's; refused"
    )
    line = refused(capsys, ["diagnose", "--db", "a.db", "--run", "1"], here)
    assert "trained with seed 7, but this run has seed 0" in line


def test_a_run_folder_of_another_database_is_refused(here, capsys):
    assert main(["train", "--db", "a.db", *FLAGS, "--steps", "4"]) == 0
    assert main(["train", "--db", "b.db", *FLAGS, "--steps", "4"]) == 0
    (here / "a-runs" / "run-1" / RUN_FILE).write_bytes((here / "b-runs" / "run-1" / RUN_FILE).read_bytes())
    interrupted(here / "a.db")
    line = refused(capsys, ["train", "--db", "a.db", *FLAGS, "--steps", "8", "--resume"], here)
    assert "run-1 belongs to another database" in line


def test_a_symbolic_link_for_a_run_folder_is_neither_read_nor_written_through(here, capsys, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "keep.txt").write_text("the user's\n")
    assert main(["train", "--db", "a.db", *FLAGS, "--steps", "4"]) == 0
    run = here / "a-runs" / "run-1"
    for path in run.iterdir():
        os.replace(path, elsewhere / path.name)
    run.rmdir()
    run.symlink_to(elsewhere, target_is_directory=True)
    interrupted(here / "a.db")
    line = refused(capsys, ["train", "--db", "a.db", *FLAGS, "--steps", "8", "--resume"], here, elsewhere)
    assert "run-1 is a symbolic link" in line
    line = refused(capsys, ["diagnose", "--db", "a.db", "--run", "1"], here, elsewhere)
    assert "symbolic link" in line


def test_a_folder_of_an_older_bptt_is_taken_up_and_marked(here, capsys):
    assert main(["train", "--db", "a.db", *FLAGS, "--steps", "4"]) == 0
    # As an older bptt left it: no markers, schema version 0, no meta table.
    (here / "a-runs" / DATABASE_FILE).unlink()
    (here / "a-runs" / "run-1" / RUN_FILE).unlink()
    connection = sqlite3.connect(here / "a.db")
    connection.execute("DROP TABLE meta")
    connection.execute("PRAGMA user_version = 0")
    connection.commit()
    connection.close()
    assert main(["train", "--db", "a.db", *FLAGS, "--steps", "8", "--resume", "--json"]) == 0
    with Database(here / "a.db") as db:
        assert db.run(1).steps_done == 8 and db.id is not None
        assert (here / "a-runs" / DATABASE_FILE).is_file() and (here / "a-runs" / "run-1" / RUN_FILE).is_file()


def _sweep(capsys, db, *extra):
    capsys.readouterr()
    return main(["sweep", "spec.yaml", "--db", db, "--workers", "1", *extra])


def test_a_sweep_never_deletes_another_databases_run_folders(here, capsys):
    (here / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    assert _sweep(capsys, "a.db", "--checkpoint-dir", "shared") == 0
    line = refused(
        capsys, ["sweep", "spec.yaml", "--db", "b.db", "--workers", "1", "--checkpoint-dir", "shared"], here / "shared"
    )
    assert "belongs to another database" in line
    with Database(here / "a.db") as db:
        assert all((here / "shared" / "s" / row.identity / "checkpoint.pt").is_file() for row in db.runs())


def test_a_sweep_never_follows_a_symbolic_link_out_of_its_folders(here, capsys, tmp_path_factory):
    (here / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    users = tmp_path_factory.mktemp("users")
    spec = build_config(SPEC["base"])
    (users / spec.identity()).mkdir()  # a folder of the user's that a run folder's name would match
    (users / spec.identity() / "notes.txt").write_text("mine\n")
    (here / "ckpt").mkdir()
    (here / "ckpt" / "s").symlink_to(users, target_is_directory=True)
    line = refused(capsys, ["sweep", "spec.yaml", "--db", "a.db", "--workers", "1", "--checkpoint-dir", "ckpt"], users)
    assert "ckpt/s is a symbolic link" in line
    assert sorted(p.name for p in users.rglob("*")) == sorted([spec.identity(), "notes.txt"])


def test_a_sweeps_folder_no_row_names_is_refused_not_deleted(here, capsys):
    (here / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    assert _sweep(capsys, "a.db", "--checkpoint-dir", "ckpt") == 0
    os.remove(here / "a.db")
    line = refused(
        capsys, ["sweep", "spec.yaml", "--db", "a.db", "--workers", "1", "--checkpoint-dir", "ckpt"], here / "ckpt"
    )
    assert "belongs to another database" in line or "no row of this database names" in line


def test_a_trainer_of_a_new_run_in_a_foreign_folder_is_refused_before_training(here):
    with Database(here / "a.db") as db:
        Trainer(build_config({**SPEC["base"], "checkpoint_every": 1, "progress": False}), db).run()
    (here / "a-runs" / DATABASE_FILE).write_text('{"database": "someone else", "path": "x.db"}')
    with Database(here / "a.db") as db, pytest.raises(ValueError, match="belongs to another database"):
        Trainer(build_config({**SPEC["base"], "seed": 3, "progress": False}), db).run()
    with Database(here / "a.db") as db:
        assert len(db.runs()) == 1


def test_a_sweep_never_writes_a_checkpoint_through_a_symbolic_link_for_a_runs_folder(here, capsys, tmp_path_factory):
    (here / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    users = tmp_path_factory.mktemp("users")
    (users / "notes.txt").write_text("mine\n")
    identity = build_config(SPEC["base"]).identity()
    (here / "ckpt" / "s").mkdir(parents=True)
    (here / "ckpt" / "s" / identity).symlink_to(users, target_is_directory=True)
    line = refused(capsys, ["sweep", "spec.yaml", "--db", "a.db", "--workers", "1", "--checkpoint-dir", "ckpt"], users)
    assert f"s/{identity} is a symbolic link" in line
    assert sorted(p.name for p in users.iterdir()) == ["notes.txt"]
