"""`bptt runs`: list the runs in a results database (read only: the database is not written)."""

from __future__ import annotations

import click
from rich.table import Table

from bptt.cli.options import require_sweep
from bptt.cli.output import cell, console
from bptt.store import STATUSES, Database, RunSummary


@click.command("runs", short_help="List the runs of a results database.")
@click.option("--db", "db_path", default="bptt.db", show_default=True, type=click.Path(dir_okay=False))
@click.option("--sweep", default=None, help="Only the runs of this sweep.")
@click.option("--status", default=None, help="Only runs with this status.")
def command(db_path: str, sweep: str | None, status: str | None) -> None:
    """List runs: id, settings, status, steps and final metric."""
    if status is not None and status not in STATUSES:
        raise click.UsageError(f"--status: must be one of {', '.join(STATUSES)}, got {status!r}")
    with Database(db_path, read_only=True) as db:
        require_sweep(db, sweep)
        rows = db.runs(sweep=sweep, status=status)
    out = console()
    if not rows:
        chosen = " and ".join(f"{name} {value!r}" for name, value in (("sweep", sweep), ("status", status)) if value)
        out.print(f"no runs{' with ' + chosen if chosen else ''} in {db_path}", highlight=False, markup=False)
        return
    table = Table("id", "label", "task", "seq_len", "status", "steps", "test loss", "metric", "baseline")
    for row in rows:
        final = row.final or RunSummary()
        fmt = lambda v: "" if v is None else f"{v:.4g}"  # noqa: E731
        table.add_row(
            str(row.id),
            cell(row.label),
            cell(row.task),
            cell(row.config.get("seq_len") or ""),
            cell(row.status),
            str(row.steps_done),
            fmt(final.test_loss),
            f"{final.metric or ''} {fmt(final.test_metric)}",
            fmt(final.baseline),
        )
    out.print(table)
