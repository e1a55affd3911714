"""The sweep report: one self-contained HTML page from the results database.

For each task: the final metric against sequence length per remedy (the
notes' central comparison, with the memoryless baseline drawn), the success
rate across seeds, convergence curves (validation metric against step), the
gradient profiles ||dL/dh_t|| against lag overlaid per remedy, and our numbers
beside the published ones (``published.PUBLISHED``) on the same task and length.
The page is interactive (``report.interactive``): pick a remedy to highlight it in
every figure and table, hide a family, read each remedy's g[k] / g[0] at any lag,
and replay the profiles recorded during training.

A "remedy" is a run's label (``RunConfig.label()``: cell or activation, then
the remedies switched on), naming the settings that differ where runs of one
task share a label but not a model (``told_apart``: the learning rate, say); a
"length" is the run's controlled length (``bptt.store.controlled_length``):
``delay`` where a run sets it (the delayed sentiment task's controlled variable)
and the task's sequence length otherwise.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from bptt.plotting import interactive
from bptt.plotting.axes import FLOAT32_FLOOR, at_float32_floor, plot_log, readable_log_ticks
from bptt.plotting.html import Section, Table, write_page
from bptt.plotting.style import legend_outside, series_key, styles_for
from bptt.report.interactive import PAGE_NUMBERS, page_models, task_group
from bptt.report.published import published_table
from bptt.store import Database, RunRow, RunSummary
from bptt.sweeps.ladder import model_settings

MAX_PANELS = 4


@dataclass(frozen=True)
class RunPoint:
    """One run as the report sees it."""

    row: RunRow
    label: str
    length: int | None
    length_name: str  # "delay" or "seq_len"

    @property
    def final(self) -> RunSummary:
        return self.row.final or RunSummary()

    @property
    def seed(self) -> int:
        return int(self.row.config.get("seed", 0))

    @property
    def task(self) -> str:
        return self.row.task


def run_point(row: RunRow) -> RunPoint:
    """The run as the report groups it: its label, with the task's variant when not the default
    (adding's "tcn" markers anywhere against one per half are different tasks)."""
    name, length = row.length
    variant = row.config.get("task_variant")
    label = row.label if variant in (None, "default") else f"{row.label} [{variant}]"
    return RunPoint(row, label, length, name)


def told_apart(points: list[RunPoint]) -> list[RunPoint]:
    """The points, where runs of one task share a label but not a model (a setting beyond the length, the
    seed and the schedule differs, the learning rate say): each of those labels names the settings that
    differ, so no figure averages two models as one remedy."""
    settings = {id(p): model_settings(p.row.config, p.length_name) for p in points}
    named: dict[int, str] = {}
    for group in _by(points, "task", "label").values():
        each = [settings[id(p)] for p in group]
        differ = sorted(k for k in {k for s in each for k in s} if len({repr(s.get(k)) for s in each}) > 1)
        for p, s in zip(group, each, strict=True):
            if differ:
                named[id(p)] = f"{p.label} ({', '.join(f'{k} {_setting(s.get(k))}' for k in differ)})"
    return [replace(p, label=named[id(p)]) if id(p) in named else p for p in points]


def _setting(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _panels(lengths: list[int]) -> list[int]:
    """At most MAX_PANELS lengths, spread from the shortest to the longest."""
    if len(lengths) <= MAX_PANELS:
        return lengths
    picks = {round(i * (len(lengths) - 1) / (MAX_PANELS - 1)) for i in range(MAX_PANELS)}
    return [lengths[i] for i in sorted(picks)]


def _by(points: list[RunPoint], *keys: str) -> dict[tuple[Any, ...], list[RunPoint]]:
    groups: dict[tuple[Any, ...], list[RunPoint]] = defaultdict(list)
    for p in points:
        groups[tuple(getattr(p, k) for k in keys)].append(p)
    return dict(sorted(groups.items(), key=lambda kv: tuple(str(k) if k is None else k for k in kv[0])))


# -- figures --------------------------------------------------------------------------------
def metric_figure(task: str, points: list[RunPoint]) -> Figure:
    finished = [p for p in points if p.row.status == "finished" and p.final.test_metric is not None]
    fig = Figure(figsize=(9.5, 4.2), layout="constrained")
    ax = fig.subplots()
    groups = _by(finished, "label")
    styles = styles_for(label for (label,) in groups)
    for (label,), group in groups.items():
        by_length = _by(group, "length")
        xs = [length for (length,) in by_length]
        values = [[p.final.test_metric for p in g if p.final.test_metric is not None] for g in by_length.values()]
        means = [statistics.fmean(v) for v in values]
        low = [m - min(v) for m, v in zip(means, values)]
        high = [max(v) - m for m, v in zip(means, values)]
        ax.errorbar(
            xs, means, yerr=[low, high], marker="o", markersize=4, capsize=3, label=label, **styles[label].line()
        )
    reference = next((p.final for p in points if p.final.chance_metric is not None), RunSummary())
    chance = {p.length: p.final.chance_metric for p in points if p.final.chance_metric is not None}
    if len(set(chance.values())) == 1:
        value = next(iter(chance.values()))
        ax.axhline(value, color="black", linestyle="--", linewidth=1, label=f"memoryless baseline ({value:.4g})")
    elif chance:  # a baseline that moves with length
        xs = sorted(x for x in chance if x is not None)
        ax.plot(xs, [chance[x] for x in xs], color="black", linestyle="--", linewidth=1, label="memoryless baseline")
    if reference.metric == "mse":
        ax.set_yscale("log")
    lengths = [p.length for p in finished if p.length]
    if lengths and max(lengths) / min(lengths) >= 10:
        ax.set_xscale("log")
    ax.set_xlabel(points[0].length_name.replace("_", " ") if points else "length")
    ax.set_ylabel(f"final test {reference.metric or 'metric'} (mean; bars: min-max over seeds)")
    ax.set_title(f"{task}: final metric against length, after training")
    if reference.metric == "mse":
        readable_log_ticks(ax)
    legend_outside(ax)
    return fig


def convergence_figure(task: str, points: list[RunPoint], db: Database) -> Figure:
    lengths = _panels(sorted({p.length for p in points if p.length is not None}))
    fig = Figure(figsize=(3.4 * max(1, len(lengths)) + 2.5, 3.4), layout="constrained")
    axes = fig.subplots(1, max(1, len(lengths)), squeeze=False)
    metric = next((p.final.metric for p in points if p.final.metric), "metric")
    styles = styles_for(label for (label,) in _by(points, "label"))
    for ax, length in zip(axes[0], lengths):
        for (label,), group in _by([p for p in points if p.length == length], "label").items():
            curves: dict[int, list[float]] = defaultdict(list)
            for p in group:
                for evaluation in db.evals(p.row.id, "val"):
                    if evaluation.metric is not None and math.isfinite(evaluation.metric):
                        curves[evaluation.step].append(evaluation.metric)
            if curves:
                steps = sorted(curves)
                ax.plot(steps, [statistics.fmean(curves[s]) for s in steps], label=label, **styles[label].line())
        ax.set_title(f"{points[0].length_name} = {length}", fontsize=9)
        ax.set_xlabel("training step")
        if metric == "mse":
            ax.set_yscale("log")
            readable_log_ticks(ax)
    axes[0][0].set_ylabel(f"validation {metric} (mean over seeds)")
    fig.suptitle(f"{task}: convergence")
    legend_outside(fig, axes[0][-1])
    return fig


def _first_and_last_profile(db: Database, run_id: int) -> tuple[list[float], list[float]] | None:
    """The last layer's ||dL/dh_t|| of the run's first and last recorded profiles."""
    profiles = db.gradient_profiles(run_id)
    if not profiles:
        return None
    return profiles[0].hidden[-1], profiles[-1].hidden[-1]


@dataclass(frozen=True)
class ProfileFigure:
    """The gradient-profile figure of one task, and the remedies whose profiles reach float32's floor."""

    figure: Figure
    at_floor: list[str]

    def note(self) -> str | None:
        """Why a profile runs flat at the bottom, when one does."""
        if not self.at_floor:
            return None
        return (
            f"{', '.join(self.at_floor)}: the profile runs flat at about {FLOAT32_FLOOR:.0e} or below. Training "
            "records in float32, whose smallest normal number is 1.2e-38; products that fall below it are "
            "flushed to zero, so the flat part is float32's floor, not the gradient's size: the true gradient "
            "there is smaller still. `bptt diagnose` measures in float64 and shows how far it falls."
        )


def profile_figure(task: str, points: list[RunPoint], db: Database) -> ProfileFigure | None:
    """At the longest length with profiles: the first and the last recorded profile, per remedy."""
    profiles = {p.row.id: _first_and_last_profile(db, p.row.id) for p in points}
    recorded = [p for p in points if profiles[p.row.id] is not None]
    first_and_last = {key: pair for key, pair in profiles.items() if pair is not None}
    if not recorded:
        return None
    length = max(p.length or 0 for p in recorded)
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    groups = _by([p for p in recorded if (p.length or 0) == length], "label")
    styles = styles_for(label for (label,) in groups)
    at_floor: list[str] = []
    for ax, latest in zip(axes, (False, True)):
        ax.set_yscale("log")
        for (label,), group in groups.items():
            chosen = [first_and_last[p.row.id][int(latest)] for p in group]
            size = min(len(q) for q in chosen)
            # Mean over seeds of each step's norm; lag = steps back from the last step.
            mean = [statistics.fmean(q[len(q) - size + i] for q in chosen) for i in range(size)]
            lags = list(range(size - 1, -1, -1))
            plot_log(ax, lags, mean, label, **styles[label].line())
            if at_float32_floor(mean) and label not in at_floor:
                at_floor.append(label)
        ax.set_xlabel("lag (steps back from the last step)")
        ax.set_title("last recorded training step" if latest else "first recorded training step", fontsize=9)
    axes[0].set_ylabel("batch-mean ||dL/dh_t||_2 (last layer)")
    fig.suptitle(f"{task}: gradient profiles during training at {recorded[0].length_name} = {length}")
    legend_outside(fig, axes[1])
    return ProfileFigure(fig, at_floor)


# -- tables ---------------------------------------------------------------------------------
def success_table(task: str, points: list[RunPoint]) -> Table:
    lengths = sorted({p.length for p in points if p.length is not None})
    rows = []
    for (label,), group in _by(points, "label").items():
        cells = []
        for length in lengths:
            at = [p for p in group if p.length == length and p.row.status in ("finished", "diverged")]
            cells.append(f"{sum(bool(p.final.solved) for p in at)}/{len(at)}" if at else "")
        rows.append([label, *cells])
    name = points[0].length_name if points else "length"
    return Table(
        ["remedy", *(f"{name} {n}" for n in lengths)],
        rows,
        f"{task}: runs that solved the task / runs finished (diverged count as not solved)",
        keys=[series_key(row[0]) for row in rows],
    )


def target_table(task: str, points: list[RunPoint]) -> Table | None:
    """For runs with a target metric: the step each seed first reached it ("-": never), per remedy and length."""
    aimed = [p for p in points if p.row.config.get("target_metric") is not None]
    if not aimed:
        return None
    rows = []
    for (label, length), group in _by(aimed, "label", "length").items():
        group = sorted(group, key=lambda p: p.seed)
        steps = ", ".join(
            f"seed {p.seed}: {'-' if p.final.target_step is None else p.final.target_step}" for p in group
        )
        rows.append([label, length, group[0].row.config["target_metric"], steps])
    return Table(
        ["remedy", points[0].length_name, "target", "steps to target"],
        rows,
        f"{task}: the step whose validation metric first reached the target, per seed",
    )


# -- the page -------------------------------------------------------------------------------
def _left_out(held: list[RunRow], only: frozenset[str] | None, timing: frozenset[str]) -> str:
    out = [r.identity for r in held if only is not None and r.identity not in only]
    timed = sum(identity in timing for identity in out)
    others = len(out) - timed
    parts = [f"{timed} timing run{'s' if timed > 1 else ''}"] if timed else []
    if others:
        parts.append(f"{others} run{'s' if others > 1 else ''} of settings the spec no longer plans")
    return f" (left out: {' and '.join(parts)})" if parts else ""


def build_report(
    db_path: str | Path,
    output: str | Path,
    sweep: str | None = None,
    *,
    only: frozenset[str] | None = None,
    timing: frozenset[str] = frozenset(),
) -> Path:
    """Write the report of every run (or one sweep's runs) in the database to ``output``; with ``only``, of the
    runs whose identity is in it (a spec's results). The lead counts the runs left out: those in ``timing``
    (the spec's timing runs) and the others (runs of settings the spec no longer plans)."""
    with Database(db_path, read_only=True) as db:
        held = db.runs(sweep=sweep)
        rows = [r for r in held if only is None or r.identity in only]
        every = told_apart([run_point(r) for r in rows])
        points = [p for p in every if p.row.status != "running"]
        sections = [_overview(every)]
        tasks: dict[str, list[RunPoint]] = defaultdict(list)
        for p in points:
            tasks[p.row.task].append(p)
        metric, success, convergence, profiles = (
            Section("Final metric against length"),
            Section("Success rate across seeds"),
            Section("Convergence"),
            Section("Gradient profiles"),
        )
        groups: list[tuple[dict[str, Any], dict[str, Any]]] = []
        # The sliders' numbers shared out among every remedy of every task (``report.interactive``).
        budget = PAGE_NUMBERS // max(1, len({(p.row.task, p.label) for p in points}))
        for task, group in sorted(tasks.items()):
            metric.add(metric_figure(task, group))
            success.add(success_table(task, group))
            targets = target_table(task, group)
            if targets is not None:
                success.add(targets)
            convergence.add(convergence_figure(task, group, db))
            drawn = profile_figure(task, group, db)
            if drawn is None:
                profiles.add(
                    f"{task}: no run recorded gradient profiles (record_every is 0); "
                    "set record_every > 0 in the spec to draw them."
                )
            else:
                profiles.add(drawn.figure)
                if drawn.note() is not None:
                    profiles.add(drawn.note())
                _add_sliders(profiles, task, group, db, groups, budget)
        if not tasks:
            for section in (metric, success, convergence, profiles):
                section.add("No finished runs.")
        published = Section("Published results").add(published_table(points))
        problems = _problems(points)
    title = f"Sweep {sweep}" if sweep else "Sweeps"
    lead = (
        f"{len(rows)} runs from {Path(db_path).name}{_left_out(held, only, timing)}. A remedy is a run's "
        "label; bars and curves are means over seeds; the dashed line is the memoryless baseline. Pick a remedy "
        "to highlight it in every figure; pick it again to clear."
    )
    models = page_models(groups, sorted({p.label for p in points}))
    sections[0].blocks.insert(0, interactive.controls(models))
    data = {"models": models, "groups": [group for group, _ in groups]}
    return write_page(
        output,
        title,
        [*sections, metric, success, convergence, profiles, published, problems],
        lead,
        data=data,
        scripts=interactive.scripts(),
    )


def _add_sliders(section: Section, task: str, points: list[RunPoint], db: Database, groups: list, budget: int) -> None:
    """The task's lag slider and training-step slider, below its profile figure."""
    found = task_group(task, points, db, budget)
    if found is None:
        return
    group, _ = found
    groups.append(found)
    section.add(
        f"{task}: each remedy's dL/dh at one lag against lag 0, from its last recorded profile at "
        f"{points[0].length_name} = {group['length']} (mean over seeds)."
    )
    section.add(interactive.lag_slider(group["id"], group["lag"]["max"], 50))
    section.add(f"{task}: the profiles during training, as recorded (each seed's latest profile at the step).")
    section.add(interactive.step_slider(group["id"], group["replay"]["steps"]))


def _problems(points: list[RunPoint]) -> Section:
    """The runs that diverged, failed or were interrupted, as a table; one line when there are none."""
    troubled = [p for p in points if p.row.status in ("diverged", "failed", "interrupted")]
    if not troubled:
        return Section("Runs that diverged or failed").add("None: every run finished.")
    return Section("Runs that diverged or failed").add(
        Table(
            ["id", "label", "task", "length", "seed", "status", "steps", "reason"],
            [
                [p.row.id, p.label, p.row.task, p.length, p.seed, p.row.status, p.row.steps_done, p.row.reason or ""]
                for p in troubled
            ],
        )
    )


def _overview(points: list[RunPoint]) -> Section:
    counts: dict[tuple[str | None, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for p in points:
        counts[(p.row.sweep, p.task, p.label)][p.row.status] += 1
    statuses = ("finished", "diverged", "failed", "interrupted", "running")
    table = Table(
        ["sweep", "task", "remedy", *statuses],
        [
            [s or "", t, label, *(c.get(x, 0) for x in statuses)]
            for (s, t, label), c in sorted(counts.items(), key=lambda kv: tuple(str(k) for k in kv[0]))
        ],
        "Runs by status",
    )
    return Section("Runs").add(table)
