"""The `bptt` command: one entry point, one subcommand per job.

Bad input ends with one line, ``bptt: error: <field>: <what is allowed>``, and
exit code 2; nothing is written. So does an environment a command cannot work
in (a database file that is not bptt's, an output that cannot be written, a
run too large for the memory free, a checkpoint that cannot be read). A run
that fails midway (a full disk) ends with ``bptt: run failed: ...`` and exit
code 1, recorded as "failed" with the reason.
"""

from __future__ import annotations

import sqlite3
import sys

import click

from bptt import __version__
from bptt.cli import bench, checkpoint, demo, diagnose, export, report, reproduce, runs, selfcheck, sweep, train
from bptt.config import ConfigError
from bptt.registry import UnknownNameError
from bptt.store import DatabaseError
from bptt.tasks import TaskError
from bptt.training import CheckpointError, MemoryLimitError, RunFailedError

USAGE_ERRORS = (ConfigError, TaskError, UnknownNameError, DatabaseError, CheckpointError, MemoryLimitError)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="bptt")
def cli() -> None:
    """Train recurrent networks by backpropagation through time, and see, measure and fix the vanishing gradient."""


for module in (train, runs, demo, diagnose, sweep, reproduce, report, export, bench, selfcheck, checkpoint):
    cli.add_command(module.command)


def main(argv: list[str] | None = None) -> int:
    try:
        # The command line as given, for a command that repeats it (`bptt train` names its --resume).
        args = sys.argv[1:] if argv is None else list(argv)
        result = cli.main(args=args, prog_name="bptt", standalone_mode=False, obj={"argv": args})
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
    except click.ClickException as error:
        click.echo(f"bptt: error: {error.format_message()}", err=True)
        return error.exit_code
    except USAGE_ERRORS as error:
        click.echo(f"bptt: error: {error}", err=True)
        return 2
    except RunFailedError as error:
        click.echo(f"bptt: run failed: {error}", err=True)
        return 1
    except (OSError, sqlite3.Error) as error:  # the machine's, past every check made before starting
        click.echo(f"bptt: failed: {type(error).__name__}: {str(error).strip()}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("bptt: interrupted", err=True)
        return 130
    return int(result or 0) if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
