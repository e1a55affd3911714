"""The `bptt` command: a run from flags or YAML, --json, one-line errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from bptt.cli.main import main

FAST = [
    "--seq-len",
    "8",
    "--hidden-size",
    "8",
    "--batch-size",
    "8",
    "--steps",
    "6",
    "--eval-size",
    "16",
    "--eval-every",
    "3",
]


def test_train_json_summary(tmp_path, capsys):
    db = tmp_path / "r.db"
    code = main(
        [
            "train",
            "--db",
            str(db),
            "--task",
            "adding",
            "--cell",
            "rnn",
            "--activation",
            "sigmoid",
            "--init",
            "xavier",
            "--clip-norm",
            "1.0",
            "--seed",
            "0",
            *FAST,
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == "adding" and summary["status"] == "finished"
    assert summary["baseline"] == pytest.approx(1 / 6)
    assert summary["metric"] == "mse" and summary["test_loss"] > 0
    assert summary["config"]["activation"] == "sigmoid" and summary["config"]["clip_norm"] == 1.0
    assert db.exists()


def test_yaml_config_gives_the_same_run_as_flags(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text(
        "task: adding\nseq_len: 8\nhidden_size: 8\nbatch_size: 8\nsteps: 6\neval_size: 16\neval_every: 3\ncell: gru\n"
    )
    assert main(["train", "--db", str(tmp_path / "a.db"), "--config", str(path), "--json"]) == 0
    from_yaml = json.loads(capsys.readouterr().out)
    assert main(["train", "--db", str(tmp_path / "b.db"), "--cell", "gru", *FAST, "--json"]) == 0
    from_flags = json.loads(capsys.readouterr().out)
    assert from_yaml["config"] == from_flags["config"]
    assert from_yaml["test_loss"] == from_flags["test_loss"]


def test_flags_override_the_yaml_file(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("cell: gru\nhidden_size: 4\n")
    assert (
        main(
            [
                "train",
                "--db",
                str(tmp_path / "a.db"),
                "--config",
                str(path),
                "--hidden-size",
                "8",
                *FAST[:2],
                *FAST[4:],
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["config"]["hidden_size"] == 8


@pytest.mark.parametrize(
    "args,message",
    [
        (["--cell", "transformer"], "--cell: must be one of rnn, lstm, gru, indrnn"),
        (["--activation", "swish"], "--activation: must be one of leaky_relu, prelu, relu, sigmoid, tanh"),
        (["--task", "chess"], "--task: must be one of adding"),
        (["--init", "he"], "--init: must be one of pytorch"),
        (["--hidden-size", "0"], "--hidden-size: Input should be greater than 0"),
        (["--hidden-size", "many"], "--hidden-size: Input should be a valid integer"),
        (["--task", "sentiment", "--delay", "60", "--seq-len", "10"], "--seq-len must be an int >= 65"),
        (["--config", "missing.yaml"], "config: file not found"),
        (["--no-such-flag"], "No such option"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, message):
    db = tmp_path / "r.db"
    assert main(["train", "--db", str(db), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bptt: error: ") and message in err
    assert len(err.splitlines()) == 1
    assert not db.exists()


def test_malformed_and_unknown_yaml_keys(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cell: [rnn\n")
    assert main(["train", "--db", str(tmp_path / "r.db"), "--config", str(bad)]) == 2
    assert "malformed YAML" in capsys.readouterr().err
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("cell: rnn\nhiden_size: 8\n")
    assert main(["train", "--db", str(tmp_path / "r.db"), "--config", str(unknown)]) == 2
    assert "unknown setting 'hiden_size'; did you mean 'hidden_size'?" in capsys.readouterr().err
    assert not (tmp_path / "r.db").exists()


def test_the_installed_command_exits_2_on_bad_input(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bptt.cli.main", "train", "--db", str(tmp_path / "r.db"), "--cell", "cnn"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    err = done.stderr.strip()
    assert err.startswith("bptt: error: --cell: must be one of rnn, lstm, gru, indrnn") and err.endswith("(got 'cnn')")


def test_runs_lists_the_database(tmp_path, capsys):
    db = tmp_path / "r.db"
    assert main(["train", "--db", str(db), *FAST]) == 0
    capsys.readouterr()
    assert main(["runs", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "finished" in out and "adding" in out


def test_task_options_reach_the_task(tmp_path, capsys):
    args = [
        "train",
        "--db",
        str(tmp_path / "r.db"),
        "--task",
        "sentiment",
        "--delay",
        "3",
        "--steps",
        "2",
        "--hidden-size",
        "4",
        "--eval-size",
        "8",
        "--task-option",
        "negation_prob=0",
        "--json",
    ]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["config"]["task_options"] == {"negation_prob": 0}
    assert main([*args[:-3], "--task-option", "negation=0"]) == 2
    assert "allowed: negation_prob" in capsys.readouterr().err


def test_malformed_task_option_value_is_a_usage_error(tmp_path, capsys):
    assert main(["train", "--db", str(tmp_path / "r.db"), "--task-option", "negation_prob=[1"]) == 2
    assert "malformed value" in capsys.readouterr().err
    assert not (tmp_path / "r.db").exists()
