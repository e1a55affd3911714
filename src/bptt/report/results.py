"""A table of results as shipped data: one CSV row per run, and the markdown table the README holds.

``result_rows(db, spec)`` reads every run of a sweep with the name its spec gave it
("GRU", "LSTM chrono", ...) and what it ended with; ``write_csv`` and ``read_csv``
keep them in a file; ``markdown_table(rows)`` groups them by task, length and
model, ours beside the published row and the memoryless baseline;
``update_readme`` puts that table between ``<!-- bptt:results NAME -->`` and
``<!-- /bptt:results -->``. The table is always generated from the CSV, never
typed. ``merge_rows`` lays a database's rows over a CSV's: a row the database
does not replace is kept, so collecting from a database that holds part of a
sweep never drops what the CSV already held.

Every file is written atomically (``bptt.files``); the README keeps its encoding
and line endings. Names (a variant's, a task's) are escaped in the table: a
``|``, a newline, an HTML comment such as the block's own end marker, or an
ANSI escape in a name cannot break the table or the README.

The number shown per task is the published rows' quantity: test MSE for adding,
test cross-entropy (mean over every step) for copy, test accuracy (%) for the
classification tasks.

A sweep with a length ladder has another table, one line per model
(``bptt.report.ladder``); its CSV says which row is a rung's run or a timing run
(``role``), and holds a row for every planned run, those not run with why (``note``).
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from bptt.files import read_text, write_bytes, write_text
from bptt.report.ladder import ladder_table
from bptt.report.published import MODELS, PUBLISHED, PublishedResult
from bptt.store import Database, RunSummary
from bptt.sweeps import PlannedRun, SweepSpec, decide


@dataclass(frozen=True)
class ResultRow:
    """One run of a results table."""

    task: str
    variant: str
    seq_len: int | None
    model: str
    seed: int
    cell: str
    activation: str
    init: str
    hidden_size: int
    status: str
    steps: int
    target_metric: float | None
    target_step: int | None
    metric: str
    test_metric: float | None
    test_loss: float | None
    baseline: float | None
    chance_metric: float | None
    train_seconds: float
    device: str
    version: str
    commit: str
    role: str | None = None  # "rung" or "timing" on a length ladder
    target_loss: float | None = None
    note: str | None = None  # why a planned run did not run
    cpu_seconds: float | None = None  # CPU time of the training steps
    solved_below: float | None = None  # a ladder rung's threshold: test loss below it solves the rung


COLUMNS = tuple(f.name for f in fields(ResultRow))
#: The status of a planned run that has no row in the database (a ladder's rung not reached, say).
NOT_RUN = "not run"
_INTS = {"seq_len", "seed", "hidden_size", "steps", "target_step"}
_FLOATS = {
    *("target_metric", "test_metric", "test_loss", "baseline", "chance_metric"),
    *("train_seconds", "target_loss", "cpu_seconds", "solved_below"),
}


def _unrun(run: PlannedRun, why: str) -> ResultRow:
    config = run.config
    return ResultRow(
        task=config.task,
        variant=config.task_variant or "default",
        seq_len=config.seq_len,
        model=run.variant or config.label(),
        seed=config.seed,
        cell=config.cell,
        activation=config.activation,
        init=config.init,
        hidden_size=config.hidden_size,
        status=NOT_RUN,
        steps=0,
        target_metric=config.target_metric,
        target_step=None,
        metric="",
        test_metric=None,
        test_loss=None,
        baseline=None,
        chance_metric=None,
        train_seconds=0.0,
        device=config.device,
        version="",
        commit="",
        role=_role(run),
        target_loss=config.target_loss,
        note=why,
        solved_below=None if run.rung is None else run.rung.threshold,
        cpu_seconds=None,
    )


def _role(run: PlannedRun) -> str | None:
    return "timing" if run.timing else "rung" if run.rung is not None else None


def result_rows(db: Database, spec: SweepSpec) -> list[ResultRow]:
    """Every run of ``spec``, in the spec's order: the latest row ``db`` holds of it, or a row "not run"
    saying why (not reached yet; on a length ladder, also: the ladder stopped below it)."""
    rows = []
    notes = {}
    if spec.ladder is not None:
        notes = {d.run.identity: d.note for d in decide(spec, db) if d.row is None}
    for run in spec.runs:
        found = db.runs(sweep=spec.name, identity=run.identity)
        if not found:
            why = notes.get(run.identity, "new" if spec.ladder is None else None)
            if why is not None:
                rows.append(_unrun(run, "not run yet" if why == "new" else why.replace("waits", "not run yet: waits")))
            continue
        row, config = found[-1], run.config
        final = row.final or RunSummary()
        rows.append(
            ResultRow(
                task=config.task,
                variant=config.task_variant or "default",
                seq_len=final.seq_len or config.seq_len,
                model=run.variant or row.label,
                seed=config.seed,
                cell=config.cell,
                activation=config.activation,
                init=config.init,
                hidden_size=config.hidden_size,
                status=row.status,
                steps=row.steps_done,
                target_metric=config.target_metric,
                target_step=final.target_step,
                metric=final.metric or "",
                test_metric=final.test_metric,
                test_loss=final.test_loss,
                baseline=final.baseline,
                chance_metric=final.chance_metric,
                train_seconds=round(row.train_seconds, 1),
                device=final.device or config.device,
                version=final.version or "",
                commit=final.commit or "",
                role=_role(run),
                target_loss=row.config.get("target_loss", config.target_loss),  # the one it trained to
                solved_below=None if run.rung is None else run.rung.threshold,
                cpu_seconds=final.cpu_seconds,
            )
        )
    return rows


def write_csv(rows: Iterable[ResultRow], path: str | Path) -> Path:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in asdict(row).items()})
    return write_bytes(path, text.getvalue().encode("utf-8"))


def _parse(name: str, text: str) -> Any:
    if text == "":
        return None
    if name in _INTS:
        return int(text)
    if name in _FLOATS:
        return float(text)
    return text


def read_csv(path: str | Path) -> list[ResultRow]:
    """The rows of a results CSV (one written before a column existed reads it as empty)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [ResultRow(**{k: _parse(k, record.get(k) or "") for k in COLUMNS}) for record in csv.DictReader(handle)]


