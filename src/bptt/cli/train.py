"""`bptt train`: one run from flags or a YAML file, recorded in the results database.

A run trained on its own is found again by its settings (``RunConfig.identity()``),
as a sweep finds its runs. Without ``--resume`` or ``--fresh``: when the newest
such run finished with at least the steps asked for (or stopped at the same
target), nothing is trained and that run is reported; when it was interrupted
or finished short, a hint says ``--resume`` continues it, and a new run is
trained. ``--fresh`` always trains a new one.

Ctrl-C stops at the next step boundary with a checkpoint of that step, marks
the run ``interrupted``, prints the command that resumes it and exits with 130;
SIGTERM does the same and exits with 143.
"""

from __future__ import annotations

import json
import shlex
import signal
from typing import Any

import click
from rich.table import Table

from bptt.build import make_task
from bptt.cli.options import as_flags, config_from, flag, given, run_options
from bptt.cli.output import console
from bptt.config import RunConfig, check_device
from bptt.store import Database, RunRow, RunSummary
from bptt.training import Trainer, TrainingInterrupted, check_memory
from bptt.training.runtime import signal_name

SHOWN = (
    "status",
    "reason",
    "steps",
    "test_loss",
    "baseline",
    "metric",
    "test_metric",
    "chance_metric",
    "solved",
    "clipped_steps",
    "skipped_steps",
    "train_seconds",
)


def _note(text: str) -> None:
    click.echo(f"bptt: {text}", err=True)


def resume_command(
    context: click.Context, db_path: str, config_path: str | None, as_json: bool, settings: dict[str, Any]
) -> str:
    """The command that resumes this run: the user's own command line with ``--resume`` (and without
    ``--fresh``), or, where it is not known, ``bptt train --db DB --resume`` and the same settings."""
    obj = context.find_root().obj
    argv = obj.get("argv") if isinstance(obj, dict) else None
    if argv and argv[0] == "train":
        args = [arg for arg in argv if arg != "--fresh"]
    else:
        args = ["train", "--db", db_path, *(["--config", config_path] if config_path else [])]
        for name, value in given(settings).items():
            if name in ("task_options", "cell_options"):
                args += [item for key, option in value.items() for item in (flag(name), f"{key}={option}")]
            elif isinstance(value, bool):
                args.append(f"--{'' if value else 'no-'}{name.replace('_', '-')}")
            else:
                args += [f"--{name.replace('_', '-')}", str(value)]
        args += ["--json"] if as_json else []
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["bptt", *args])


def _outcome(row: RunRow) -> str:
    final = row.final or RunSummary()
    if final.test_metric is None:
        return f"{row.steps_done} steps"
    return f"{row.steps_done} steps, test {final.metric or 'metric'} {final.test_metric:.4g}"


def _earlier(db: Database, config: RunConfig) -> RunRow | None:
    """A finished run of these settings that needs no more training (reported, not trained again);
    says on the way when an earlier one could be resumed instead."""
    previous = db.latest_run(config.identity(), None)
    if previous is None:
        return None
    if previous.done(config.steps, config.target_metric, config.target_loss):
        return previous
    if previous.status in ("interrupted", "finished"):
        _note(
            f"run {previous.id} with these settings {previous.status} at step {previous.steps_done}; "
            f"`--resume` continues it; training a new run"
        )
    return None


@click.command("train", short_help="Train a recurrent network on a task.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML file of run settings.")
@click.option("--db", "db_path", default="bptt.db", show_default=True, help="Results database (SQLite).")
@click.option("--resume", is_flag=True, help="Continue the latest run with the same settings from its checkpoint.")
@click.option(
    "--fresh",
    is_flag=True,
    help="Train a new run even when one with the same settings already "
    "finished (which is otherwise reported, not trained again).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as one JSON object.")
@run_options
def command(config_path: str | None, db_path: str, resume: bool, fresh: bool, as_json: bool, **settings: Any) -> None:
    """Train a recurrent network on a task, e.g.

    bptt train --task adding --seq-len 200 --cell rnn --activation sigmoid --init xavier --clip-norm 1.0

    A run with the same settings that already finished is reported, not trained again (--fresh trains
    another). Ctrl-C stops at the next step with a checkpoint and prints the command that resumes it.
    """
    if resume and fresh:
        raise click.UsageError("--resume and --fresh contradict each other: continue a run, or start a new one")
    config = config_from(config_path, settings)
    # Bad task settings, a device this machine lacks and runs too large for it end here, before the
    # database is touched.
    with as_flags(given(settings)):
        check_device(config)
        task = make_task(config)
    check_memory(config, task)
    with Database(db_path) as db:
        done = None if resume or fresh else _earlier(db, config)
        if done is not None:
            _report_done(done, as_json)
            return
        try:
            result = Trainer(config, db, task=task, announce=_note).run(resume=resume)
        except TrainingInterrupted as stopped:
            where = resume_command(click.get_current_context(), db_path, config_path, as_json, settings)
            hint = f"; resume with: {where}" if stopped.run_id is not None else ""
            how = "" if stopped.signal_number == signal.SIGINT else f" by {signal_name(stopped.signal_number)}"
            _note(f"interrupted{how}: {stopped.describe()}{hint}")
            raise click.exceptions.Exit(stopped.exit_code) from None
    summary = {
        **result.final.to_dict(),
        "status": result.status,
        "reason": result.reason,
        "config": config.model_dump(),
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    table = Table(title=f"run {result.run_id}: {config.label()} on {config.task}", show_header=False)
    for key in SHOWN:
        value = summary.get(key)
        if value is not None:
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console().print(table)


def _report_done(row: RunRow, as_json: bool) -> None:
    line = (
        f"run {row.id} already finished with these settings ({_outcome(row)}); nothing trained. "
        f"Add --fresh to train another, or see it with `bptt runs`"
    )
    if as_json:
        _note(line)
        final = (row.final or RunSummary()).to_dict()
        click.echo(
            json.dumps({**final, "run_id": row.id, "status": row.status, "reason": row.reason, "config": row.config})
        )  # what that run trained, not what was asked now
        return
    click.echo(line)
