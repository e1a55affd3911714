"""The length ladder: rungs expanded per model, each run's target, climbing while a seed solves,
stopping once every seed fails, waiting while the rung below runs; dry run and resume."""

from __future__ import annotations

import math

import pytest
import yaml
from click.testing import CliRunner

from bptt.cli.main import main
from bptt.cli.sweep import command as sweep_command
from bptt.store import Database, RunSummary
from bptt.sweeps import SweepSpecError, decide, expand_spec, run_sweep
from bptt.sweeps.ladder import gates

TINY = {"hidden_size": 8, "batch_size": 8, "eval_size": 16, "steps": 2, "eval_every": 1, "checkpoint_every": 1}


def spec_data(solved_below: float = 0.01, **ladder):
    return {
        "name": "climb",
        "base": TINY,
        "include": [
            {"name": "GRU", "task": "adding", "cell": "gru"},
            {"name": "tanh RNN", "task": "adding", "cell": "rnn"},
            {"name": "GRU", "task": "copy", "cell": "gru"},
            {"name": "GRU", "task": "temporal_order", "cell": "gru", "seq_len": 20},
        ],
        "seeds": [0, 1],
        "ladder": {
            "rungs": {
                "adding": {"seq_len": [10, 20, 30], "solved_below": solved_below},
                "copy": {"seq_len": [5, 10], "solved_below_baseline": 0.1},
            },
            **ladder,
        },
    }


def test_every_ladder_run_becomes_one_run_per_rung_with_its_target():
    spec = expand_spec(spec_data(timing={"task": "adding", "seq_len": 30, "steps": 3, "eval_size": 4}))
    timing = [r for r in spec.runs if r.timing]
    rungs = [r for r in spec.runs if r.rung is not None]
    other = [r for r in spec.runs if r.rung is None and not r.timing]
    assert spec.runs[: len(timing)] == tuple(timing)  # timing runs first: cheap, and every model has one
    assert [(r.variant, r.config.cell, r.config.seq_len, r.config.steps, r.config.seed) for r in timing] == [
        ("GRU", "gru", 30, 3, 0),
        ("tanh RNN", "rnn", 30, 3, 0),
    ]
    assert all(r.config.eval_size == 4 and r.config.target_loss is None for r in timing)
    adding = [r for r in rungs if r.config.task == "adding"]
    assert len(adding) == 2 * 2 * 3 and {r.config.target_loss for r in adding} == {0.01}
    assert all(r.rung.threshold == 0.01 and r.rung.seq_len == r.config.seq_len for r in adding)
    assert len({r.rung.model for r in adding}) == 2  # GRU and tanh RNN, whatever the seed and length
    copy = [r for r in rungs if r.config.task == "copy"]
    for run in copy:  # a tenth of the memoryless baseline 10 ln 8 / (T + 20)
        assert run.config.target_loss == pytest.approx(0.1 * 10 * math.log(8) / (run.config.seq_len + 20))
    assert [(r.config.task, r.config.seq_len, r.config.target_loss) for r in other] == [
        ("temporal_order", 20, None),
        ("temporal_order", 20, None),
    ]


@pytest.mark.parametrize(
    ("ladder", "message"),
    [
        ({"rungs": {"adding": {"seq_len": [10, 5], "solved_below": 0.1}}}, "increasing lengths"),
        ({"rungs": {"adding": {"seq_len": [10]}}}, "give one of solved_below"),
        (
            {"rungs": {"adding": {"seq_len": [10, 20], "solved_below": 1, "max_steps": [5]}}},
            "one step count > 0 per length",
        ),
        ({"rungs": {"adding": {"seq_len": [10], "solved_below": 1, "solved_below_baseline": 0.1}}}, "give one of"),
        ({"rungs": {"adding": {"seq_len": [10], "solved_below": -1}}}, "a number > 0"),
        ({"rungs": {"nope": {"seq_len": [10], "solved_below": 1}}}, "ladder.rungs.nope: unknown task"),
        ({"rungs": {"adding": {"seq_len": [10], "solved_below": 1, "steps": 3}}}, "unknown key 'steps'"),
        ({"rungs": {"adding": {"seq_len": [10], "solved_below": 1}}, "extra": 1}, "ladder: unknown key 'extra'"),
        ({"rungs": {"adding": {"seq_len": [10], "solved_below": 1}}, "timing": {"seq_len": 5}}, "name a ladder task"),
        (
            {"rungs": {"adding": {"seq_len": [10], "solved_below": 1}}, "timing": {"task": "adding", "seq_len": 10}},
            "is a rung's run",
        ),
        (
            {
                "rungs": {"adding": {"seq_len": [10], "solved_below": 1}},
                "timing": {"task": "adding", "seq_len": 5, "sq": 1},
            },
            "unknown setting .sq.",
        ),
    ],
)
def test_bad_ladders_are_named(ladder, message):
    data = {"name": "bad", "base": TINY, "include": [{"task": "adding"}], "ladder": ladder}
    with pytest.raises(SweepSpecError, match=message):
        expand_spec(data)


