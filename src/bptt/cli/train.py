"""`bptt train`: one run from flags or a YAML file, recorded in the results database."""
from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from bptt.build import make_task
from bptt.cli.options import as_flags, config_from, given, run_options
from bptt.cli.output import console
from bptt.store import Database
from bptt.training import Trainer, check_memory


@click.command("train")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML file of run settings.")
@click.option("--db", "db_path", default="bptt.db", show_default=True, help="Results database (SQLite).")
@click.option("--resume", is_flag=True, help="Continue the latest run with the same settings from its checkpoint.")
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as one JSON object.")
@run_options
def command(config_path: str | None, db_path: str, resume: bool, as_json: bool, **settings: Any) -> None:
    """Train a recurrent network on a task, e.g.

    bptt train --task adding --seq-len 200 --cell rnn --activation sigmoid --init xavier --clip-norm 1.0
    """
    config = config_from(config_path, settings)
    # Bad task settings and runs too large for this machine end here, before the database is touched.
    with as_flags(given(settings)):
        task = make_task(config)
    check_memory(config, task)
    with Database(db_path) as db:
        result = Trainer(config, db, task=task).run(resume=resume)
    summary = {**result.final.to_dict(), "status": result.status, "reason": result.reason,
               "config": config.model_dump()}
    if as_json:
        click.echo(json.dumps(summary))
        return
    table = Table(title=f"run {result.run_id}: {config.label()} on {config.task}", show_header=False)
    for key in ("status", "reason", "steps", "test_loss", "baseline", "metric", "test_metric", "chance_metric",
                "solved", "clipped_steps", "skipped_steps", "train_seconds"):
        value = summary.get(key)
        if value is not None:
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console().print(table)
