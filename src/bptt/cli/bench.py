"""`bptt bench`: training-step throughput and memory of the fast engine against torch.nn."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from bptt import bench
from bptt.checks import device_name


@click.command("bench", short_help="Time training steps against torch.nn, recording off and on.")
@click.option("--quick", is_flag=True, help="One small shape, three repetitions: a few seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of tables.")
@click.option("--device", default="cpu", show_default=True, help="Device to run on (cpu, cuda, cuda:1, ...).")
def command(quick: bool, as_json: bool, device: str) -> None:
    """Ratios of training-step time against torch.nn (same process, interleaved, medians), GFLOP/s
    and peak memory. Timings swing on a busy machine; compare ratios from one run."""
    try:
        device = device_name("--device", device)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    console = Console(stderr=True)
    progress = None if as_json else (lambda line: console.print(f"[dim]{line}[/dim]"))
    result = bench.run(quick=quick, device=device, progress=progress)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    out = Console()
    ratios = Table("variant", "baseline", "B", "H", "T", "speed-up", title=f"ratios ({result.threads} threads)")
    for r in result.ratios:
        ratios.add_row(r.variant, r.baseline, str(r.batch), str(r.hidden), str(r.seq_len), f"{r.ratio:.2f}x")
    out.print(ratios)
    timings = Table(
        "variant",
        "engine",
        "B",
        "H",
        "T",
        "ms / step",
        "GFLOP/s",
        title=f"training step (forward + backward) on {result.device}",
    )
    for t in result.timings:
        timings.add_row(
            t.name, t.engine, str(t.batch), str(t.hidden), str(t.seq_len), f"{t.seconds * 1e3:.1f}", f"{t.gflops:.1f}"
        )
    out.print(timings)
    memory = Table("cell", "engine", "T", "B", "H", "extra MB", "x hidden states", title="peak memory (loss on h_n)")
    for m in result.memory:
        memory.add_row(
            m["cell"],
            m["engine"],
            str(m["seq_len"]),
            str(m["batch"]),
            str(m["hidden"]),
            f"{m['extra_bytes'] / 2**20:.0f}",
            f"{m['multiple']:.2f}",
        )
    out.print(memory)
