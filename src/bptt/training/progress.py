"""A progress bar with loss and ETA on a terminal or in a notebook; silent elsewhere.

Where it shows: on a terminal, and in a Jupyter notebook (a live bar with ipywidgets
installed, else one plain line every ``LINE_EVERY`` seconds and at the end); nowhere
else (a pipe or a log file would fill with redrawn bars). At 80 columns the step
count, the elapsed time and the ETA are always shown whole: the description and the
loss shrink first, cut with an ellipsis.

The ETA is the time left at the mean pace since the bar started (``remaining_seconds``),
not rich's default, the pace of the last 30 seconds: a run's steps differ in cost (an
evaluation or a recorded step is many times slower than a plain one), and a short window
made the estimate jump with each slow step (0:10, 0:20, 1:08, 0:05 within minutes). The
mean over the whole run moves by little with each step, and only as the pace truly changes.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Column
from rich.text import Text

#: In a notebook without ipywidgets: seconds between plain progress lines.
LINE_EVERY = 10.0


def remaining_seconds(elapsed: float, done: float, total: float | None) -> float | None:
    """Seconds left for ``total - done`` units at the mean pace of the ``done`` units in ``elapsed`` seconds
    (None before the first unit is done, or with no total)."""
    if total is None or done <= 0 or elapsed <= 0:
        return None
    return max(0.0, elapsed * (total - done) / done)


class SteadyTimeRemainingColumn(ProgressColumn):
    """The ETA at the mean pace since the bar started: ``remaining_seconds`` of the units done since then
    (a resumed run's earlier steps, advanced at the start, are left out through the task's ``resumed_at`` field)."""

    max_refresh = 0.5

    def render(self, task: Task) -> Text:
        if task.finished:
            return Text("0:00:00", style="progress.remaining")
        if "seconds_left" in task.fields:  # the caller's own estimate (``ProgressBar.estimate``)
            left = task.fields["seconds_left"]
            shown = "-:--:--" if left is None else str(timedelta(seconds=int(left)))
            return Text(shown, style="progress.remaining")
        start = task.fields.get("resumed_at", 0)
        left = remaining_seconds(
            task.elapsed or 0.0, task.completed - start, None if task.total is None else task.total - start
        )
        if left is None:
            return Text("-:--:--", style="progress.remaining")
        return Text(str(timedelta(seconds=int(left))), style="progress.remaining")


class CutTextColumn(TextColumn):
    """Text on one line, cut with an ellipsis where its column is narrowed (the table narrows it first,
    before the columns that must stay whole)."""

    def render(self, task: Task) -> Text:
        text = super().render(task)
        text.no_wrap, text.overflow = True, "ellipsis"
        return text


def columns() -> list[ProgressColumn]:
    """The bar's columns: what may be cut (description, bar, loss) is narrowed before what may not."""
    whole = lambda: Column(no_wrap=True)  # noqa: E731
    return [
        CutTextColumn("{task.description}", table_column=Column(min_width=6)),
        BarColumn(bar_width=None, table_column=Column(min_width=6, max_width=40)),
        MofNCompleteColumn(table_column=whole()),
        CutTextColumn("{task.fields[info]}", table_column=Column(min_width=4)),
        TimeElapsedColumn(table_column=whole()),
        TextColumn("ETA", table_column=whole()),
        SteadyTimeRemainingColumn(table_column=whole()),
    ]


def display(console: Console) -> str:
    """How progress shows on ``console``: "bar" (a terminal, or a notebook with ipywidgets), "lines" (a
    notebook without), or "off"."""
    if console.is_terminal:
        return "bar"
    if console.is_jupyter:
        return "bar" if importlib.util.find_spec("ipywidgets") is not None else "lines"
    return "off"


class ProgressBar:
    def __init__(self, total: int, description: str, enabled: bool = True) -> None:
        console = Console(file=sys.stderr)
        shown = display(console) if enabled else "off"
        self.enabled = shown != "off"
        self._lines = shown == "lines"
        self._printed = 0.0
        self._fields: dict[str, str] = {}
        self._progress = Progress(*columns(), console=console, disable=shown != "bar", transient=False)
        self._task = self._progress.add_task(description, total=total, info="", resumed_at=0)

    def __enter__(self) -> ProgressBar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)
        if self._lines:
            self._line()

    def _line(self) -> None:
        """One plain line of progress (a notebook without ipywidgets)."""
        task = self._progress.tasks[0]
        left = remaining_seconds(task.elapsed or 0.0, task.completed, task.total)
        eta = "-:--:--" if left is None else str(timedelta(seconds=int(left)))
        elapsed = str(timedelta(seconds=int(task.elapsed or 0)))
        info = "  ".join(self._fields.values())
        print(f"{task.description}: {task.completed:g}/{task.total:g} {info} {elapsed} ETA {eta}", file=sys.stderr)
        self._printed = time.monotonic()

    def show(self, **values: float) -> None:
        for name, value in values.items():
            self._fields[name] = f"{name} {value:.4g}"

    def resume_at(self, steps: int) -> None:
        """Show ``steps`` done before this bar started (a resumed run), left out of the pace."""
        self._progress.update(self._task, completed=steps, resumed_at=steps)

    def estimate(self, seconds_left: float | None, description: str | None = None) -> None:
        """Show the caller's own estimate of the time left in the ETA column (None: not known yet), in
        place of the mean pace of the bar's units (a sweep's runs differ in cost), and a new description."""
        if not self.enabled:
            return
        self._progress.update(self._task, seconds_left=seconds_left)
        if description is not None:
            self._progress.update(self._task, description=description)

    def advance(self, steps: int, **values: float) -> None:
        if not self.enabled:
            return
        self.show(**values)
        self._progress.update(self._task, advance=steps, info="  ".join(self._fields.values()))
        if self._lines and time.monotonic() - self._printed >= LINE_EVERY:
            self._line()
