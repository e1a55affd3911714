"""`bptt report`: one self-contained HTML page of a sweep's results."""

from __future__ import annotations

from pathlib import Path

import click

from bptt.cli.options import require_sweep
from bptt.cli.output import console
from bptt.cli.paths import writable_file
from bptt.report.results import markdown_table, read_csv
from bptt.report.sweep import build_report
from bptt.store import Database


@click.command("report", short_help="Write a sweep's HTML report, or a results CSV's markdown table.")
@click.option("--db", "db_path", default="bptt.db", show_default=True, type=click.Path(dir_okay=False))
@click.option("--sweep", default=None, help="Only the runs of this sweep (default: every run).")
@click.option(
    "-o",
    "--output",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The HTML file to write.",
)
@click.option(
    "--markdown",
    "markdown_csv",
    default=None,
    metavar="RUNS.csv",
    type=click.Path(dir_okay=False),
    help="Instead: print the markdown table of a results CSV (ours beside the published rows).",
)
def command(db_path: str, sweep: str | None, output: str, markdown_csv: str | None) -> None:
    """Write a report: metric against length per remedy, success rate across seeds, convergence,
    gradient profiles, and our numbers beside the published ones, e.g.

    bptt report --db sweeps.db --sweep remedies -o remedies.html
    bptt report --markdown results/canonical-quick/runs.csv
    """
    if markdown_csv is not None:
        if not Path(markdown_csv).is_file():
            raise click.UsageError(f"--markdown: no results CSV at {markdown_csv}")
        click.echo(markdown_table(read_csv(markdown_csv)), nl=False)
        return
    with Database(db_path, read_only=True) as db:
        require_sweep(db, sweep)
    writable_file(output, "-o")
    path = build_report(db_path, output, sweep)
    console().print(f"wrote {path}")
