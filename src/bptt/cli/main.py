"""The `bptt` command: one entry point, one subcommand per job.

Bad input ends with one line, ``bptt: error: <field>: <what is allowed>``, and
exit code 2; nothing is written.
"""
from __future__ import annotations

import sys

import click

from bptt import __version__
from bptt.cli import bench, demo, diagnose, export, report, reproduce, runs, sweep, train
from bptt.config import ConfigError
from bptt.registry import UnknownNameError
from bptt.tasks import TaskError
from bptt.training import NonFiniteGradientError

USAGE_ERRORS = (ConfigError, TaskError, UnknownNameError)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="bptt")
def cli() -> None:
    """Train recurrent networks by backpropagation through time, and see, measure and fix the vanishing gradient."""


for module in (train, runs, demo, diagnose, sweep, reproduce, report, export, bench):
    cli.add_command(module.command)


def main(argv: list[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name="bptt", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
    except click.ClickException as error:
        click.echo(f"bptt: error: {error.format_message()}", err=True)
        return error.exit_code
    except USAGE_ERRORS as error:
        click.echo(f"bptt: error: {error}", err=True)
        return 2
    except NonFiniteGradientError as error:
        click.echo(f"bptt: run failed: {error}", err=True)
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
