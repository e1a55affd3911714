"""A config describes a run on any machine; the device is checked where work starts. A database of runs
trained on a GPU reads back on a machine without one: listed, reported, diagnosed (on the CPU, said in
one line) and collected."""

import json
import sqlite3
import warnings

import pytest
import torch

from bptt.cli.main import main
from bptt.config import ConfigError, build_config
from bptt.loading import model_from_run
from bptt.report.reproduce import spec_for
from bptt.store import Database
from bptt.sweeps.worker import Assignment, run_assignment
from bptt.training import Trainer

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="reads a GPU's runs on a machine without one")

TINY = ["--task", "adding", "--seq-len", "8", "--hidden-size", "8", "--batch-size", "8", "--eval-size", "16"]
TINY += ["--steps", "4", "--eval-every", "2", "--checkpoint-every", "2", "--record-every", "2"]
HERE = "device: must be a device this machine has: cpu (got 'cuda')"
MOVED = "run 1 was trained on cuda, which this machine lacks: loaded on cpu"


def as_a_gpu_wrote_it(db_path):
    """Every run of the database as a GPU machine writes it: device cuda in its stored config, its final
    summary and its checkpoint's copy of the config. (The weights stay CPU tensors: a checkpoint is read
    onto the CPU in any case.)"""
    with sqlite3.connect(db_path) as con:
        for run_id, config, final, checkpoint in con.execute(
            "SELECT id, config, final, checkpoint FROM runs"
        ).fetchall():
            config, final = json.loads(config), json.loads(final)
            assert config["device"] == final["device"] == "cpu"
            config["device"] = final["device"] = "cuda"
            con.execute(
                "UPDATE runs SET config = ?, final = ? WHERE id = ?", (json.dumps(config), json.dumps(final), run_id)
            )
            if checkpoint:
                path = db_path.parent / checkpoint if not checkpoint.startswith("/") else checkpoint
                state = torch.load(path, weights_only=True)
                state["config"]["device"] = "cuda"
                torch.save(state, path)


@pytest.fixture
def gpu_db(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--db", "gpu.db", *TINY, "--json"]) == 0
    capsys.readouterr()
    as_a_gpu_wrote_it(tmp_path / "gpu.db")
    return tmp_path / "gpu.db"


def test_a_gpu_runs_database_is_listed_and_reported_here(gpu_db, capsys):
    assert main(["runs", "--db", str(gpu_db)]) == 0
    out = capsys.readouterr().out
    assert "finished" in out and "adding" in out
    assert main(["report", "--db", str(gpu_db), "-o", "report.html"]) == 0
    assert (gpu_db.parent / "report.html").stat().st_size > 0
    assert main(["export", "--db", str(gpu_db), "-o", "runs.csv"]) == 0
    assert ",cuda," in (gpu_db.parent / "runs.csv").read_text()


def test_a_gpu_run_is_diagnosed_on_the_cpu_saying_so_in_one_line(gpu_db, capsys):
    assert main(["diagnose", "--db", str(gpu_db), "--run", "1", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"bptt: {MOVED}"]
    report = json.loads(captured.out)
    assert report["source"] == "run" and report["config"]["device"] == "cpu"
    assert report["history"]["steps_recorded"] == 4
    with Database(gpu_db, read_only=True) as db, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config, _, model = model_from_run(db, 1)
    assert [str(w.message) for w in caught] == [MOVED]
    assert config.device == "cpu" and all(p.device.type == "cpu" for p in model.parameters())
    assert model.trained_steps == 4


def test_a_gpu_sweeps_database_is_collected_here(tmp_path, monkeypatch, capsys):
    """`bptt reproduce canonical --quick --device cuda` on a GPU, then --collect on this machine."""
    monkeypatch.chdir(tmp_path)
    chosen = ["--filter", "task=temporal_order", "--filter", "cell=gru", "--filter", "seq_len=100", "--seeds", "0"]
    shrunk = ["--set", "steps=2", "--set", "hidden_size=8", "--set", "eval_size=16", "--set", "eval_every=1"]
    _, on_gpu = spec_for("canonical", True, {"device": "cuda", "engine": "auto", "steps": 2, "hidden_size": 8,
                                              "eval_size": 16, "eval_every": 1}, [0],
                         {"task": ["temporal_order"], "cell": ["gru"], "seq_len": [100]})  # fmt: skip
    assert [run.config.device for run in on_gpu.runs] == ["cuda"]  # the spec expands on a machine without one
    (run,) = on_gpu.runs
    with Database("runs.db") as db:
        Trainer(run.config.model_copy(update={"device": "cpu"}), db, sweep=on_gpu.name).run()
    as_a_gpu_wrote_it(tmp_path / "runs.db")
    collect = ["reproduce", "canonical", "--quick", "--device", "cuda", *chosen, *shrunk]
    assert main([*collect, "--collect", "--db", "runs.db", "--out", "out"]) == 0
    capsys.readouterr()
    rows = (tmp_path / "out" / on_gpu.name / "runs.csv").read_text().splitlines()
    assert len(rows) == 2 and ",finished," in rows[1] and ",cuda," in rows[1]
    assert main([*collect, "--db", "runs.db", "--out", "out"]) == 2  # running them needs the GPU
    assert HERE in capsys.readouterr().err


def test_the_device_is_checked_where_work_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text("import torch\n\ndef build():\n    return torch.nn.LSTM(2, 4)\n")
    for argv in (
        ["train", "--db", "new.db", *TINY, "--device", "cuda"],
        ["diagnose", "--task", "adding", "--seq-len", "8", "--device", "cuda"],
        ["diagnose", "--module", "model.py:build", "--task", "adding", "--device", "cuda"],
    ):
        assert main(argv) == 2
        assert capsys.readouterr().err.splitlines() == [f"bptt: error: --{HERE}"]
    (tmp_path / "spec.yaml").write_text("name: s\nbase: {task: adding, seq_len: 8, hidden_size: 8, steps: 2}\n")
    assert main(["sweep", "spec.yaml", "--db", "new.db", "--set", "device=cuda"]) == 2
    assert HERE in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py", "spec.yaml"]  # nothing written
    config = build_config({"task": "adding", "seq_len": 8, "hidden_size": 8, "steps": 2, "device": "cuda"})
    with pytest.raises(ConfigError, match=HERE.replace("(", r"\(").replace(")", r"\)")):
        Trainer(config)
    outcome = run_assignment(Assignment(config.model_dump(), str(tmp_path / "run"), resume=False))
    assert outcome.status == "failed" and HERE in outcome.reason
