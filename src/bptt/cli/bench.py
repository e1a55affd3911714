"""`bptt bench`: training-step throughput and memory of the fast engine against torch.nn."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from bptt import bench
from bptt.bench import cells
from bptt.checks import device_name


@click.command("bench")
@click.option("--quick", is_flag=True, help="One small shape, three repetitions: a few seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of tables.")
@click.option("--device", default="cpu", show_default=True, help="Device to run on (cpu, cuda, cuda:1, ...).")
@click.option(
    "--scan-cells",
    is_flag=True,
    help="Instead: minGRU, minLSTM and the LRU against bptt's GRU at the adding task's shape "
    "(I=2, B=32, H=128, T=5000; T=500 with --quick), recording on, with each row's FLOP bound.",
)
def command(quick: bool, as_json: bool, device: str, scan_cells: bool) -> None:
    """Ratios of training-step time against torch.nn (same process, interleaved, medians), GFLOP/s
    and peak memory. Timings swing on a busy machine; compare ratios from one run."""
    try:
        device = device_name("--device", device)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    console = Console(stderr=True)
    progress = None if as_json else (lambda line: console.print(f"[dim]{line}[/dim]"))
    if scan_cells:
        _scan_cells(quick, as_json, device, progress)
        return
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


def _scan_cells(quick: bool, as_json: bool, device: str, progress) -> None:
    result = cells.measure(
        cells.QUICK_SHAPE if quick else cells.SHAPE, rounds=3 if quick else 5, device=device, progress=progress
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    I, B, H, T = result.shape
    table = Table(
        "variant",
        "engine",
        "s / step",
        "speed-up (lowest-highest)",
        "FLOP bound",
        title=f"against {cells.BASELINE} ({result.baseline_seconds:.3f} s / step) at I={I} B={B} H={H} T={T}, "
        f"{result.rounds} rounds, {result.threads} threads, {result.device}",
    )
    for row in result.rows:
        table.add_row(
            row.variant,
            row.engine,
            f"{row.seconds:.3f}",
            f"{row.ratio:.2f}x ({row.lowest:.2f}-{row.highest:.2f})",
            f"{row.flop_bound:.2f}x",
        )
    Console().print(table)
