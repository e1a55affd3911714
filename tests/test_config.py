"""Run settings: one validated object from YAML or the CLI, with a stable identity."""

import subprocess
import sys

import pytest

from bptt.config import ConfigError, RunConfig, build_config, load_config


def test_defaults_live_in_the_config():
    config = build_config({})
    assert config.task == "adding" and config.cell == "rnn" and config.init == "pytorch"


def test_yaml_and_overrides_build_the_same_object(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: adding\nseq_len: 200\ncell: rnn\nactivation: sigmoid\nclip_norm: 1.0\n")
    from_file = load_config(path, hidden_size=16)
    direct = build_config(
        {"task": "adding", "seq_len": 200, "activation": "sigmoid", "clip_norm": 1.0, "hidden_size": 16}
    )
    assert from_file == direct


@pytest.mark.parametrize(
    "values,expected",
    [
        ({"cell": "transformer"}, "cell: must be one of rnn, lstm, gru, indrnn"),
        ({"activation": "swish"}, "activation: must be one of leaky_relu, prelu, relu, sigmoid, tanh"),
        ({"init": "he"}, "init: must be one of pytorch, chrono, identity, kaiming, orthogonal, xavier"),
        ({"task": "chess"}, "task: must be one of adding, copy"),
        ({"hidden_size": 0}, "hidden_size: Input should be greater than 0"),
        ({"steps": -5}, "steps: Input should be greater than 0"),
        ({"hiden_size": 8}, "unknown setting 'hiden_size'; did you mean 'hidden_size'?"),
        ({"colour": 8}, "unknown setting 'colour'; the settings are listed by `bptt train --help`"),
        ({"cell": "lstm", "activation": "relu"}, "activation applies to cells rnn, indrnn"),
        ({"cell": "gru", "forget_bias": 1.0}, "forget_bias applies to cell 'lstm' only"),
    ],
)
def test_errors_name_the_field_and_the_allowed_values(values, expected):
    with pytest.raises(ConfigError) as error:
        build_config(values)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cell: [rnn\n")
    with pytest.raises(ConfigError, match="malformed YAML .* line"):
        load_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(listed)


def test_config_is_frozen():
    config = build_config({})
    with pytest.raises(Exception):
        config.cell = "lstm"


def test_identity_ignores_the_schedule_but_not_the_model():
    base = build_config({"seq_len": 50})
    assert base.identity() == build_config({"seq_len": 50, "steps": 7, "eval_every": 3}).identity()
    assert base.identity() != build_config({"seq_len": 51}).identity()
    assert base.identity() != build_config({"seq_len": 50, "seed": 1}).identity()


def test_identity_is_stable_across_processes():
    code = "from bptt.config import build_config; print(build_config({'seq_len': 50, 'cell': 'gru'}).identity())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == build_config({"seq_len": 50, "cell": "gru"}).identity()
    assert len(other) == 16


def test_label_names_the_remedies():
    config = RunConfig(activation="sigmoid", init="xavier", clip_norm=1.0, residual=True, readout="attention")
    assert config.label() == "sigmoid+xavier+clip1+residual+attention"
    assert RunConfig(cell="lstm", forget_bias=1.0, clip_norm=None).label() == "lstm+fb1"


def test_settings_that_would_be_ignored_are_refused():
    with pytest.raises(ConfigError, match="momentum applies to optimizer sgd or rmsprop"):
        build_config({"momentum": 0.9})
    assert build_config({"optimizer": "sgd", "momentum": 0.9}).momentum == 0.9


def test_a_device_that_is_not_here_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for device in ("cuda", "cuda:99", "abacus", "meta", "mps" if not torch.backends.mps.is_available() else "xla"):
        with pytest.raises(ConfigError, match=r"device: must be a device this machine has: cpu \(got"):
            build_config({"device": device})
    assert build_config({"device": "cpu"}).device == "cpu"


def test_chrono_and_target_settings():
    config = build_config({"cell": "lstm", "init": "chrono", "t_max": 1000})
    assert config.label() == "lstm+chrono1000+clip1"
    assert build_config({"cell": "gru", "init": "chrono"}).t_max is None  # the builder uses the task's length
    for values, match in (
        ({"init": "chrono"}, "applies to cells lstm and gru"),
        ({"cell": "lstm", "init": "chrono", "forget_bias": 1.0}, "give one"),
        ({"cell": "lstm", "t_max": 10}, "t_max applies to init 'chrono' only"),
        ({"cell": "lstm", "init": "chrono", "t_max": 1}, "t_max"),
    ):
        with pytest.raises(ConfigError, match=match):
            build_config(values)
    # The target is a schedule setting: a run keeps its identity when it is set.
    assert build_config({"target_metric": 1e-3}).identity() == build_config({}).identity()