# -- the markdown table ---------------------------------------------------------------------------
#: Where a published row of another task stands in for ours (same kind of data, another size).
STAND_INS = {"pdigits": ("pmnist", "permuted MNIST, 784 steps")}


def headline(row: ResultRow) -> float | None:
    """The number a row is judged by (see the module docstring), accuracy in percent."""
    if row.task in ("adding", "copy"):
        return row.test_loss if row.task == "copy" else row.test_metric
    return None if row.test_metric is None else 100.0 * row.test_metric


def _quantity(task: str) -> str:
    return {"adding": "test MSE", "copy": "test CE"}.get(task, "test accuracy %")


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.3g}"


def _cite(source: str) -> str:
    """ "Bai, Kolter, Koltun 2018 (TCN paper), ..." -> "Bai et al. 2018"."""
    year = re.search(r"\b(19|20)\d\d\b", source)
    return f"{source.split(',')[0].split()[0]} et al. {year.group(0) if year else ''}".strip()


def _published(row: ResultRow) -> tuple[PublishedResult, str] | None:
    task, note = row.task, ""
    if task in STAND_INS:
        task, note = STAND_INS[task]
    config = {"cell": row.cell, "activation": row.activation, "init": row.init}
    for result in PUBLISHED:
        matches = MODELS.get(result.model)
        if (
            result.task == task
            and matches is not None
            and matches(config)
            and (result.seq_len is None or result.seq_len == row.seq_len)
        ):
            variant_note = (
                ""
                if task != "adding"
                else (
                    "markers anywhere, as in variant tcn"
                    if row.variant == "tcn"
                    else "their markers fall anywhere (variant tcn); these runs' one in each half"
                )
            )
            return result, "; ".join(n for n in (note, variant_note) if n)
    return None


def markdown_table(rows: Sequence[ResultRow]) -> str:
    """One line per (task, variant, length, model), in the order the rows first appear; for the runs
    of a length ladder, one line per model (``bptt.report.ladder``)."""
    if any(row.role is not None for row in rows):
        return ladder_table(rows)
    groups: dict[tuple[Any, ...], list[ResultRow]] = {}
    for row in rows:
        groups.setdefault((row.task, row.variant, row.seq_len, row.model), []).append(row)
    lines = [
        "| task | T | model | quantity | ours: mean (per seed) | steps to target (per seed) | published | "
        "memoryless baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (task, variant, seq_len, model), group in groups.items():
        group = sorted(group, key=lambda r: r.seed)
        # A diverged run's number is in the CSV; the table names it and leaves it out of the mean.
        values = [None if r.status == "diverged" else headline(r) for r in group]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        mean = statistics.fmean(finite) if finite else None
        per_seed = ["diverged" if r.status == "diverged" else _number(v) for r, v in zip(group, values)]
        ours = f"{_number(mean)} ({', '.join(per_seed)})"
        targets = (
            "n/a"
            if all(r.target_metric is None for r in group)
            else ", ".join("-" if r.target_step is None else str(r.target_step) for r in group)
        )
        if any(r.status != "finished" for r in group):
            targets += " (" + ", ".join(sorted({r.status for r in group if r.status != "finished"})) + ")"
        published = _published(group[0])
        shown = (
            "-"
            if published is None
            else f"{published[0].shown()} ({_cite(published[0].source)}"
            + (f"; {published[1]}" if published[1] else "")
            + ")"
        )
        first = group[0]
        base = (
            first.baseline
            if task in ("adding", "copy")
            else (None if first.chance_metric is None else 100.0 * first.chance_metric)
        )
        name = task if variant == "default" else f"{task} ({variant})"
        lines.append(
            f"| {markdown_cell(name)} | {seq_len or ''} | {markdown_cell(model)} | {_quantity(task)} | {ours} | "
            f"{markdown_cell(targets)} | {shown} | {_number(base)} |"
        )
    return "\n".join(lines) + "\n"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bptt:results {name} -->", "<!-- /bptt:results -->"


def update_readme(readme: str | Path, name: str, table: str) -> bool:
    """Put ``table`` between the README's markers for ``name``; False when the README has none. The file
    is replaced whole (``bptt.files``), in its own encoding and line endings, and only when it changes."""
    path = Path(readme)
    text, form = read_text(path)
    start, end = _markers(name)
    pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        return False
    updated = pattern.sub(lambda _: f"{start}\n{table}{end}", text, count=1)
    if updated != text:
        write_text(path, updated, form)
    return True


def readme_table(readme: str | Path, name: str) -> str | None:
    """The table the README holds between the markers for ``name``, or None."""
    text = read_text(readme)[0]
    start, end = _markers(name)
    match = re.search(re.escape(start) + r"\n(.*?)" + re.escape(end), text, re.DOTALL)
    return None if match is None else match.group(1)


def markdown_cell(text: str) -> str:
    """``text`` as one cell of a markdown table: ``|`` escaped, ``<`` and ``>`` as entities (no HTML
    comment, so no results marker, can open or close in it), control characters as their escapes."""
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
