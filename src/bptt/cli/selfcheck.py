"""`bptt selfcheck`: does bptt work on this machine, and how fast (``bptt.bench.selfcheck``)."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from bptt.bench import selfcheck
from bptt.checks import device_name


@click.command("selfcheck", short_help="Check that bptt works on this machine, and how fast.")
@click.option("--device", default="cpu", show_default=True, help="Device to check (cpu, cuda, cuda:1, ...).")
@click.option("--quick", is_flag=True, help="The bench at one small shape instead of the device's shapes.")
def command(device: str, quick: bool) -> None:
    """Parity of every cell with torch.nn on every engine (TF32 off), gradcheck on a tiny shape, the
    recorded norms against the reference loop, the bench's ratios at the device's shapes, and
    `bptt demo --quick`, in one table; within 8 minutes. Exit 1 when a check fails."""
    try:
        device = device_name("--device", device)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    status = Console(stderr=True)
    checks = selfcheck.run(device, quick, progress=lambda line: status.print(f"[dim]{line}[/dim]"))
    table = Table("check", "result", "detail", "seconds", title=f"bptt selfcheck on {device}")
    for check in checks:
        table.add_row(check.name, "ok" if check.ok else "FAILED", check.detail, f"{check.seconds:.0f}")
    Console(width=160).print(table)
    total = sum(c.seconds for c in checks)
    print(f"{sum(c.ok for c in checks)} of {len(checks)} checks hold, in {total:.0f} s")
    if not all(c.ok for c in checks):
        sys.exit(1)
