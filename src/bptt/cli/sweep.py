"""`bptt sweep`: run a sweep spec (remedies x lengths x seeds) on a local pool or a Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml
from rich.table import Table

from bptt import experiments
from bptt.cli.output import cell, console, plural, printable
from bptt.cli.paths import writable_folder
from bptt.store import Database, controlled_length
from bptt.store.schema import inspect_database
from bptt.sweeps import SweepLockedError, SweepSpecError, checkpoint_root_for, decide, load_spec, run_sweep
from bptt.sweeps.spec import MAX_RUNS, check_devices_here, check_memory_here, parse_assignment


def _values(text: str) -> list[Any]:
    try:
        return [None if part.strip().lower() == "none" else yaml.safe_load(part) for part in text.split(",")]
    except yaml.YAMLError:
        raise click.BadParameter(f"malformed value in {text!r}", param_hint="--filter") from None


def filters_option(items: tuple[str, ...]) -> dict[str, list[Any]]:
    filters = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values:
            raise SweepSpecError(f"--filter: expected KEY=V1,V2,..., got {item!r}")
        filters[key.strip()] = _values(values)
    return filters


def seeds_option(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise SweepSpecError(f"--seeds: expected integers separated by commas, got {text!r}") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise SweepSpecError(f"--seeds: each seed once, all >= 0, got {text!r}")
    return seeds


@click.command("sweep", short_help="Run the runs of a sweep spec that are not done yet.")
@click.argument("spec_path", metavar="SPEC")
@click.option(
    "--db",
    "db_path",
    default="bptt.db",
    show_default=True,
    help="Results database (SQLite), written by this process only.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Runs at once. Default: local, one per CPU; ray, one per CPU of the cluster.",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: a process pool on this machine; ray: Ray core tasks.",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster address (ray://HOST:10001 or HOST:6379). Default: start a local Ray instance.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Torch threads per run. Default: 1 (runs side by side use the cores better).",
)
@click.option(
    "--checkpoint-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Run folders (checkpoints and progress). Default: <db stem>-sweeps/ next to the database "
    "(sweeps.db: sweeps-runs/); "
    "on a cluster, a path every worker and the driver share.",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a run setting on every run, after the spec (e.g. --set steps=200). Repeatable.",
)
@click.option("--seeds", default=None, metavar="S1,S2", help="Replace the spec's seeds.")
@click.option(
    "--filter",
    "filter_items",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Keep only runs whose setting is one of the values ('none': unset). Repeatable.",
)
@click.option("--name", default=None, help="Replace the spec's sweep name (e.g. for a reduced copy).")
@click.option("--retry-failed", is_flag=True, help="Run failed runs again (from their checkpoints).")
@click.option("--dry-run", is_flag=True, help="List the runs and what would happen to each; run nothing.")
@click.option("--allow-large", is_flag=True, help=f"Expand a spec of more than {MAX_RUNS:,} runs.")
def command(
    spec_path: str,
    db_path: str,
    workers: int | None,
    backend: str,
    address: str | None,
    threads: int | None,
    checkpoint_dir: str | None,
    assignments: tuple[str, ...],
    seeds: str | None,
    filter_items: tuple[str, ...],
    name: str | None,
    retry_failed: bool,
    dry_run: bool,
    allow_large: bool,
) -> None:
    """Run every run of a sweep SPEC that is not done yet, e.g.

    bptt sweep remedies --workers 2 --db sweeps.db

    SPEC is a YAML file, or the name of a shipped spec (canonical, canonical-quick, modern, remedies, vanishing).

    A finished run (same settings, at least as many steps) is skipped; an
    interrupted one resumes from its checkpoint. Stop it at any time and run
    the same command again.
    """
    if address is not None and backend != "ray":
        raise click.UsageError("--address needs --backend ray")
    overrides = dict(parse_assignment(item) for item in assignments)
    try:
        path = experiments.spec_path(spec_path)
    except experiments.SpecNotFound as error:
        raise SweepSpecError(str(error)) from None
    spec = load_spec(
        path,
        overrides=overrides,
        seeds=seeds_option(seeds),
        filters=filters_option(filter_items),
        name=name,
        allow_large=allow_large,
    )
    out = console()
    if address is None:  # the runs train on this machine: each must have its device and fit in its memory
        check_devices_here(spec)
        check_memory_here(spec)
    if dry_run:  # reads the database if there is one, writes nothing
        if inspect_database(Path(db_path), read_only=False):
            with Database(db_path, read_only=True) as db:
                decisions = decide(spec, db, retry_failed)
        else:
            decisions = decide(spec, None, retry_failed)
        table = Table(
            "identity", "label", "variant", "task", "length", "seed", "steps", "action", title=f"sweep {spec.name}"
        )
        for d in decisions:
            c = d.run.config
            _, length = controlled_length(c.model_dump())
            table.add_row(
                d.run.identity,
                cell(c.label()),
                cell(d.run.variant or ""),
                cell(c.task),
                str(length),
                str(c.seed),
                str(c.steps),
                cell(d.describe()),
            )
        out.print(table)
        return
    if checkpoint_dir is not None:
        writable_folder(checkpoint_dir, "--checkpoint-dir")
    try:
        summary = run_sweep(
            spec,
            db_path,
            backend=backend,
            workers=workers,
            address=address,
            threads=threads,
            checkpoint_root=checkpoint_dir or checkpoint_root_for(db_path),
            retry_failed=retry_failed,
            warn=lambda message: click.echo(f"bptt: warning: {message}", err=True),
        )
    except SweepLockedError as error:
        raise click.ClickException(str(error)) from None
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(summary.statuses.items()))
    out.print(
        f"sweep {summary.name}: {plural(summary.planned, 'run')} ({statuses}); ran {summary.ran}, "
        f"skipped {summary.skipped}, {summary.seconds:.1f} s, {summary.runs_per_minute:.2f} runs/min",
        markup=False,
    )
    for label, status, reason in summary.problems:
        out.print(printable(f"  {status}: {label}: {reason}"), markup=False, highlight=False)
