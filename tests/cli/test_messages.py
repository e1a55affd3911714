"""What the CLI says: typed --help from the config, only the options a command uses, errors in the
flag's spelling with "did you mean", one default database, and output that reads."""

import csv
import math
import sys
from datetime import datetime

import pytest
import torch
import yaml
from click.testing import CliRunner

from bptt import diagnose
from bptt.build import make_model, make_task
from bptt.cli.diagnose import command as diagnose_command
from bptt.cli.main import cli, main
from bptt.cli.output import plural
from bptt.config import TRAINING_FIELDS, RunConfig, build_config
from bptt.diagnostics import Diagnosis
from bptt.diagnostics.own import ModuleDiagnosis
from bptt.store import Database
from bptt.store.database import sweeps_folder_for
from bptt.training import Trainer

TINY = {
    "task": "adding",
    "seq_len": 5,
    "hidden_size": 4,
    "batch_size": 4,
    "eval_size": 4,
    "steps": 2,
    "eval_every": 1,
    "checkpoint_every": 1,
    "progress": False,
}


def _help(*command):
    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    return result.output


def _train(db_path, sweep=None):
    with Database(db_path) as db:
        return Trainer(build_config(TINY), db, sweep=sweep).run()


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bptt: error: ") and len(err.splitlines()) == 1, err
    return err


# -- 1. typed --help ------------------------------------------------------------------------------
def test_help_shows_each_settings_type_or_choices():
    text = _help("train")
    for shown in (
        "--cell [rnn|lstm|gru|indrnn",
        "--activation [leaky_relu|modrelu|prelu|relu|sigmoid|tanh]",
        "--optimizer [adam|sgd|rmsprop]",
        "--readout [last|mean|attention]",
        "--nonfinite [skip|raise]",
        "--init [pytorch|chrono|",
        "--engine [auto|",
        "--hidden-size INTEGER",
        "--lr FLOAT",
        "--task TEXT",
        "--device TEXT",
        "--clip-norm FLOAT|none",
        "--forget-bias FLOAT|none",
        "--residual / --no-residual",
        "[default: 64]",
    ):
        assert shown in text, shown
    assert "VALUE" not in text.replace("KEY=VALUE", "")
    assert "--progress" not in text and "ucr:NAME" in text


def test_help_claims_no_single_default_for_the_cells_own():
    lines = " ".join(_help("train").split())
    lr = lines[lines.index("--lr FLOAT") : lines.index("--momentum")]
    assert "0.001 rnn" in lr and "0.01 lstm/gru" in lr and "[default:" not in lr
    forget_bias = lines[lines.index("--forget-bias") : lines.index("--residual")]
    assert "[default:" not in forget_bias
    steps = lines[lines.index("--steps INTEGER") : lines.index("--target-metric")]  # the task may recommend its own
    assert "unset: 1000" in steps and "adding 2000" in steps and "[default:" not in steps


# -- 2. only the options a command uses ----------------------------------------------------------
def test_diagnose_offers_the_model_settings_and_no_training_ones():
    offered = {p.name for p in diagnose_command.params} & set(RunConfig.model_fields)
    assert offered == set(RunConfig.model_fields) - TRAINING_FIELDS
    text = _help("diagnose")
    assert "--cell [rnn|lstm|gru|indrnn" in text and "--tbptt" in text and "--seed" in text
    for training in ("--optimizer", "--lr ", "--steps", "--clip-norm", "--checkpoint-every", "--batch-size"):
        assert training not in text, training


# -- 3. one default database ---------------------------------------------------------------------
def test_diagnose_run_reads_bptt_db_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert "no database at bptt.db" in _error(capsys, ["diagnose", "--run", "1"])
    assert list(tmp_path.iterdir()) == []
    _train(tmp_path / "bptt.db")
    assert main(["diagnose", "--run", "1"]) == 0
    out = capsys.readouterr().out
    assert "target loss" in out and "not reached" in out and "never" not in out
    assert "--db applies to --run only" in _error(capsys, ["diagnose", "--db", "bptt.db", "--task", "adding"])


# -- 4. an unknown sweep --------------------------------------------------------------------------
def test_runs_of_an_unknown_sweep_lists_the_known_ones(tmp_path, capsys):
    _train(tmp_path / "r.db", sweep="remedies")
    err = _error(capsys, ["runs", "--db", str(tmp_path / "r.db"), "--sweep", "nope"])
    assert "--sweep: no runs of sweep 'nope'" in err and "sweeps here: remedies" in err


