"""A progress bar with loss and ETA on a terminal; silent elsewhere."""
from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class ProgressBar:
    def __init__(self, total: int, description: str, enabled: bool = True) -> None:
        console = Console(file=sys.stderr)
        self.enabled = enabled and console.is_terminal
        self._fields: dict[str, str] = {}
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not self.enabled,
            transient=False,
        )
        self._task = self._progress.add_task(description, total=total, info="")

    def __enter__(self) -> "ProgressBar":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def show(self, **values: float) -> None:
        for name, value in values.items():
            self._fields[name] = f"{name} {value:.4g}"

    def advance(self, steps: int, **values: float) -> None:
        if not self.enabled:
            return
        self.show(**values)
        self._progress.update(self._task, advance=steps, info="  ".join(self._fields.values()))
