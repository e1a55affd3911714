"""The Python API of the README: bptt.train returns the trained model, bptt.diagnose measures it."""

import pytest

import bptt
from bptt.loading import model_from_run
from bptt.store import Database
from bptt.training import evaluate

SMALL = {
    "task": "adding",
    "seq_len": 10,
    "hidden_size": 8,
    "batch_size": 8,
    "eval_size": 32,
    "steps": 6,
    "eval_every": 3,
    "checkpoint_every": 3,
    "progress": False,
}


def test_train_returns_the_trained_model_with_its_summary():
    result = bptt.train(SMALL)  # a mapping of settings, validated like a YAML file
    assert result.status == "finished" and result.config == bptt.RunConfig(**SMALL)
    assert result.model.trained_steps == 6 and result.task.name == "adding"
    _, metric = evaluate(result.model, result.task, result.task.eval_set("test"))
    assert metric == pytest.approx(result.final.test_metric)  # the model is the one the summary measured
    diagnosis = bptt.diagnose(result.model, result.task, examples=8)
    assert diagnosis.trained_steps == 6 and "(after 6 training steps)" in diagnosis.verdict()


def test_a_finished_run_trained_again_comes_back_with_its_weights(tmp_path):
    with Database(tmp_path / "r.db") as db:
        first = bptt.train(SMALL, db)
        again = bptt.train(SMALL, db, resume=True)  # already done: nothing is trained
        assert again.run_id == first.run_id and again.model.trained_steps == 6
        for name, value in first.model.state_dict().items():
            assert value.equal(again.model.state_dict()[name]), name
        _, _, loaded = model_from_run(db, first.run_id)
    assert loaded.trained_steps == 6


def test_the_top_level_exports_stay():
    for name in (
        "RNN",
        "LSTM",
        "GRU",
        "convert",
        "record_gradients",
        "watch",
        "Watch",
        "train",
        "diagnose",
        "RunConfig",
    ):
        assert name in bptt.__all__ and hasattr(bptt, name)
