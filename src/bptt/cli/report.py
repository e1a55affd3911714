"""`bptt report`: one self-contained HTML page of a sweep's results."""
from __future__ import annotations

import click

from bptt.cli.options import require_sweep
from bptt.cli.output import console
from bptt.cli.paths import writable_file
from bptt.report.sweep import build_report
from bptt.store import Database


@click.command("report")
@click.option("--db", "db_path", default="bptt.db", show_default=True, type=click.Path(dir_okay=False))
@click.option("--sweep", default=None, help="Only the runs of this sweep (default: every run).")
@click.option("-o", "--output", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="The HTML file to write.")
def command(db_path: str, sweep: str | None, output: str) -> None:
    """Write a report: metric against length per remedy, success rate across seeds, convergence,
    gradient profiles, and our numbers beside the published ones, e.g.

    bptt report --db sweeps.db --sweep remedies -o remedies.html
    """
    with Database(db_path, read_only=True) as db:
        require_sweep(db, sweep)
    writable_file(output, "-o")
    path = build_report(db_path, output, sweep)
    console().print(f"wrote {path}")
