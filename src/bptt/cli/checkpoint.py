"""`bptt convert-checkpoint`: rewrite a checkpoint that holds Python objects as plain data."""

from __future__ import annotations

import click

from bptt.cli.output import console
from bptt.cli.paths import writable_file
from bptt.training.checkpoint import convert_checkpoint


@click.command("convert-checkpoint", short_help="Rewrite a checkpoint that holds Python objects as plain data.")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    default=None,
    type=click.Path(dir_okay=False),
    help="Where to write the plain checkpoint. Default: in place.",
)
def command(path: str, output: str | None) -> None:
    """Rewrite the checkpoint PATH as tensors, numbers, strings and containers only, which bptt reads
    without running code. Reading PATH here unpickles it and runs any code it holds: convert only
    files you trust."""
    writable_file(output or path, "-o" if output else "PATH")
    written = convert_checkpoint(path, output)
    console().print(f"wrote {written}", highlight=False)
