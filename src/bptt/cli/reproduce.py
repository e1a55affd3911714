"""`bptt reproduce`: rerun a shipped table (``canonical``, or ``canonical --quick``) end to end."""

from __future__ import annotations

from pathlib import Path

import click

from bptt.cli.output import console, plural, printable
from bptt.cli.paths import writable_file, writable_folder
from bptt.cli.sweep import filters_option, seeds_option
from bptt.files import read_text
from bptt.report.merge import describe_key
from bptt.report.reproduce import NothingToCollect, ResultsFileError, reproduce, spec_for
from bptt.sweeps import SweepLockedError
from bptt.sweeps.spec import check_devices_here, parse_assignment


@click.command("reproduce", short_help="Rerun a shipped table of the field and write its results.")
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
    # --collect trains nothing, so it builds no task: a task whose data needs the data extra is not loaded.
    spec_file, spec = spec_for(
        name, quick, overrides, seeds_option(seeds), filters_option(filter_items), check_tasks=not collect
    )
    if not collect:  # the runs train here; --collect only reads what they left, on any machine
        check_devices_here(spec)
    writable_folder(Path(out_dir) / spec.name, "--out")
    if Path(readme).is_file():
        writable_file(readme, "--readme")
        _check_text(Path(readme))
    database = Path(db_path or Path(out_dir) / spec.name / "runs.db")
    if collect and not database.is_file():
        command = " ".join(["bptt reproduce", name, *(["--quick"] if quick else [])])
        raise click.UsageError(
            f"--collect: no database at {database}; `{command}` runs the sweep and writes it "
            "(or give the database a sweep ran into with --db)"
        )
    try:
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
    except (NothingToCollect, ResultsFileError) as error:
        raise click.UsageError(str(error)) from None
    except SweepLockedError as error:  # as `bptt sweep` says it: a second driver of the same runs
        raise click.ClickException(str(error)) from None
    out = console()
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(result.summary.statuses.items()))
    out.print(
        f"{spec.name}: {plural(result.summary.planned, 'run')} ({statuses}); wrote {result.csv}, {result.report}, "
        f"{result.folder / 'table.md'}" + (f"; updated {readme}" if result.readme_updated else ""),
        highlight=False,
        markup=False,
    )
    for keys, what in (
        (result.replaced, "replaced by the database's runs"),
        (result.kept, "kept (the database does not hold them)"),
    ):
        if keys:
            shown = "; ".join(printable(describe_key(key)) for key in keys[:5]) + ("; ..." if len(keys) > 5 else "")
            out.print(
                f"{result.csv}: {plural(len(keys), 'earlier row')} {what}: {shown}", highlight=False, markup=False
            )
    out.print(result.table, highlight=False, markup=False)


def _check_text(readme: Path) -> None:
    """Refuse a README that is not UTF-8 text now, before a sweep runs, rather than after it."""
    try:
        read_text(readme)
    except UnicodeDecodeError:
        raise click.UsageError(f"--readme: {readme} is not UTF-8 text; bptt edits only UTF-8 files") from None
    except OSError as error:
        raise click.UsageError(f"--readme: cannot read {readme} ({error.strerror})") from None