# -- 5. errors in the flag's spelling, "did you mean" --------------------------------------------
@pytest.mark.parametrize(
    "args,message",
    [
        (["--seq-len", "0"], "--seq-len: Input should be greater than 0"),
        (["--cell", "gru", "--forget-bias", "1"], "--forget-bias applies to cell 'lstm' only"),
        (["--task", "adding", "--task-variant", "x"], "--task-variant must be one of default, hochreiter, tcn"),
        (["--task", "sentiment", "--task-option", "negation_prob=.nan"], "--task-option negation_prob: must be"),
    ],
)
def test_an_error_from_a_flag_names_the_flag(tmp_path, capsys, args, message):
    assert message in _error(capsys, ["train", "--db", str(tmp_path / "r.db"), *args])
    assert not (tmp_path / "r.db").exists()


def test_an_error_from_a_file_names_the_key_and_an_unknown_key_gets_a_suggestion(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("seq_len: 0\n")
    assert "bptt: error: seq_len: Input should be greater than 0" in _error(capsys, ["train", "--config", str(path)])
    path.write_text("seq-len: 8\n")
    err = _error(capsys, ["train", "--config", str(path)])
    assert err == "bptt: error: unknown setting 'seq-len'; did you mean 'seq_len'?"
    path.write_text("colour: red\n")
    err = _error(capsys, ["train", "--config", str(path)])
    assert err.endswith("unknown setting 'colour'; the settings are listed by `bptt train --help`")
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "s", "base": {k: v for k, v in TINY.items() if k != "progress"}}))
    err = _error(capsys, ["sweep", str(spec), "--db", str(tmp_path / "r.db"), "--set", "hiden_size=3"])
    assert err.endswith("--set: unknown setting 'hiden_size'; did you mean 'hidden_size'?")
    assert "progress" not in err and not (tmp_path / "r.db").exists()


# -- 6. exports ------------------------------------------------------------------------------------
def test_parquet_without_pyarrow_names_the_extra(tmp_path, capsys, monkeypatch):
    _train(tmp_path / "r.db")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    err = _error(capsys, ["export", "--db", str(tmp_path / "r.db"), "-o", str(tmp_path / "runs.parquet")])
    assert "pip install 'bptt[parquet]'" in err and not (tmp_path / "runs.parquet").exists()


def test_export_writes_times_as_iso_8601_utc(tmp_path, capsys):
    _train(tmp_path / "r.db")
    out = tmp_path / "runs.csv"
    assert main(["export", "--db", str(tmp_path / "r.db"), "-o", str(out)]) == 0
    assert "wrote 1 run to" in capsys.readouterr().out
    with open(out) as handle:
        row = next(csv.DictReader(handle))
    for name in ("created_at", "finished_at"):
        assert row[name].endswith("+00:00") and datetime.fromisoformat(row[name]).year >= 2024, row[name]


# -- 7. wording ------------------------------------------------------------------------------------
def test_the_verdict_says_no_update_was_measured_rather_than_na(tmp_path, monkeypatch):
    config = build_config(TINY)
    task = make_task(config)
    result = diagnose(make_model(config, task), task, examples=4)
    monkeypatch.setattr(Diagnosis, "update_share_recent", property(lambda self: math.nan))
    verdict = result.verdict()
    assert "no W_hh update measured" in verdict and "n/a" not in verdict


def test_a_dry_run_says_each_runs_state_once(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "s", "base": {k: v for k, v in TINY.items() if k != "progress"}}))
    assert main(["sweep", str(spec), "--db", str(tmp_path / "r.db"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert " new " in out and "new: new" not in out


def test_a_database_named_sweeps_keeps_its_sweeps_in_a_folder_that_reads(tmp_path):
    assert sweeps_folder_for(tmp_path / "r.db") == tmp_path / "r-sweeps"
    assert sweeps_folder_for(tmp_path / "sweeps.db") == tmp_path / "sweeps-runs"
    (tmp_path / "sweeps-sweeps").mkdir()  # written by an earlier bptt: still used, so its runs resume
    assert sweeps_folder_for(tmp_path / "sweeps.db") == tmp_path / "sweeps-sweeps"


def test_counts_agree_with_their_nouns():
    assert plural(1, "step") == "1 step" and plural(0, "run") == "0 runs" and plural(2, "file") == "2 files"


def test_a_module_verdict_without_any_input_gradient_says_so_rather_than_na():
    zero = ModuleDiagnosis("m", 0.5, torch.zeros(20), 0.0)
    assert zero.verdict() == "no input contribution measured (dL/dx is zero at every step); output sensitivity 0"
    silent_end = ModuleDiagnosis("m", 0.5, torch.cat([torch.ones(19), torch.zeros(1)]), 0.1)
    assert "||dL/dx|| is zero at the last step" in silent_end.verdict() and "n/a" not in silent_end.verdict()
    usual = ModuleDiagnosis("m", 0.5, torch.linspace(0.1, 1.0, 20), 0.1)
    assert "||dL/dx|| at the first step is 0.1 of the last" in usual.verdict()