def test_a_ladder_task_with_its_own_length_is_refused():
    data = spec_data()
    data["include"][0]["seq_len"] = 50
    with pytest.raises(SweepSpecError, match=r"include\[0\].*seq_len: the ladder sets the lengths of task 'adding'"):
        expand_spec(data)


def _finish(db, run, test_loss, status="finished"):
    row_id = db.create_run(run.identity, run.config.label(), run.config.task, run.config.model_dump(), sweep="climb")
    db.record_progress(row_id, [], [], [], run.config.steps, 1.0, None)
    db.finish_run(row_id, status, RunSummary(test_loss=test_loss, steps=run.config.steps))


def test_a_rung_waits_for_every_seed_below_then_climbs_if_one_solved_and_stops_if_none(tmp_path):
    spec = expand_spec(spec_data())
    gru = [r for r in spec.runs if r.variant == "GRU" and r.config.task == "adding"]
    at = {(r.config.seq_len, r.config.seed): r for r in gru}
    with Database(tmp_path / "r.db") as db:
        gate = gates(spec.runs, lambda run: (db.runs(sweep="climb", identity=run.identity) or [None])[-1])
        assert gate[at[20, 0].identity] == ("wait", "waits for T=10 (0 of 2 seeds done)")
        assert at[10, 0].identity not in gate  # the lowest rung runs at once
        _finish(db, at[10, 0], 0.5)
        _finish(db, at[10, 1], 0.001)  # one seed solved T=10: both climb
        decisions = {d.run.identity: d for d in decide(spec, db)}
        assert decisions[at[20, 0].identity].action == "new" and decisions[at[20, 1].identity].action == "new"
        assert decisions[at[30, 0].identity].describe() == "waits for T=20 (0 of 2 seeds done)"
        _finish(db, at[20, 0], 0.2)
        _finish(db, at[20, 1], float("nan"), status="diverged")  # every seed failed T=20: no T=30
        decisions = {d.run.identity: d for d in decide(spec, db)}
        assert decisions[at[30, 1].identity].action == "skip"
        assert decisions[at[30, 1].identity].describe() == "not run: every seed failed at T=20"
        # the other model's ladder is its own
        rnn = next(r for r in spec.runs if r.variant == "tanh RNN" and r.config.seq_len == 20)
        assert decisions[rnn.identity].action == "wait"


@pytest.mark.slow
def test_a_sweep_climbs_while_a_seed_solves_and_stops_where_every_seed_fails(tmp_path):
    db_path = tmp_path / "r.db"
    easy = expand_spec(spec_data(solved_below=10.0), filters={"task": ["adding"], "cell": ["gru"]})
    summary = run_sweep(easy, db_path, workers=1, progress=False)
    assert summary.statuses == {"finished": 6} and summary.ran == 6
    with Database(db_path) as db:
        rows = {(r.config["seq_len"], r.config["seed"]): r for r in db.runs(sweep="climb")}
    # every run stopped at its target, at its first evaluation; a rung started after the one below ended
    assert all(r.final.target_step == 1 and r.final.target_loss == 10.0 for r in rows.values())
    for low, high in ((10, 20), (20, 30)):
        assert max(rows[low, s].id for s in (0, 1)) < min(rows[high, s].id for s in (0, 1))

    hard = expand_spec(spec_data(solved_below=1e-9), filters={"cell": ["rnn"]}, name="hard")
    summary = run_sweep(hard, db_path, workers=1, progress=False)
    assert summary.statuses == {"finished": 2, "not run": 4} and summary.ran == 2 and summary.skipped == 4
    with Database(db_path) as db:
        assert {r.config["seq_len"] for r in db.runs(sweep="hard")} == {10}
        assert all(d.action == "skip" for d in decide(hard, db))  # again: nothing to run
    again = run_sweep(hard, db_path, workers=1, progress=False)
    assert again.ran == 0 and again.statuses == summary.statuses


