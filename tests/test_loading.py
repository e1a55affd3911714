"""Models rebuilt from where they were left: a saved run's checkpoint (from its own folder only), or a
user's factory function; every failure one line naming the option."""

import pytest
import torch

from bptt.config import build_config
from bptt.loading import SourceError, checkpoint_of, model_from_run, module_from_factory, own_folders
from bptt.store import Database
from bptt.training import Trainer

SMALL = {"task": "adding", "seq_len": 8, "hidden_size": 8, "batch_size": 8, "eval_size": 16}
SMALL |= {"steps": 4, "eval_every": 2, "checkpoint_every": 2, "progress": False}


@pytest.fixture
def trained(tmp_path):
    db = Database(tmp_path / "runs.db")
    trainer = Trainer(build_config({**SMALL, "cell": "gru"}), db)
    result = trainer.run()
    yield db, result.run_id, trainer.model
    db.close()


def test_a_saved_run_comes_back_with_its_trained_weights(trained):
    db, run_id, model = trained
    config, task, loaded = model_from_run(db, run_id)
    assert config.cell == "gru" and task.name == "adding" and loaded.trained_steps == 4
    for (name, mine), (_, theirs) in zip(loaded.state_dict().items(), model.state_dict().items()):
        assert torch.equal(mine, theirs), name


def test_an_unknown_run_or_one_without_a_checkpoint_is_one_line(trained, tmp_path):
    db, run_id, _ = trained
    with pytest.raises(SourceError, match=rf"^--run: no run 99 in .*runs\.db \(runs: {run_id}\)$"):
        model_from_run(db, 99)
    checkpoint_of(db, db.run(run_id)).unlink()
    with pytest.raises(SourceError, match=r"^--run: run 1 has no checkpoint on disk \(status finished, checkpoint "):
        model_from_run(db, run_id)


def test_a_checkpoint_that_does_not_fit_the_run_is_refused(trained):
    db, run_id, _ = trained
    path = checkpoint_of(db, db.run(run_id))
    state = torch.load(path, weights_only=True)
    state["model"] = {"nonsense": torch.zeros(1)}
    torch.save(state, path)
    with pytest.raises(SourceError, match=rf"^--run: checkpoint .* does not fit run {run_id}'s model \("):
        model_from_run(db, run_id)


def test_a_checkpoint_is_read_from_the_runs_own_folder_only(trained, tmp_path):
    db, run_id, _ = trained
    row = db.run(run_id)
    assert own_folders(row) == [(f"run-{run_id}",)]
    assert checkpoint_of(db, row) == db.runs_folder / f"run-{run_id}" / "checkpoint.pt"
    elsewhere = tmp_path / "elsewhere" / "checkpoint.pt"
    with db.transaction() as con:
        con.execute("UPDATE runs SET checkpoint = ? WHERE id = ?", (str(elsewhere), run_id))
    with pytest.raises(SourceError, match=r"outside the run's own folder \(\.\.\./run-1/checkpoint\.pt\); refused$"):
        checkpoint_of(db, db.run(run_id))


def test_a_sweeps_run_may_also_lie_in_its_sweep_folder(tmp_path):
    with Database(tmp_path / "s.db") as db:
        Trainer(build_config(SMALL), db, sweep="grid").run()
        row = db.run(1)
        assert own_folders(row) == [("run-1",), ("grid", row.identity)]


def test_a_factory_builds_the_users_module(tmp_path):
    (tmp_path / "model.py").write_text("import torch\n\ndef build():\n    return torch.nn.GRU(3, 5)\n")
    module = module_from_factory(f"{tmp_path / 'model.py'}:build")
    assert isinstance(module, torch.nn.GRU) and module.hidden_size == 5


@pytest.mark.parametrize(
    "source,spec,message",
    [
        (None, "model.py", r"expected path/to/file\.py:factory, got 'model\.py'"),
        (None, "missing.py:build", "file not found: missing.py"),
        (b"\xff\xfe\x00bad", "model.py:build", "is not UTF-8 text"),
        ("raise RuntimeError('at import')\n", "model.py:build", "importing .* failed: RuntimeError: at import"),
        ("x = 1\n", "model.py:build", "defines no callable 'build'"),
        ("def build():\n    raise ValueError('inside')\n", "model.py:build", r"build\(\) failed: ValueError: inside"),
        ("def build():\n    return 3\n", "model.py:build", r"must return a torch\.nn\.Module, got int"),
    ],
)
def test_a_factory_that_cannot_build_is_one_line_naming_module(tmp_path, monkeypatch, source, spec, message):
    monkeypatch.chdir(tmp_path)
    if isinstance(source, bytes):
        (tmp_path / "model.py").write_bytes(source)
    elif source is not None:
        (tmp_path / "model.py").write_text(source)
    with pytest.raises(SourceError, match=f"^--module: .*{message}"):
        module_from_factory(spec)
