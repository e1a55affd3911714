"""The `bptt` command: one entry point, one subcommand per job.

Bad input ends with one line, ``bptt: error: <field>: <what is allowed>``, and
exit code 2; nothing is written. So does an environment a command cannot work
in (a database file that is not bptt's, an output that cannot be written, a
run too large for the memory free, a checkpoint that cannot be read). A run
that fails midway (a full disk) ends with ``bptt: run failed: ...`` and exit
code 1, recorded as "failed" with the reason. Every line is one line: text from
outside (a name, a value) is shown with its control characters escaped, and cut.

SIGTERM stops every command as Ctrl-C does (a run stops at its next step with a
checkpoint), with exit code 143 rather than 130.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading

import click

from bptt import __version__
from bptt.cli import (
    bench,
    checkpoint,
    demo,
    diagnose,
    explore,
    export,
    report,
    reproduce,
    runs,
    selfcheck,
    sweep,
    train,
)
from bptt.cli.output import one_line
from bptt.config import ConfigError
from bptt.registry import UnknownNameError
from bptt.store import DatabaseError
from bptt.store.folders import FolderError
from bptt.tasks import TaskError
from bptt.training import CheckpointError, MemoryLimitError, RunFailedError, RunInUseError
from bptt.training.runtime import Terminated, raise_terminated

USAGE_ERRORS = (
    ConfigError,
    TaskError,
    UnknownNameError,
    DatabaseError,
    CheckpointError,
    MemoryLimitError,
    FolderError,
    RunInUseError,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="bptt")
def cli() -> None:
    """Train recurrent networks by backpropagation through time, and see, measure and fix the vanishing gradient."""


for module in (train, runs, demo, explore, diagnose, sweep, reproduce, report, export, bench, selfcheck, checkpoint):
    cli.add_command(module.command)


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (timeout, schedulers, containers) stops a command as Ctrl-C does: cleanups run, a run saves.
    previous = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    try:
        # The command line as given, for a command that repeats it (`bptt train` names its --resume).
        args = sys.argv[1:] if argv is None else list(argv)
        result = cli.main(args=args, prog_name="bptt", standalone_mode=False, obj={"argv": args})
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
    except click.ClickException as error:
        click.echo(f"bptt: error: {one_line(error.format_message())}", err=True)
        return error.exit_code
    except USAGE_ERRORS as error:
        click.echo(f"bptt: error: {one_line(str(error))}", err=True)
        return 2
    except RunFailedError as error:
        click.echo(f"bptt: run failed: {one_line(str(error))}", err=True)
        return 1
    except (OSError, sqlite3.Error) as error:  # the machine's, past every check made before starting
        click.echo(f"bptt: failed: {one_line(f'{type(error).__name__}: {error}')}", err=True)
        return 1
    except click.exceptions.Abort as stopped:
        cause = stopped.__cause__ or stopped.__context__
        if isinstance(cause, Terminated) or getattr(cause, "signal_number", None) == signal.SIGTERM:
            click.echo("bptt: terminated (SIGTERM)", err=True)
            return 128 + signal.SIGTERM
        click.echo("bptt: interrupted", err=True)
        return 130
    return int(result or 0) if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
