"""Ctrl-C stops a run at a step boundary with a checkpoint; `bptt train` names the command that resumes it,
says what --resume takes up, and does not train a finished run twice."""

import json
import shlex
import signal
import subprocess
import sys
import time

import pytest

from bptt.cli import runs as runs_command
from bptt.cli.main import main
from bptt.config import build_config
from bptt.store import Database, DatabaseError
from bptt.training import Trainer, TrainingInterrupted, loop, train
from bptt.training.checkpoint import load_checkpoint
from bptt.training.runtime import StopOnInterrupt, Terminated

SMALL = {
    "task": "adding",
    "seq_len": 8,
    "hidden_size": 8,
    "batch_size": 8,
    "eval_size": 16,
    "eval_every": 5,
    "checkpoint_every": 5,
    "progress": False,
}
FLAGS = [
    "--task",
    "adding",
    "--seq-len",
    "8",
    "--hidden-size",
    "8",
    "--batch-size",
    "8",
    "--eval-size",
    "16",
    "--eval-every",
    "5",
    "--checkpoint-every",
    "5",
]


def _interrupt_at(step):
    def on_step(done, loss):
        if done == step:
            signal.raise_signal(signal.SIGINT)

    return on_step


def test_the_first_sigint_asks_a_second_raises_and_none_cuts_a_save_short():
    with StopOnInterrupt() as stop:
        assert stop.installed
        signal.raise_signal(signal.SIGINT)
        assert stop.requested
        with stop.saving():
            signal.raise_signal(signal.SIGINT)  # only noted
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # Over a handler someone else set (a sweep's local worker ignores SIGINT), nothing is installed.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopOnInterrupt() as stop:
            assert not stop.installed
            signal.raise_signal(signal.SIGINT)
            assert not stop.requested
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_at_the_step_boundary_with_a_checkpoint_and_resume_goes_on_from_there(tmp_path):
    db = Database(tmp_path / "r.db")
    trainer = Trainer(build_config({**SMALL, "steps": 20}), db, on_step=_interrupt_at(7))
    with pytest.raises(TrainingInterrupted) as stopped:
        trainer.run()
    assert (stopped.value.run_id, stopped.value.step, stopped.value.saved_step) == (1, 7, 7)
    row = db.run(1)
    assert row.status == "interrupted" and row.steps_done == 7 and "Ctrl-C" in row.reason
    assert load_checkpoint(row.checkpoint)["step"] == 7
    said = []
    resumed = Trainer(build_config({**SMALL, "steps": 20}), db, announce=said.append).run(resume=True)
    assert said == ["resuming run 1 from step 7"]
    assert resumed.run_id == 1 and resumed.status == "finished" and resumed.steps_done == 20
    assert [s.step for s in db.steps(1)] == list(range(1, 21))
    whole = train(build_config({**SMALL, "steps": 20}))
    assert whole.final.test_loss == resumed.final.test_loss  # bit for bit, as if never stopped


def test_a_ctrl_c_while_the_checkpoint_is_written_leaves_it_whole(tmp_path, monkeypatch):
    saved = loop.save_checkpoint

    def impatient(path, state):
        if state["step"] == 7:  # the user presses Ctrl-C again while the final file is written
            signal.raise_signal(signal.SIGINT)
        saved(path, state)

    monkeypatch.setattr(loop, "save_checkpoint", impatient)
    db = Database(tmp_path / "r.db")
    with pytest.raises(TrainingInterrupted) as stopped:
        Trainer(build_config({**SMALL, "steps": 20}), db, on_step=_interrupt_at(7)).run()
    assert stopped.value.saved_step == 7 and load_checkpoint(db.run(1).checkpoint)["step"] == 7
    assert not list((tmp_path / "r-runs" / "run-1").glob("*.tmp*"))


