"""`bptt report`: one self-contained HTML page of a sweep's results."""
from __future__ import annotations

from pathlib import Path

import click

from bptt.cli.output import console
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
    if not Path(db_path).is_file():
        raise click.UsageError(f"--db: no database at {db_path}")
    if sweep is not None:
        with Database(db_path) as db:
            if not db.runs(sweep=sweep):
                known = sorted({r.sweep for r in db.runs() if r.sweep})
                raise click.UsageError(f"--sweep: no runs of sweep {sweep!r}; sweeps here: {', '.join(known) or 'none'}")
    path = build_report(db_path, output, sweep)
    console().print(f"wrote {path}")
