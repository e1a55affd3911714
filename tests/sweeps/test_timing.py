"""How long a sweep has left: each run's work from a model of a step's cost, the pace measured."""

import pytest
from rich.progress import Progress

from bptt.modules.cells import CELLS
from bptt.sweeps import expand_spec, run_sweep
from bptt.sweeps.timing import FORWARD_SHARE, SweepEstimate, run_work, step_work
from bptt.training.progress import SteadyTimeRemainingColumn

BASE = {"task": "adding", "hidden_size": 8, "batch_size": 8, "eval_size": 16, "eval_every": 3, "checkpoint_every": 3}


def test_a_step_costs_in_proportion_to_its_length_and_grows_with_the_cell():
    rnn = step_work("rnn", 128, 2, 1, 64, 100)
    assert step_work("rnn", 128, 2, 1, 64, 600) == pytest.approx(6 * rnn)
    assert rnn < step_work("gru", 128, 2, 1, 64, 100) < step_work("lstm", 128, 2, 1, 64, 100)
    assert step_work("rnn", 128, 2, 2, 64, 100) > 2 * rnn  # the second layer's inputs are 128 wide
    # A GRU of 150 units on adding T=600 against an RNN of 256 units on temporal order L=100.
    assert step_work("gru", 150, 2, 1, 64, 600) > 5 * step_work("rnn", 256, 8, 1, 64, 100)


def test_every_registered_cell_has_a_cost_and_a_sweep_of_the_new_cells_gets_its_estimate(tmp_path):
    for cell in CELLS.in_order():
        assert step_work(cell, 128, 2, 1, 32, 100) >= step_work("rnn", 128, 2, 1, 32, 100) > 0, cell
    spec = expand_spec({"name": "new", "base": {**BASE, "steps": 3}, "grid": {"cell": ["indrnn", "mingru", "lru"]}})
    estimate = SweepEstimate.of([(run, 0) for run in spec.runs], workers=1)
    assert all(estimate.work_per_step[run.identity] > 0 for run in spec.runs)


def test_a_run_counts_its_evaluations():
    config = expand_spec({"name": "t", "base": {**BASE, "steps": 30}}).runs[0].config
    step = step_work("rnn", 8, 2, 1, 8, 20)
    evaluations = 30 / 3 + 2  # every 3 steps, and validation and test at the end
    assert run_work(config, 20, 2, 30) == pytest.approx(step * (30 + evaluations * FORWARD_SHARE * 16 / 8))


def _estimate(workers=1):
    # Two runs of 100 steps, one step of "a" worth 1 and one of "b" worth 3.
    return SweepEstimate({"a": (100, 0), "b": (100, 0)}, {"a": 1.0, "b": 3.0}, workers, started=0.0)


def test_the_time_left_is_the_work_left_at_the_pace_measured_since_the_first_steps():
    estimate = _estimate()
    assert estimate.seconds_left() is None
    assert "measured once the first steps are in" in estimate.line(0, 2, 5.0)
    estimate.update("a", 10, now=30.0)
    assert estimate.seconds_left() is None  # the first steps start the clock (the workers' start is left out)
    estimate.update("a", 50, now=40.0)
    # 40 units of work in 10 s: 4 per second; left: 50 of "a" and 300 of "b".
    assert estimate.seconds_left() == pytest.approx(350 / 4)
    assert estimate.steps_done == 50 and estimate.steps_planned == 200
    line = estimate.line(0, 2, 40.0)
    assert line.startswith("0 of 2 runs ended, 50 of 200 steps; 0:00:40 so far, about 0:01:28 left")
    estimate.end("a", 70, now=40.0)  # stopped at its target: nothing of it is left
    assert estimate.seconds_left() == pytest.approx(300 / 6)


def test_the_last_run_left_runs_on_one_worker():
    estimate = _estimate(workers=2)
    estimate.update("a", 0, now=0.0)
    estimate.update("b", 10, now=0.0)
    estimate.update("a", 100, now=10.0)
    estimate.end("a", 100, now=10.0)
    estimate.update("b", 20, now=10.0)
    # 130 units in 20 worker-seconds is 6.5 per second for one worker: "b" has 240 left, on one.
    assert estimate.seconds_left() == pytest.approx(240 / 6.5)


def test_workers_that_report_at_moments_of_their_own_are_timed_each_on_its_own():
    # Two runs side by side, 1 unit of work a second each, reporting every 250 steps a second apart.
    estimate = SweepEstimate({"a": (10_000, 0), "b": (10_000, 0)}, {"a": 1.0, "b": 1.0}, 2, started=0.0)
    estimate.update("a", 250, now=250.0)
    estimate.update("b", 250, now=251.0)
    # A pace timed across the sweep from its first report would count b's 250 steps as done in one
    # second and give 250 times too little time left; neither run has reported twice yet.
    assert estimate.seconds_left() is None
    estimate.update("a", 500, now=500.0)
    assert estimate.seconds_left() == pytest.approx(9_750)  # each run on its worker: b ends last
    estimate.update("b", 500, now=501.0)
    assert estimate.seconds_left() == pytest.approx(9_500)


def test_the_steps_done_before_the_sweep_are_not_counted_as_pace():
    estimate = SweepEstimate({"a": (100, 60)}, {"a": 1.0}, 1, started=0.0)
    assert estimate.steps_done == 60
    estimate.update("a", 60, now=0.0)
    assert estimate.seconds_left() is None
    estimate.update("a", 70, now=10.0)
    estimate.update("a", 80, now=20.0)
    assert estimate.seconds_left() == pytest.approx(20 / 1.0)


def test_a_sweep_prints_its_progress_and_time_left(tmp_path, capsys):
    data = {"name": "told", "base": BASE, "include": [{"steps": 6}, {"steps": 9, "seq_len": 30}], "seeds": [0]}
    spec = expand_spec(data)
    summary = run_sweep(spec, tmp_path / "r.db", workers=1)
    assert summary.ran == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sweep told:")]
    assert lines[0].startswith("sweep told: 0 of 2 runs ended, 0 of 15 steps; 0:00:0")
    assert lines[0].endswith(" so far, time left: measured once the first steps are in")
    assert any(" left (if every run trains all its steps" in line for line in lines)
    assert lines[-1].startswith("sweep told: 2 of 2 runs ended, 15 of 15 steps;")
    again = run_sweep(spec, tmp_path / "r.db", workers=1)
    assert again.ran == 0 and "sweep told" not in capsys.readouterr().err  # nothing to run, nothing to say


def test_the_bars_eta_column_shows_the_sweeps_own_estimate():
    progress = Progress(SteadyTimeRemainingColumn(), disable=True)
    task_id = progress.add_task("sweep", total=10)
    task = progress.tasks[0]
    progress.update(task_id, completed=5)
    task.start_time = task.get_time() - 50.0  # by the bar's own units (runs): 50 s left
    progress.update(task_id, seconds_left=None)
    assert str(SteadyTimeRemainingColumn().render(task)) == "-:--:--"
    progress.update(task_id, seconds_left=3725.0)  # runs differ in cost: the sweep's estimate, not the runs'
    assert str(SteadyTimeRemainingColumn().render(task)) == "1:02:05"
