"""`bptt runs`: list the runs in a results database."""
from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from bptt.cli.output import console
from bptt.store import Database, RunSummary


@click.command("runs")
@click.option("--db", "db_path", default="bptt.db", show_default=True, type=click.Path(dir_okay=False))
@click.option("--sweep", default=None, help="Only the runs of this sweep.")
@click.option("--status", default=None, help="Only runs with this status.")
def command(db_path: str, sweep: str | None, status: str | None) -> None:
    """List runs: id, settings, status, steps and final metric."""
    if not Path(db_path).is_file():
        raise click.UsageError(f"--db: no database at {db_path}")
    with Database(db_path) as db:
        rows = db.runs(sweep=sweep, status=status)
    table = Table("id", "label", "task", "seq_len", "status", "steps", "test loss", "metric", "baseline")
    for row in rows:
        final = row.final or RunSummary()
        fmt = lambda v: "" if v is None else f"{v:.4g}"  # noqa: E731
        table.add_row(str(row.id), row.label, row.task, str(row.config.get("seq_len") or ""), row.status,
                      str(row.steps_done), fmt(final.test_loss),
                      f"{final.metric or ''} {fmt(final.test_metric)}", fmt(final.baseline))
    console().print(table)
