"""`bptt export`: runs as CSV or Parquet, one row per run."""

from __future__ import annotations

from pathlib import Path

import click

from bptt.cli.options import require_sweep
from bptt.cli.output import console, plural
from bptt.cli.paths import writable_file
from bptt.store import Database
from bptt.store.export import export_runs


@click.command("export", short_help="Write a database's runs as CSV or Parquet, one row per run.")
@click.option("--db", "db_path", default="bptt.db", show_default=True, type=click.Path(dir_okay=False))
@click.option("--sweep", default=None, help="Only the runs of this sweep (default: every run).")
@click.option(
    "-o",
    "--output",
    default="runs.csv",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="runs.csv, or runs.parquet (needs the parquet extra: pip install 'bptt[parquet]').",
)
def command(db_path: str, sweep: str | None, output: str) -> None:
    """Write one row per run: its status, every setting (config_*) and its final summary (final_*), e.g.

    bptt export --db sweeps.db --sweep remedies -o remedies.csv
    """
    with Database(db_path, read_only=True) as db:
        require_sweep(db, sweep)
    suffix = Path(output).suffix
    if suffix not in (".csv", ".parquet"):
        raise click.UsageError(f"-o: the file must end in .csv or .parquet, got {output!r}")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401  (optional, the parquet extra: only checked when asked for)
        except ImportError:
            raise click.UsageError(
                "-o: writing Parquet needs pyarrow: pip install 'bptt[parquet]'; or use a .csv name"
            ) from None
    writable_file(output, "-o")
    count = export_runs(db_path, output, sweep)
    console().print(f"wrote {plural(count, 'run')} to {output}")