def test_a_second_ctrl_c_mid_step_stops_at_once_from_the_last_checkpoint(tmp_path):
    def twice(done, loss):
        if done == 7:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)

    db = Database(tmp_path / "r.db")
    with pytest.raises(TrainingInterrupted) as stopped:
        Trainer(build_config({**SMALL, "steps": 20}), db, on_step=twice).run()
    assert (stopped.value.step, stopped.value.saved_step) == (7, 5)
    assert "last checkpoint is of step 5" in stopped.value.describe()
    assert db.run(1).status == "interrupted"
    assert train(build_config({**SMALL, "steps": 20}), db, resume=True).steps_done == 20
    assert [s.step for s in db.steps(1)] == list(range(1, 21))


def test_resume_says_what_it_takes_up_or_that_it_starts_afresh(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    assert main(["train", "--db", db, *FLAGS, "--steps", "5", "--resume", "--json"]) == 0
    assert "--resume: no earlier run with these settings; starting afresh" in capsys.readouterr().err
    assert main(["train", "--db", db, *FLAGS, "--steps", "10", "--resume", "--json"]) == 0
    assert "bptt: resuming run 1 from step 5" in capsys.readouterr().err
    assert main(["train", "--db", db, *FLAGS, "--steps", "10", "--resume", "--json"]) == 0
    assert "run 1 already finished at step 10; nothing more to train" in capsys.readouterr().err


def test_a_finished_run_is_reported_not_trained_again_unless_fresh(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    assert main(["train", "--db", db, *FLAGS, "--steps", "10"]) == 0
    capsys.readouterr()
    assert main(["train", "--db", db, *FLAGS, "--steps", "10"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("run 1 already finished with these settings (10 steps, test mse ")
    assert "--fresh" in out and len(out.splitlines()) == 1
    assert main(["train", "--db", db, *FLAGS, "--steps", "10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == 1
    assert main(["train", "--db", db, *FLAGS, "--steps", "10", "--fresh", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == 2
    # Asked for more steps than it had: a new run, with a hint that --resume would continue the old one.
    assert main(["train", "--db", db, *FLAGS, "--steps", "15", "--json"]) == 0
    captured = capsys.readouterr()
    assert "run 2 with these settings finished at step 10; `--resume` continues it" in captured.err
    assert json.loads(captured.out)["run_id"] == 3
    assert main(["train", "--db", db, *FLAGS, "--resume", "--fresh"]) == 2
    assert "--resume and --fresh" in capsys.readouterr().err
    # The Python API keeps its word: without resume, always a new run.
    assert train(build_config({**SMALL, "steps": 10}), Database(db)).run_id == 4


def test_an_interrupted_run_gets_a_hint_and_a_new_run(tmp_path, capsys):
    db = Database(tmp_path / "r.db")
    with pytest.raises(TrainingInterrupted):
        Trainer(build_config({**SMALL, "steps": 20}), db, on_step=_interrupt_at(7)).run()
    assert main(["train", "--db", str(tmp_path / "r.db"), *FLAGS, "--steps", "20", "--json"]) == 0
    captured = capsys.readouterr()
    assert (
        "run 1 with these settings interrupted at step 7; `--resume` continues it; training a new run" in captured.err
    )
    assert json.loads(captured.out)["run_id"] == 2


def test_ctrl_c_in_bptt_train_saves_prints_the_resume_command_and_it_finishes_the_run(tmp_path):
    db_path = tmp_path / "r.db"
    args = [
        "train",
        "--db",
        str(db_path),
        "--task",
        "adding",
        "--seq-len",
        "40",
        "--hidden-size",
        "16",
        "--batch-size",
        "16",
        "--eval-size",
        "16",
        "--eval-every",
        "100",
        "--steps",
        "400",
        "--checkpoint-every",
        "40",
        "--json",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "bptt.cli.main", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    steps = 0
    while steps < 41 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
        try:  # the file is created empty, then the schema: not a database yet for a moment
            with Database(db_path, read_only=True) as db:
                steps = max([r.steps_done for r in db.runs()], default=0)
        except DatabaseError:
            pass
    assert process.poll() is None, process.stderr.read()
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    with Database(db_path) as db:
        (row,) = db.runs()
        assert row.status == "interrupted" and 40 < row.steps_done < 400
        assert load_checkpoint(row.checkpoint)["step"] == row.steps_done
    (line,) = err.strip().splitlines()
    assert line.startswith(
        f"bptt: interrupted: run 1 stopped at step {row.steps_done}, checkpoint saved; resume with: bptt train "
    )
    command = shlex.split(line.split("resume with: ", 1)[1])
    assert command == ["bptt", *args, "--resume"]
    done = subprocess.run([sys.executable, "-m", "bptt.cli.main", *command[1:]], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"bptt: resuming run 1 from step {row.steps_done}" in done.stderr
    with Database(db_path) as db:
        (row,) = db.runs()
        assert row.status == "finished" and row.steps_done == 400
        assert [s.step for s in db.steps(row.id)] == list(range(1, 401))


def test_what_an_interrupt_says_matches_what_was_saved():
    assert (
        TrainingInterrupted(None, 12, None).describe()
        == "stopped at step 12, before its first checkpoint: nothing was saved"
    )
    assert (
        TrainingInterrupted(3, 12, None).describe()
        == "run 3 stopped at step 12, before its first checkpoint; a resume starts it from step 0"
    )
    assert TrainingInterrupted(3, 40, 40).describe() == "run 3 stopped at step 40, checkpoint saved"
    assert (
        TrainingInterrupted(3, 45, 40).describe() == "run 3 stopped during step 46; its last checkpoint is of step 40"
    )


# -- SIGTERM, as Ctrl-C ---------------------------------------------------------------------------------
def test_sigterm_stops_at_the_step_boundary_as_ctrl_c_does(tmp_path):
    def terminate(done, loss):
        if done == 7:
            signal.raise_signal(signal.SIGTERM)

    db = Database(tmp_path / "r.db")
    with pytest.raises(TrainingInterrupted) as stopped:
        Trainer(build_config({**SMALL, "steps": 20}), db, on_step=terminate).run()
    assert (stopped.value.step, stopped.value.saved_step, stopped.value.exit_code) == (7, 7, 143)
    row = db.run(1)
    assert row.status == "interrupted" and row.reason == "stopped by SIGTERM at step 7"
    assert load_checkpoint(row.checkpoint)["step"] == 7
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the process's own handler, back
    assert train(build_config({**SMALL, "steps": 20}), db, resume=True).steps_done == 20


def test_a_second_sigterm_stops_at_once_and_one_while_saving_waits():
    with StopOnInterrupt() as stop:
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested and stop.signal_number == signal.SIGTERM
        with stop.saving():
            signal.raise_signal(signal.SIGTERM)  # only noted
        with pytest.raises(Terminated):
            signal.raise_signal(signal.SIGTERM)


def test_sigterm_during_any_command_ends_it_as_ctrl_c_with_exit_code_143(monkeypatch, capsys):
    def terminated(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(runs_command, "Database", terminated)
    assert main(["runs"]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == "bptt: terminated (SIGTERM)"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.slow
def test_sigterm_to_bptt_train_saves_names_the_resume_command_and_exits_143(tmp_path):
    db_path = tmp_path / "r.db"
    args = ["train", "--db", str(db_path), *FLAGS[:-4], "--steps", "2000", "--checkpoint-every", "40"]
    process = subprocess.Popen(
        [sys.executable, "-m", "bptt.cli.main", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline, steps = time.time() + 120, 0
    while steps < 41 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
        try:
            with Database(db_path, read_only=True) as db:
                steps = max([r.steps_done for r in db.runs()], default=0)
        except DatabaseError:
            pass
    assert process.poll() is None, process.stderr.read()
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    with Database(db_path) as db:
        (row,) = db.runs()
        assert row.status == "interrupted" and row.reason.startswith("stopped by SIGTERM at step")
        assert load_checkpoint(row.checkpoint)["step"] == row.steps_done
    (line,) = err.strip().splitlines()
    assert line.startswith(f"bptt: interrupted by SIGTERM: run 1 stopped at step {row.steps_done}, checkpoint saved")
    assert shlex.split(line.split("resume with: ", 1)[1]) == ["bptt", *args, "--resume"]
