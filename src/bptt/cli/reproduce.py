"""`bptt reproduce`: rerun a shipped table (``canonical``, or ``canonical --quick``) end to end."""

from __future__ import annotations

from pathlib import Path

import click

from bptt.cli.output import console, plural
from bptt.cli.paths import writable_file, writable_folder
from bptt.cli.sweep import filters_option, seeds_option
from bptt.report.reproduce import reproduce, spec_for
from bptt.sweeps.spec import check_devices_here, parse_assignment


@click.command("reproduce")
@click.argument("name", metavar="NAME")
@click.option("--quick", is_flag=True, help="The version that fits a CPU session (the spec NAME-quick).")
@click.option("--device", default=None, help="Torch device for every run (cuda also picks the engine auto).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Runs at once (default: one per CPU).")
@click.option(
    "--out",
    "out_dir",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of the results: OUT/<sweep name>/{runs.db,runs.csv,report.html,table.md,spec.yaml}.",
)
@click.option(
    "--readme",
    default="README.md",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="README whose results block for this table is regenerated (skipped if it has none).",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a run setting on every run (e.g. --set steps=200). Repeatable.",
)
@click.option("--seeds", default=None, metavar="S1,S2", help="Replace the spec's seeds.")
@click.option(
    "--filter",
    "filter_items",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Keep only runs whose setting is one of the values. Repeatable.",
)
@click.option(
    "--db",
    "db_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="The sweep's database (default: OUT/<sweep name>/runs.db).",
)
@click.option(
    "--collect",
    is_flag=True,
    help="Run nothing: write the files from what the database holds (e.g. while the sweep still runs).",
)
def command(
    name: str,
    quick: bool,
    device: str | None,
    workers: int | None,
    out_dir: str,
    readme: str,
    assignments: tuple[str, ...],
    seeds: str | None,
    filter_items: tuple[str, ...],
    db_path: str | None,
    collect: bool,
) -> None:
    """Run a shipped table's sweep (resuming whatever ran before), then write its CSV, report and
    markdown table, and regenerate the README's copy of the table, e.g.

    bptt reproduce canonical --quick --workers 2
    """
    overrides = dict(parse_assignment(item) for item in assignments)
    if device is not None:
        overrides["device"] = device
        if device.startswith("cuda"):
            overrides["engine"] = "auto"
    spec_file, spec = spec_for(name, quick, overrides, seeds_option(seeds), filters_option(filter_items))
    if not collect:  # the runs train here; --collect only reads what they left, on any machine
        check_devices_here(spec)
    writable_folder(Path(out_dir) / spec.name, "--out")
    if Path(readme).is_file():
        writable_file(readme, "--readme")
    if collect and not Path(db_path or Path(out_dir) / spec.name / "runs.db").is_file():
        raise click.UsageError(f"--collect: no database at {db_path or Path(out_dir) / spec.name / 'runs.db'}")
    result = reproduce(
        spec_file,
        spec,
        out_dir,
        workers=workers,
        readme=readme if Path(readme).is_file() else None,
        overrides=overrides,
        db=db_path,
        run=not collect,
    )
    out = console()
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(result.summary.statuses.items()))
    out.print(
        f"{spec.name}: {plural(result.summary.planned, 'run')} ({statuses}); wrote {result.csv}, {result.report}, "
        f"{result.folder / 'table.md'}" + (f"; updated {readme}" if result.readme_updated else ""),
        highlight=False,
    )
    out.print(result.table, highlight=False, markup=False)
