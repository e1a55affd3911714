"""The progress bar's ETA: the mean pace since the start, steady when some steps are slow."""

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