def test_dry_run_says_which_rungs_wait(tmp_path):
    path = tmp_path / "climb.yaml"
    path.write_text(yaml.safe_dump(spec_data()))
    result = CliRunner().invoke(
        sweep_command,
        ["--dry-run", str(path), "--db", str(tmp_path / "none.db"), "--filter", "cell=gru", "--filter", "task=adding"],
        terminal_width=250,
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "gru" in line]
    assert len(lines) == 6 and sum("new" in line for line in lines) == 2
    assert sum("waits for T=10 (0 of 2 seeds done)" in line for line in lines) == 2
    assert sum("waits for T=20" in line for line in lines) == 2
    assert not (tmp_path / "none.db").exists()


def test_a_bad_ladder_on_the_command_line_is_one_line_exit_2(tmp_path, capsys):
    data = spec_data()
    data["ladder"]["rungs"]["adding"]["seq_len"] = "long"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["sweep", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ladder.rungs.adding.seq_len" in err


def test_a_filter_may_keep_the_timing_runs_alone():
    spec = expand_spec(
        spec_data(timing={"task": "adding", "seq_len": 30, "steps": 3, "eval_size": 4}), filters={"eval_size": [4]}
    )
    assert [(r.variant, r.timing) for r in spec.runs] == [("GRU", True), ("tanh RNN", True)]


def test_max_steps_caps_each_rung_and_a_smaller_budget_stands():
    data = spec_data()
    data["ladder"]["rungs"]["adding"]["max_steps"] = [5, 3, 1]
    data["base"] = {**TINY, "steps": 4}
    spec = expand_spec(data, filters={"task": ["adding"], "seed": [0], "cell": ["gru"]})
    assert [(r.config.seq_len, r.config.steps) for r in spec.runs] == [(10, 4), (20, 3), (30, 1)]


def test_stop_at_stops_a_rung_on_validation_below_the_threshold_that_test_must_meet(tmp_path):
    data = spec_data()
    data["ladder"]["rungs"]["adding"]["stop_at"] = 0.5
    spec = expand_spec(data)
    adding = [run for run in spec.runs if run.config.task == "adding"]
    assert {run.config.target_loss for run in adding} == {0.005}
    assert {run.rung.threshold for run in adding} == {0.01}
    assert not adding[0].rung.solved(RunSummary(test_loss=0.0102)) and adding[0].rung.solved(
        RunSummary(test_loss=0.009)
    )
    copy = [run for run in spec.runs if run.config.task == "copy"]
    assert all(run.config.target_loss == run.rung.threshold for run in copy)  # stop_at is 1 unless given
    for bad in (0, 1.5, "half", float("nan")):
        data["ladder"]["rungs"]["adding"]["stop_at"] = bad
        with pytest.raises(SweepSpecError, match=r"stop_at: a fraction of the threshold in \(0, 1\]"):
            expand_spec(data)


def test_the_progress_counts_the_waiting_rungs_and_lets_go_of_those_a_ladder_stops(tmp_path, capsys):
    """6 runs planned (2 seeds x 3 rungs); none solves T=10, so the 4 above leave the plan: the count
    ends at 2 of 2, never more runs ended than planned."""
    hard = expand_spec(spec_data(solved_below=1e-9), filters={"cell": ["rnn"]}, name="hard")
    summary = run_sweep(hard, tmp_path / "r.db", workers=1)
    assert summary.ran == 2 and summary.skipped == 4
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sweep hard:")]
    assert lines[0].startswith("sweep hard: 0 of 6 runs ended, 0 of 12 steps;")
    assert lines[-1].startswith("sweep hard: 2 of 2 runs ended, 4 of 4 steps;")
    for line in lines:
        ended, planned = (int(n) for n in line.split(": ", 1)[1].split(" runs ended")[0].split(" of "))
        assert ended <= planned
