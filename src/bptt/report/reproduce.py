"""``bptt reproduce NAME``: rerun a shipped table end to end and write what ships with it.

For the shipped spec NAME (``--quick``: NAME-quick), into ``OUT/<sweep name>/``:

    runs.db       the sweep's results database (resumable: rerun the same command after any stop)
    spec.yaml     the spec as run, with the overrides given on the command line
    runs.csv      one row per run (``bptt.report.results``)
    report.html   the sweep report
    table.md      the markdown table of ``runs.csv``, ours beside the published rows

and, with a README, the table between its ``<!-- bptt:results <sweep name> -->`` markers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bptt import experiments
from bptt.report.results import markdown_table, read_csv, result_rows, update_readme, write_csv
from bptt.report.sweep import build_report
from bptt.store import Database
from bptt.sweeps import SweepSpec, SweepSummary, load_spec, run_sweep


@dataclass(frozen=True)
class Reproduced:
    folder: Path
    summary: SweepSummary
    csv: Path
    report: Path
    table: str
    readme_updated: bool


def spec_for(
    name: str, quick: bool, overrides: Mapping[str, Any], seeds: list[int] | None, filters: Mapping[str, list[Any]]
) -> tuple[Path, SweepSpec]:
    path = experiments.spec_path(f"{name}-quick" if quick else name)
    return path, load_spec(path, overrides=dict(overrides), seeds=seeds, filters=dict(filters))


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
    False, only write them from what the database holds (runs not there yet are left out)."""
    folder = Path(out) / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    text = spec_file.read_text(encoding="utf-8")
    if overrides:
        text = f"# run with overrides: {yaml.safe_dump(dict(overrides), default_flow_style=True).strip()}\n" + text
    (folder / "spec.yaml").write_text(text, encoding="utf-8")
    db_path = Path(db) if db is not None else folder / "runs.db"
    if run:
        summary = run_sweep(spec, db_path, backend=backend, workers=workers, progress=progress)
    else:
        with Database(db_path) as database:
            rows = [database.runs(sweep=spec.name, identity=r.identity) for r in spec.runs]
        statuses = Counter(found[-1].status for found in rows if found)
        summary = SweepSummary(spec.name, len(spec.runs), len(spec.runs), 0, 0.0, dict(statuses))
    with Database(db_path) as results:
        csv_path = write_csv(result_rows(results, spec), folder / "runs.csv")
    report = build_report(db_path, folder / "report.html", spec.name)
    table = markdown_table(read_csv(csv_path))
    (folder / "table.md").write_text(table, encoding="utf-8")
    updated = readme is not None and update_readme(readme, spec.name, table)
    return Reproduced(folder, summary, csv_path, report, table, updated)
