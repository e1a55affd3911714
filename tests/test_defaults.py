"""Defaults that learn: `bptt train --task T --cell C` with nothing else beats the memoryless baseline.

Each shipped task is trained at the defaults (the task's own recommendations included), stopping
early once the validation metric clearly beats chance (``target_metric`` is a schedule setting:
it changes when a run stops, not what is trained), and its test result is checked against the
memoryless baseline.
"""

import json

import pytest
import torch

from bptt.cli.main import main
from bptt.config import CELL_LR, LSTM_FORGET_BIAS, RunConfig, build_config, recommended_settings
from bptt.training import train

#: (task, cell, validation target that stops the run early; None: the validation split is too small to
#: trust, the run goes to its steps). Each cell is one that learns the task at its default length.
SHIPPED = [
    ("adding", "lstm", 0.03),
    ("copy", "gru", 0.3),
    ("temporal_order", "gru", 0.9),
    ("sentiment", "lstm", 0.95),
    ("sentiment", "rnn", 0.95),
    ("digits", "lstm", 0.6),
    ("digits", "rnn", 0.5),
    ("pdigits", "gru", 0.6),
    ("mnist1d", "lstm", 0.6),
    ("ucr:GunPoint", "lstm", None),
    ("ucr:ArrowHead", "lstm", None),
]
DATASETS = {"digits", "pdigits", "mnist1d"}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: extra threads only contend on a shared machine
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("task,cell,target", SHIPPED, ids=[f"{t}-{c}" for t, c, _ in SHIPPED])
def test_the_defaults_learn_every_shipped_task(task, cell, target):
    if task in DATASETS or task.startswith("ucr:"):
        pytest.importorskip(
            "sklearn" if task in DATASETS - {"mnist1d"} else "mnist1d" if task == "mnist1d" else "sktime"
        )
    config = build_config({"task": task, "cell": cell, "target_metric": target, "progress": False})
    result = train(config)
    final = result.final
    assert result.status == "finished", result.reason
    if final.metric == "mse":
        assert final.test_loss < 0.3 * final.baseline, final
    elif task == "copy":
        assert final.test_loss < 0.9 * final.baseline and final.test_metric > 2 * final.chance_metric, final
    else:
        # Well clear of chance: at least halfway from chance to perfect, or 20 points above it.
        assert final.test_metric > min(
            final.chance_metric + 0.5 * (1 - final.chance_metric), final.chance_metric + 0.2
        ), final


def test_settings_left_unset_take_the_cell_and_task_recommendations():
    lstm = build_config({"task": "adding", "cell": "lstm"})
    assert lstm.lr == CELL_LR["lstm"] and lstm.forget_bias == LSTM_FORGET_BIAS and lstm.clip_norm == 1.0
    assert lstm.steps == recommended_settings("adding")["steps"]
    rnn = build_config({"task": "digits"})
    assert rnn.cell == "rnn" and rnn.lr == CELL_LR["rnn"] and rnn.forget_bias is None
    assert rnn.steps == RunConfig.model_fields["steps"].default
    # What is set stays set: an explicit value, an explicit null (no clipping; torch's forget-gate init).
    explicit = build_config(
        {"task": "adding", "cell": "lstm", "lr": 0.5, "steps": 7, "clip_norm": None, "forget_bias": None}
    )
    assert (explicit.lr, explicit.steps, explicit.clip_norm, explicit.forget_bias) == (0.5, 7, None, None)
    assert build_config({"cell": "lstm", "init": "chrono"}).forget_bias is None  # chrono sets the gate itself


def test_none_on_the_command_line_switches_off_clipping_and_the_forget_bias(tmp_path, capsys):
    code = main(
        [
            "train",
            "--task",
            "adding",
            "--seq-len",
            "5",
            "--cell",
            "lstm",
            "--hidden-size",
            "4",
            "--steps",
            "2",
            "--eval-size",
            "8",
            "--clip-norm",
            "none",
            "--forget-bias",
            "None",
            "--db",
            str(tmp_path / "r.db"),
            "--json",
        ]
    )
    assert code == 0
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["clip_norm"] is None and config["forget_bias"] is None
    assert build_config({"clip_norm": "1.5"}).clip_norm == 1.5


def test_the_filled_settings_are_part_of_the_identity():
    implicit = build_config({"task": "adding", "cell": "lstm"})
    explicit = build_config({"task": "adding", "cell": "lstm", "lr": CELL_LR["lstm"], "forget_bias": LSTM_FORGET_BIAS})
    assert implicit == explicit and implicit.identity() == explicit.identity()
    assert implicit.identity() != build_config({"task": "adding", "cell": "lstm", "lr": 0.001}).identity()
    assert RunConfig.model_validate(implicit.model_dump()) == implicit  # a stored config rebuilds unchanged


def test_help_names_the_recommendations():
    lr = RunConfig.model_fields["lr"].description
    assert "0.001 rnn" in lr and "0.01 lstm/gru" in lr
    steps = RunConfig.model_fields["steps"].description
    assert "adding 2000" in steps and "temporal_order 2000" in steps and "ucr:NAME 500" in steps
    assert "ucr:NAME 0.001" in RunConfig.model_fields["lr"].description
