"""The sweep report's interactive data: per task, each remedy's gradient profile by lag and its
profiles during training, for the page's lag and training-step sliders (``bptt.plotting.interactive``).

A task's remedies are compared at the longest length that recorded profiles, as
in the report's profile figure: each remedy's profile at a step is the mean over
its seeds of the last layer's ||dL/dh_t||, by lag, divided by its value at lag 0.
The lag slider reads each remedy's last recorded profile. The page stays small
whatever the sweep: the sliders of the whole report carry at most ``PAGE_NUMBERS``
numbers (four significant digits each), shared out among its remedies; each keeps
at most ``REPLAY_STEPS`` recorded steps, and lags evenly spread (the first and the
last kept) where a profile is longer than its share allows.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from bptt.diagnostics.profile import DEFAULT_EPSILON
from bptt.plotting import interactive
from bptt.plotting.style import SeriesStyle, family_of_label, styles_for
from bptt.store import Database

REPLAY_STEPS = 12
#: The most numbers the sliders of one report carry (about 9 bytes each in the page).
PAGE_NUMBERS = 100_000


def shares(budget: int, size: int, steps: int) -> tuple[int, int, int]:
    """How many lags the lag slider keeps, recorded steps the replay keeps, and lags each replayed profile
    keeps, for a remedy allowed ``budget`` numbers, whose profile has ``size`` lags and ``steps`` records:
    at most ``budget`` numbers in all (with at least 30 lags a profile, the first and the last among them)."""
    kept_steps = min(steps, REPLAY_STEPS)
    lags = min(size, max(30, budget // 3))
    replay = min(size, max(30, (budget - lags) // max(1, kept_steps)))
    return lags, kept_steps, replay


def _mean_by_lag(rows: list[list[float]]) -> list[float]:
    """The mean over seeds of each lag's norm (steps by step t, aligned at the last step), by lag."""
    size = min(len(row) for row in rows)
    return [statistics.fmean(row[len(row) - 1 - k] for row in rows) for k in range(size)]


def task_group(
    task: str, points: list[Any], db: Database, budget: int = PAGE_NUMBERS
) -> tuple[dict[str, Any], dict[str, SeriesStyle]] | None:
    """The group of one task (None when no run of it recorded a profile), and the styles of its remedies;
    ``budget``: the numbers each remedy's sliders may carry (see ``shares``)."""
    recorded = {p.row.id: db.gradient_profiles(p.row.id) for p in points}
    with_profiles = [p for p in points if recorded[p.row.id]]
    if not with_profiles:
        return None
    length = max(p.length or 0 for p in with_profiles)
    by_label: dict[str, list[Any]] = defaultdict(list)
    for p in with_profiles:
        if (p.length or 0) == length:
            by_label[p.label].append(p)
    styles = styles_for(sorted(by_label))
    steps_seen = sorted({row.step for p in with_profiles for row in recorded[p.row.id]})
    size = max(len(recorded[p.row.id][-1].hidden[-1]) for group in by_label.values() for p in group)
    lag_count, step_count, replay_count = shares(budget, size, len(steps_seen))
    chosen = [steps_seen[i] for i in interactive.thin(len(steps_seen), step_count)]
    lag_kept = interactive.thin(size, lag_count)
    lags: dict[str, list[float | None]] = {}
    replay: dict[str, list[list[float] | None]] = {}
    for label, group in by_label.items():
        key = styles[label].key
        last = interactive.relative(_mean_by_lag([recorded[p.row.id][-1].hidden[-1] for p in group]))
        lags[key] = interactive.compact(last[k] if k < len(last) else float("nan") for k in lag_kept)
        rows = []
        for step in chosen:
            # Each seed's latest profile at or before this step.
            at = [
                max((r for r in recorded[p.row.id] if r.step <= step), key=lambda r: r.step, default=None)
                for p in group
            ]
            found = [r.hidden[-1] for r in at if r is not None]
            rows.append(interactive.relative(_mean_by_lag(found)) if found else None)
        replay[key] = rows
    kept = interactive.thin(size, replay_count)
    thinned = {
        key: [
            None if row is None else interactive.compact([row[k] if k < len(row) else float("nan") for k in kept])
            for row in rows
        ]
        for key, rows in replay.items()
    }
    data = {
        "id": interactive_id(task),
        "keys": [styles[label].key for label in by_label],
        "epsilon": DEFAULT_EPSILON,
        "colors": {style.key: style.color for style in styles.values()},
        "lag": {"profiles": lags, "lags": lag_kept, "max": size - 1},
        "replay": {"steps": chosen, "lags": kept, "profiles": thinned},
        "length": length,
    }
    return data, styles


def interactive_id(task: str) -> str:
    """A task's name as a part of an HTML id."""
    return "".join(c if c.isalnum() else "-" for c in task.lower())


def page_models(groups: list[tuple[dict[str, Any], dict[str, SeriesStyle]]], labels: list[str]) -> list[dict]:
    """Every remedy of the report once, with its family; its colour from the first task that draws it."""
    styles: dict[str, SeriesStyle] = {}
    for _, group_styles in groups:
        for label, style in group_styles.items():
            styles.setdefault(label, style)
    for label, style in styles_for(labels).items():
        styles.setdefault(label, style)
    return interactive.model_entries(styles, {label: family_of_label(label) for label in styles})
