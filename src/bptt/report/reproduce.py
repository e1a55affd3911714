"""``bptt reproduce NAME``: rerun a shipped table end to end and write what ships with it.

For the shipped spec NAME (``--quick``: NAME-quick), into ``OUT/<sweep name>/``:

    runs.db       the sweep's results database (resumable: rerun the same command after any stop)
    spec.yaml     the spec as run, with the overrides given on the command line
    runs.csv      one row per run (``bptt.report.results``)
    report.html   the sweep report
    table.md      the markdown table of ``runs.csv``, ours beside the published rows

and, with a README, the table between its ``<!-- bptt:results <sweep name> -->`` markers.

Nothing is lost: the database's rows are laid over the CSV's (``merge_rows``), so a
row the database does not hold stays; a database that holds none of the spec's runs
is refused before anything is written; ``--collect`` (run nothing) leaves an existing
``spec.yaml``, which says what ran, as it is. Every file is written atomically, so a
process killed at any moment leaves each file as it was or as it is now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bptt import experiments
from bptt.files import write_text
from bptt.report.merge import RowKey, merge_rows
from bptt.report.results import markdown_table, read_csv, result_rows, update_readme, write_csv
from bptt.report.sweep import build_report
from bptt.store import Database
from bptt.sweeps import SweepSpec, SweepSpecError, SweepSummary, load_spec, run_sweep


class NothingToCollect(ValueError):
    """The database holds none of the spec's runs: nothing is written (the message says where to look)."""


class ResultsFileError(ValueError):
    """An earlier ``runs.csv`` that cannot be read: nothing is written over it."""


@dataclass(frozen=True)
class Reproduced:
    folder: Path
    summary: SweepSummary
    csv: Path
    report: Path
    table: str
    readme_updated: bool
    replaced: list[RowKey] = field(default_factory=list)  # earlier CSV rows the database's rows changed
    kept: list[RowKey] = field(default_factory=list)  # earlier CSV rows the database does not hold


def spec_for(
    name: str,
    quick: bool,
    overrides: Mapping[str, Any],
    seeds: list[int] | None,
    filters: Mapping[str, list[Any]],
    check_tasks: bool = True,
) -> tuple[Path, SweepSpec]:
    quickened = [n.removesuffix("-quick") for n in experiments.shipped() if n.endswith("-quick")]
    if quick and name not in quickened:
        has = f"the tables that have one: {', '.join(quickened)}"
        if name in experiments.shipped():
            raise SweepSpecError(f"--quick: {name} has no quick version; {has}")
        raise SweepSpecError(f"--quick: takes the name of a shipped table with a quick version, not {name!r}; {has}")
    try:
        path = experiments.spec_path(f"{name}-quick" if quick else name, "NAME")
    except experiments.SpecNotFound as error:
        raise SweepSpecError(str(error)) from None
    spec = load_spec(path, overrides=dict(overrides), seeds=seeds, filters=dict(filters), check_tasks=check_tasks)
    return path, spec


def spec_text(spec_file: Path, overrides: Mapping[str, Any] | None) -> str:
    """The spec as run: the shipped file, headed by the overrides given on the command line."""
    text = spec_file.read_text(encoding="utf-8")
    if overrides:
        text = f"# run with overrides: {yaml.safe_dump(dict(overrides), default_flow_style=True).strip()}\n" + text
    return text


def reproduce(
    spec_file: Path,
    spec: SweepSpec,
    out: str | Path,
    *,
    workers: int | None = None,
    backend: str = "local",
    readme: str | Path | None = None,
    progress: bool = True,
    overrides: Mapping[str, Any] | None = None,
    db: str | Path | None = None,
    run: bool = True,
) -> Reproduced:
    """Run the sweep into ``db`` (default OUT/<name>/runs.db), then write the files; with ``run``
    False, only write them from what the database holds (runs not there yet are left out, and rows
    the CSV already holds for them are kept)."""
    folder = Path(out) / spec.name
    db_path = Path(db) if db is not None else folder / "runs.db"
    csv_path = folder / "runs.csv"
    earlier = _earlier_rows(csv_path)
    if run:
        write_text(folder / "spec.yaml", spec_text(spec_file, overrides))
        summary = run_sweep(spec, db_path, backend=backend, workers=workers, progress=progress)
    with Database(db_path, read_only=True) as database:
        found = [database.runs(sweep=spec.name, identity=r.identity) for r in spec.runs]
        fresh = result_rows(database, spec)
        sweeps = database.sweeps()
    if not any(found):  # its rows would all be plans: nothing ran
        raise NothingToCollect(
            f"--db: {db_path} holds none of the {len(spec.runs)} runs of {spec.name} "
            f"(its sweeps: {', '.join(sweeps) or 'none'}); nothing written"
        )
    if not run:
        statuses = Counter(rows[-1].status for rows in found if rows)
        summary = SweepSummary(spec.name, len(spec.runs), len(spec.runs), 0, 0.0, dict(statuses))
        if not (folder / "spec.yaml").exists():
            write_text(folder / "spec.yaml", spec_text(spec_file, overrides))
    merged = merge_rows(earlier, fresh)
    write_csv(merged.rows, csv_path)
    # The report draws the whole spec's results, whatever --seeds or --filter ran this time.
    whole = load_spec(spec_file, overrides=dict(overrides or {}), check_tasks=False).runs
    results = frozenset(r.identity for r in whole if not r.timing)
    timing = frozenset(r.identity for r in whole if r.timing)
    report = build_report(db_path, folder / "report.html", spec.name, only=results, timing=timing)
    table = markdown_table(read_csv(csv_path))
    write_text(folder / "table.md", table)
    updated = readme is not None and update_readme(readme, spec.name, table)
    return Reproduced(folder, summary, csv_path, report, table, updated, merged.replaced, merged.kept)


def _earlier_rows(path: Path) -> list[Any]:
    if not path.exists():
        return []
    try:
        return read_csv(path)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as error:
        raise ResultsFileError(
            f"{path}: cannot be read ({type(error).__name__}: {str(error).strip()[:200]}); "
            "move it away to write a new one"
        ) from None
