"""The table of a sweep with a length ladder: one line per model, what it solved and what it costs.

For each model, in the order its rows first appear:

- per ladder task (adding, copy), the longest length solved by each seed ("-": none), and where
  the climb stands when it did not reach the top rung: stopped (every seed failed at a length),
  or a rung not run yet;
- per other task (mnist5k, pmnist5k), the test accuracy (%), mean and per seed;
- the CPU seconds per training step at the timing run's length (the CPU time of its training steps
  over their number, one thread, evaluations left out: on a busy machine the wall-clock time is
  longer, the CPU time is not);
- the published claim beside ours (``bptt.report.published.CLAIMS``).

A run is solved when its test loss is below its rung's threshold (the run's ``target_loss``).
Models whose runs did not run say so, and why; a model with a published claim that the sweep does
not train has a line saying so. Beneath the table, while runs are left: how many ran (and their CPU
time), how many the ladders stopped, and how many the sweep has not reached yet.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bptt.report.published import CLAIMS, claim, claim_name

if TYPE_CHECKING:
    from bptt.report.results import ResultRow

WHAT_SOLVED_MEANS = (
    "Solved: test loss below the rung's threshold: adding test MSE < 0.01; copy test cross-entropy below "
    "10 % of the memoryless baseline 10 ln 8 / (T + 20). Each run stops once its validation loss reaches it."
)


def solved(row: ResultRow) -> bool:
    """Test loss below the rung's threshold (a row of an older CSV, without one: its target_loss)."""
    loss = row.test_loss
    threshold = row.solved_below if row.solved_below is not None else row.target_loss
    return row.status == "finished" and loss is not None and threshold is not None and loss < threshold


def _climb(rows: list[ResultRow], seeds: list[int]) -> str:
    """Longest length solved per seed, then where the climb stands (or, before any rung ran, why)."""
    if all(r.status == "not run" for r in rows):  # the lowest rung says where the climb stands
        return min(rows, key=lambda r: r.seq_len or 0).note or "not run yet"
    longest = []
    for seed in seeds:
        lengths = [r.seq_len or 0 for r in rows if r.seed == seed and solved(r)]
        longest.append(str(max(lengths)) if lengths else "-")
    text = ", ".join(longest)
    unfinished = sorted(
        (r for r in rows if r.status != "finished" and r.status != "diverged"), key=lambda r: r.seq_len or 0
    )
    if unfinished:
        first = unfinished[0]
        if first.note and first.note.startswith("not run: every seed failed"):
            text += f"; stopped: every seed failed at T={first.note.rsplit('=', 1)[1]}"
        elif first.status == "not run" and first.note and "waits for" in first.note:  # a rung below resumes
            text += f"; T={first.seq_len} {first.note[first.note.index('waits for') :]}"
        elif first.status == "not run":
            text += f"; T={first.seq_len} not run yet"
        else:
            text += f"; T={first.seq_len} {first.status}"
    elif rows:
        top = max(r.seq_len or 0 for r in rows)
        text += f" (top rung T={top})" if any(r.seq_len == top and solved(r) for r in rows) else ""
    return text


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3g}"


def _accuracy(rows: list[ResultRow]) -> str:
    ran = [r for r in rows if r.status != "not run"]
    if not ran:
        return rows[0].note or "not run yet" if rows else "not in this sweep"
    values = [None if r.test_metric is None else 100.0 * r.test_metric for r in sorted(ran, key=lambda r: r.seed)]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    mean = statistics.fmean(finite) if finite else None
    text = f"{_number(mean)} ({', '.join(_number(v) for v in values)})"
    waiting = [r for r in rows if r.status != "finished"]
    if waiting:
        text += " (" + ", ".join(sorted({r.status for r in waiting})) + ")"
    return text


def _seconds(rows: list[ResultRow]) -> str:
    """CPU seconds per training step (wall-clock seconds where a run did not record its CPU time)."""
    timed = [r for r in rows if r.status == "finished" and r.steps > 0]
    if not timed:
        return "not run yet" if rows else "-"
    return f"{statistics.fmean((r.cpu_seconds or r.train_seconds) / r.steps for r in timed):.3g}"


def ladder_table(rows: Sequence[ResultRow]) -> str:
    """The markdown table (and what solved means beneath it) of a ladder sweep's rows."""
    models: dict[str, list[ResultRow]] = {}
    for row in rows:
        models.setdefault(row.model, []).append(row)
    ladder_tasks = list(dict.fromkeys(r.task for r in rows if r.role == "rung"))
    other_tasks = list(dict.fromkeys(r.task for r in rows if r.role is None))
    timing = next((r for r in rows if r.role == "timing"), None)
    seeds = sorted({r.seed for r in rows if r.role != "timing"})
    header = ["model"]
    header += [f"{task}: longest T solved (per seed)" for task in ladder_tasks]
    header += [f"{task}: test accuracy % (per seed)" for task in other_tasks]
    if timing is not None:
        header.append(f"CPU s per training step at T={timing.seq_len} ({timing.task})")
    header.append("published")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, group in models.items():
        cells = [model]
        for task in ladder_tasks:
            runs = [r for r in group if r.task == task and r.role == "rung"]
            cells.append(_climb(runs, seeds) if runs else "not in this sweep")
        for task in other_tasks:
            cells.append(_accuracy([r for r in group if r.task == task and r.role is None]))
        if timing is not None:
            cells.append(_seconds([r for r in group if r.role == "timing"]))
        first = group[0]
        cells.append(claim(first.cell, first.activation, first.init))
        lines.append("| " + " | ".join(cells) + " |")
    present = {claim_name(r.cell, r.activation, r.init) for r in rows}
    for name, text in CLAIMS.items():  # the models with a published claim that this sweep did not train
        if name not in present:
            lines.append("| " + " | ".join([name, *["not in this sweep"] * (len(header) - 2), text]) + " |")
    return "\n".join(lines) + "\n\n" + WHAT_SOLVED_MEANS + "\n" + _progress(rows)


def _progress(rows: Sequence[ResultRow]) -> str:
    """A paragraph on what ran and what did not yet, and why, when some runs did not run yet."""
    ran = [r for r in rows if r.status != "not run"]
    stopped = [r for r in rows if r.status == "not run" and (r.note or "").startswith("not run: every seed failed")]
    waiting = len(rows) - len(ran) - len(stopped)
    if not waiting:
        return ""
    hours = sum(r.cpu_seconds or r.train_seconds for r in ran) / 3600
    return (
        f"\nRan so far: {len(ran)} runs, {hours:.1f} CPU-hours of training; {len(stopped)} not run because their "
        f"ladder stopped below them. Not run yet: {waiting}, because the sweep has not reached them: it runs in "
        "the background on one core and resumes where it stopped (`bptt reproduce`); the spec's header gives "
        "what each row costs on this CPU.\n"
    )
