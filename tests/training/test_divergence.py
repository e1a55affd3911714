"""A run whose state grows without bound ends diverged, with the reason, even when its loss stays finite."""

import math

import pytest
import torch

from bptt.build import make_model, make_task
from bptt.config import build_config
from bptt.report.sweep import build_report
from bptt.store import Database
from bptt.training import train
from bptt.training.divergence import DIVERGED_MULTIPLE, divergence, final_state_norm

SMALL = {
    "task": "adding",
    "seq_len": 40,
    "hidden_size": 8,
    "batch_size": 8,
    "eval_size": 32,
    "eval_every": 5,
    "checkpoint_every": 10,
    "progress": False,
}
# ReLU with W_hh = 1.5 I: h_T grows like 1.5^40 (about 1e7), finite in float32, and an
# Adam step of 1e-9 leaves it so: the loss stays finite at about 1e13 or more.
GROWING = {"activation": "relu", "init": "identity", "init_scale": 1.5, "lr": 1e-9}


def config(**values):
    return build_config({**SMALL, **values})


def test_a_finite_loss_far_above_the_baseline_ends_diverged(tmp_path):
    db = Database(tmp_path / "r.db")
    result = train(config(steps=10, **GROWING), db)
    assert result.status == "diverged"
    assert result.steps_done == 10 and all(math.isfinite(loss) for loss in result.losses)
    assert "times the memoryless baseline" in result.reason and "validation loss" in result.reason
    assert result.final.test_loss >= DIVERGED_MULTIPLE / 6  # kept, finite, as measured
    row = db.run(result.run_id)
    assert row.status == "diverged" and row.reason == result.reason


def test_the_report_lists_it_among_the_diverged_runs(tmp_path):
    db_path = tmp_path / "r.db"
    with Database(db_path) as db:
        train(config(steps=10, **GROWING), db, sweep="s")
        train(config(steps=10, lr=0.01), db, sweep="s")
    page = build_report(db_path, tmp_path / "report.html", "s").read_text(encoding="utf-8")
    problems = page[page.index("<h2>Runs that diverged or failed</h2>") :]
    assert "diverged" in problems and "times the memoryless baseline" in problems
    assert problems.count("<tr>") == 2  # the header and the one diverged run


def test_a_run_that_learns_stays_finished(tmp_path):
    result = train(config(steps=10, lr=0.01))
    assert result.status == "finished" and result.reason is None


def test_final_state_norm_is_the_largest_norm_of_h_T():
    cfg = config(hidden_size=6)
    task = make_task(cfg)
    model = make_model(cfg, task)
    batch = task.eval_set("val")
    with torch.no_grad():
        _, h_last = model.hidden_states(batch.inputs)
    expected = float(torch.linalg.vector_norm(h_last.double(), dim=-1).max())
    assert final_state_norm(model, batch) == pytest.approx(expected)
    assert model.training  # left as it was


def test_final_state_norm_of_an_overflowed_state_is_not_finite():
    # W_hh = 10 I: h grows like 10^t; at 40 steps it is 1e36, still finite, and past float32's
    # 3.4e38 it is inf (then nan, once inf meets a zero or another inf).
    cfg = config(activation="relu", init="identity", init_scale=10.0)
    task = make_task(cfg)
    assert 1e35 < final_state_norm(make_model(cfg, task), task.eval_set("val")) < math.inf
    cfg = config(activation="relu", init="identity", init_scale=10.0, seq_len=60)
    task = make_task(cfg)
    assert not math.isfinite(final_state_norm(make_model(cfg, task), task.eval_set("val")))


def test_divergence_names_the_first_reason_that_holds():
    task = make_task(config())  # baseline 1/6
    assert divergence(task, 0.1, 0.2, 5.0) is None
    assert divergence(task, 0.1, 0.2, math.inf) == "the final state overflowed: ||h_T|| is inf on the validation set"
    assert divergence(task, math.nan, 0.2, 5.0) == "the final validation loss is nan"
    assert divergence(task, 0.1, math.inf, 5.0) == "the final test loss is inf"
    just_below = DIVERGED_MULTIPLE / 6 * 0.999
    assert divergence(task, just_below, just_below, 5.0) is None
    reason = divergence(task, 0.1, 1.5e20, 5.0)
    assert (
        reason == "the final test loss 1.5e+20 is 9e+20 times the memoryless baseline 0.167 (diverged from 1000 times)"
    )
