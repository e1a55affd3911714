"""The progress bar's ETA: the mean pace since the start, steady when some steps are slow."""

import re

from rich.progress import Progress

from bptt.training.progress import ProgressBar, SteadyTimeRemainingColumn, remaining_seconds


def _clock(steps, slow_every, fast, slow):
    """(time, steps done) after each step of a run whose every ``slow_every``-th step is an evaluation."""
    now, points = 0.0, []
    for step in range(1, steps + 1):
        now += slow if step % slow_every == 0 else fast
        points.append((now, step))
    return points


def test_the_eta_is_the_mean_pace_since_the_start():
    assert remaining_seconds(10.0, 25, 100) == 30.0
    assert remaining_seconds(0.0, 0, 100) is None and remaining_seconds(5.0, 10, None) is None
    assert remaining_seconds(10.0, 100, 100) == 0.0


def _window_ends(points, total, start, window=30.0):
    """The predicted end at each step from the pace of the last ``window`` seconds (rich's default)."""
    ends = []
    for index, (now, done) in enumerate(points[start:-1], start=start):
        past = [(t, d) for t, d in points[:index] if t >= now - window] or [points[index - 1]]
        ends.append(now + (total - done) * (now - past[0][0]) / (done - past[0][1]))
    return ends


def test_the_eta_holds_steady_through_slow_steps():
    # 3000 steps of 0.05 s, every 500th an evaluation of 10 s: 210 s in all, a slow step every 35 s.
    total = 3000
    points = _clock(total, slow_every=500, fast=0.05, slow=10.0)
    true_end = points[-1][0]
    ends = [now + remaining_seconds(now, done, total) for now, done in points[999:-1]]
    jumps = max(abs(b - a) for a, b in zip(ends, ends[1:]))
    # From the first third on, the predicted end stays within 12 % of the true one ...
    assert max(abs(end - true_end) for end in ends) <= 0.12 * true_end
    # ... and moves at a slow step by less than half as much as the 30-second window's estimate does.
    window = _window_ends(points, total, 999)
    assert jumps <= 0.5 * max(abs(b - a) for a, b in zip(window, window[1:]))
    assert max(ends) - min(ends) <= 0.5 * (max(window) - min(window))


def test_the_column_leaves_out_the_steps_of_a_resumed_run():
    progress = Progress(SteadyTimeRemainingColumn(), disable=True)
    task_id = progress.add_task("run", total=300, resumed_at=200)
    task = progress.tasks[0]
    progress.update(task_id, completed=250)
    task.start_time = task.get_time() - 50.0  # 50 steps of this session in 50 s: 50 s left
    assert str(SteadyTimeRemainingColumn().render(task)) == "0:00:50"
    bar = ProgressBar(300, "run", enabled=False)
    bar.resume_at(200)
    assert bar._progress.tasks[0].completed == 200 and bar._progress.tasks[0].fields["resumed_at"] == 200


def _rendered(width, completed=1500, total=2000, info="loss 0.1234  val_loss 0.1385"):
    import io

    from rich.console import Console

    from bptt.training.progress import columns

    progress = Progress(*columns(), disable=True)
    task = progress.add_task("lstm+fb1+clip1 on temporal_order", total=total, info=info, resumed_at=0)
    progress.update(task, completed=completed)
    console = Console(width=width, force_terminal=True, color_system=None, record=True, file=io.StringIO())
    console.print(progress.make_tasks_table(progress.tasks))
    return console.export_text()


def test_at_80_columns_the_step_count_elapsed_time_and_eta_stay_whole():
    line = _rendered(80)
    assert len(line.rstrip("\n")) <= 80 and line.count("\n") == 1
    assert re.search(r" 1500/2000 .* \d:\d\d:\d\d ETA (\d:\d\d:\d\d|-:--:--)\s*$", line), line
    assert "…" in line  # the description or the loss gave way, not the numbers
    wide = _rendered(200)
    assert "lstm+fb1+clip1 on temporal_order" in wide and "val_loss 0.1385" in wide and "…" not in wide


def test_a_notebook_shows_progress_a_pipe_does_not(monkeypatch):
    import importlib.util

    from rich.console import Console

    from bptt.training import progress

    assert progress.display(Console(force_terminal=True)) == "bar"
    assert progress.display(Console(force_terminal=False, force_jupyter=False)) == "off"
    notebook = Console(force_jupyter=True)
    widgets = importlib.util.find_spec("ipywidgets") is not None
    assert progress.display(notebook) == ("bar" if widgets else "lines")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert progress.display(notebook) == "lines"


def test_bptt_train_shows_progress_in_a_notebook_and_is_silent_when_asked(monkeypatch, capsys):
    from bptt.training import progress, train

    settings = {"task": "adding", "seq_len": 5, "hidden_size": 4, "batch_size": 4, "eval_size": 4, "steps": 12}
    monkeypatch.setattr(progress, "display", lambda console: "lines")  # a notebook without ipywidgets
    seen = []
    train(settings, on_step=lambda step, loss: seen.append(step))
    err = capsys.readouterr().err
    assert seen == list(range(1, 13))
    assert "tanh+clip1 on adding: 12/12 loss" in err and "ETA 0:00:00" in err
    train(settings, progress=False)
    assert capsys.readouterr().err == ""
