"""Sweep specs: expansion, one-line errors naming the key (exit code 2), stable run identities."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bptt.cli.main import main
from bptt.sweeps import SweepSpecError, expand_spec, load_spec

EXPERIMENTS = Path(__file__).resolve().parents[2] / "src" / "bptt" / "experiments"
BASE = {
    "task": "adding",
    "seq_len": 8,
    "hidden_size": 8,
    "batch_size": 8,
    "steps": 4,
    "eval_size": 16,
    "progress": False,
}


def spec(**parts):
    return {"name": "t", "base": BASE, **parts}


def test_grid_variants_include_and_seeds_expand_to_their_product():
    result = expand_spec(
        spec(
            grid={"activation": ["sigmoid", "tanh"], "seq_len": [8, 12]},
            variants=[{"name": "plain"}, {"name": "xavier+clip", "init": "xavier", "clip_norm": 1.0}],
            include=[{"name": "lstm", "cell": "lstm"}],
            seeds=[0, 1],
        )
    )
    assert len(result.runs) == (2 * 2 * 2 + 1) * 2
    configs = [r.config for r in result.runs]
    assert sum(c.init == "xavier" and c.clip_norm == 1.0 for c in configs) == 8
    assert {c.seed for c in configs} == {0, 1}
    assert [r.variant for r in result.runs][-2:] == ["lstm", "lstm"]
    assert len({r.identity for r in result.runs}) == len(result.runs)


def test_a_list_of_grids_is_the_union_of_their_products():
    result = expand_spec(
        spec(grid=[{"task": ["sentiment"], "delay": [2, 4]}, {"seq_len": [8, 10, 12]}], base={**BASE, "seq_len": None})
    )
    assert [(r.config.task, r.config.delay, r.config.seq_len) for r in result.runs] == [
        ("sentiment", 2, None),
        ("sentiment", 4, None),
        ("adding", None, 8),
        ("adding", None, 10),
        ("adding", None, 12),
    ]


def test_duplicate_runs_are_planned_once_and_overrides_filters_apply():
    result = expand_spec(spec(variants=[{"name": "a", "init": "xavier"}, {"name": "b", "init": "xavier"}]))
    assert len(result.runs) == 1 and result.runs[0].variant == "a"
    result = expand_spec(
        spec(grid={"seq_len": [8, 10, 12]}, seeds=[0, 1, 2]),
        overrides={"steps": 2},
        seeds=[5],
        filters={"seq_len": [8, 12]},
        name="small",
    )
    assert result.name == "small"
    assert [(r.config.seq_len, r.config.seed, r.config.steps) for r in result.runs] == [(8, 5, 2), (12, 5, 2)]


@pytest.mark.parametrize(
    "data,message",
    [
        (spec(grids={"seq_len": [8]}), "unknown key 'grids'; allowed: name"),
        (spec(grid={"hiden_size": [8]}), "grid: unknown setting 'hiden_size'"),
        ({"name": "t", "base": {**BASE, "colour": 1}}, "base: unknown setting 'colour'"),
        (spec(grid={"hidden_size": [8, 0]}), "hidden_size: Input should be greater than 0"),
        (spec(grid={"activation": ["tanh", "swish"]}), "activation: must be one of"),
        (spec(grid={"seq_len": 8}), "grid.seq_len: must be a non-empty list"),
        (spec(grid={"seed": [0, 1]}), "grid.seed: list seeds under the top-level 'seeds' key"),
        (spec(variants=[{"name": "x", "init": "xavier"}], grid={"init": ["orthogonal"]}), "both set 'init'"),
        (spec(variants=[{"name": "x", "clip": 1}]), "variants[0]: unknown setting 'clip'"),
        (spec(seeds=[0, -1]), "seeds: must be a non-empty list of integers >= 0"),
        ({"base": BASE}, "name: required"),
        (spec(base={**BASE, "task": "sentiment", "seq_len": 5, "delay": 10}), "seq_len must be an int >="),
    ],
)
def test_bad_specs_end_with_one_line_naming_the_key_and_exit_code_2(tmp_path, capsys, data, message):
    with pytest.raises(SweepSpecError, match=None) as error:
        expand_spec(data)
    assert message in str(error.value)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["sweep", str(path), "--db", str(tmp_path / "r.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bptt: error: sweep ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "r.db").exists()  # validated before anything runs


def test_bad_command_line_overrides_are_named(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec()))
    assert main(["sweep", str(path), "--set", "hidden_size=-3"]) == 2
    assert "hidden_size: Input should be greater than 0" in capsys.readouterr().err
    assert main(["sweep", str(path), "--set", "colour=red"]) == 2
    assert "--set: unknown setting 'colour'" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert "SPEC: no file " in capsys.readouterr().err  # a missing spec file is named, with the shipped names


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_loads(path):
    result = load_spec(path)
    assert result.runs and result.name == path.stem
    assert "expected wall time" in path.read_text().splitlines()[0].lower()


def test_run_identity_is_the_same_in_another_process(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec(grid={"cell": ["rnn", "gru"], "seq_len": [8, 16]}, seeds=[0, 3])))
    here = [r.identity for r in load_spec(path).runs]
    code = (
        "import json, sys; from bptt.sweeps import load_spec; "
        "print(json.dumps([r.identity for r in load_spec(sys.argv[1]).runs]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == here and len(set(here)) == 8


def test_include_alone_runs_only_its_entries_and_base_alone_runs_once_per_seed():
    result = expand_spec(spec(include=[{"name": "a", "cell": "gru"}, {"name": "b", "cell": "lstm"}], seeds=[0, 1]))
    assert [(r.variant, r.config.cell, r.config.seed) for r in result.runs] == [
        ("a", "gru", 0),
        ("a", "gru", 1),
        ("b", "lstm", 0),
        ("b", "lstm", 1),
    ]
    assert len(expand_spec(spec(seeds=[0, 1, 2])).runs) == 3
