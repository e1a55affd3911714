"""`bptt bench`: training-step throughput and memory of bptt's engines against torch.nn."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from bptt import bench
from bptt.bench import cells as scan_bench
from bptt.bench import long
from bptt.checks import device_name

CELLS = ("rnn", "lstm", "gru")


def _cells(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    cells = tuple(c.strip().lower() for c in value.split(",") if c.strip())
    wrong = [c for c in cells if c not in CELLS]
    if wrong or not cells:
        raise click.UsageError(f"--cells must list some of {', '.join(CELLS)} (comma-separated); got {value!r}")
    return cells


def _shapes(value: str | None) -> tuple[tuple[int, int, int], ...] | None:
    if value is None:
        return None
    shapes = []
    for part in value.split(","):
        sizes = part.strip().lower().split("x")
        if len(sizes) != 3 or not all(s.isdigit() and int(s) > 0 for s in sizes):
            raise click.UsageError(
                f"--shapes must be BxHxT shapes of positive integers, comma-separated (e.g. 16x64x1000); got {value!r}"
            )
        shapes.append((int(sizes[0]), int(sizes[1]), int(sizes[2])))
    return tuple(shapes)


def _only(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    words = tuple(w.strip() for w in value.split(",") if w.strip())
    if not words:
        raise click.UsageError(
            f"--only must name parts of variant names, comma-separated (e.g. record,packed); got {value!r}"
        )
    return words


@click.command("bench", short_help="Time training steps against torch.nn, recording off and on.")
@click.option("--quick", is_flag=True, help="One small shape, three repetitions: a few seconds.")
@click.option("--cells", help="Only these cells: rnn, lstm, gru (comma-separated).")
@click.option("--shapes", help="Only these BxHxT shapes, e.g. 16x64x1000,128x128x1000 (packed batches too).")
@click.option(
    "--only", help="Only variants whose name contains one of these, e.g. record,packed (with their baselines)."
)
@click.option(
    "--long",
    "long_steps",
    is_flag=True,
    help="Instead: one recorded step at T=100,000 per cell, time and memory (minutes).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of tables.")
@click.option("--device", default="cpu", show_default=True, help="Device to run on (cpu, cuda, cuda:1, ...).")
@click.option(
    "--scan-cells",
    is_flag=True,
    help="Instead: minGRU, minLSTM and the LRU against bptt's GRU at the adding task's shape "
    "(I=2, B=32, H=128, T=5000; T=500 with --quick), recording on, with each row's FLOP bound.",
)
def command(
    quick: bool,
    cells: str | None,
    shapes: str | None,
    only: str | None,
    long_steps: bool,
    as_json: bool,
    device: str,
    scan_cells: bool,
) -> None:
    """Ratios of training-step time against torch.nn (same process, interleaved, medians), GFLOP/s
    and peak memory. Timings swing on a busy machine; compare ratios from one run. A variant whose
    first call takes over a few seconds is timed on that call alone (its "calls" is 1)."""
    try:
        device = device_name("--device", device)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    chosen_cells, chosen_shapes, chosen_only = _cells(cells), _shapes(shapes), _only(only)
    console = Console(stderr=True)
    progress = None if as_json else (lambda line: console.print(f"[dim]{line}[/dim]"))
    if scan_cells:
        _scan_cells(quick, as_json, device, progress)
        return
    if long_steps:
        rows = long.run(chosen_cells or CELLS, device=device, progress=progress)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
        else:
            _print_long(rows)
        return
    result = bench.run(
        quick=quick, device=device, progress=progress, cells=chosen_cells, shapes=chosen_shapes, only=chosen_only
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    _print(result)


def _print(result: bench.BenchResult) -> None:
    out = Console()
    once = {(t.name, t.batch, t.hidden, t.seq_len) for t in result.timings if t.calls == 1}
    ratios = Table("variant", "baseline", "B", "H", "T", "speed-up", title=f"ratios ({result.threads} threads)")
    for r in result.ratios:
        shape = (r.batch, r.hidden, r.seq_len)
        note = " (timed once)" if (r.baseline, *shape) in once or (r.variant, *shape) in once else ""
        ratios.add_row(r.variant, r.baseline, *map(str, shape), f"{r.ratio:.2f}x{note}")
    out.print(ratios)
    timings = Table(
        "variant", "engine", "B", "H", "T", "ms / step", "GFLOP/s", "calls",
        title=f"training step (forward + backward) on {result.device}",
    )  # fmt: skip
    for t in result.timings:
        timings.add_row(
            t.name, t.engine, str(t.batch), str(t.hidden), str(t.seq_len), f"{t.seconds * 1e3:.1f}", f"{t.gflops:.1f}",
            str(t.calls),
        )  # fmt: skip
    out.print(timings)
    memory = Table(
        "cell", "engine", "ran", "T", "B", "H", "extra MB", "x hidden states", title="peak memory (loss on h_n)"
    )
    for m in result.memory:
        memory.add_row(
            m["cell"], m["engine"], m.get("ran", m["engine"]), str(m["seq_len"]), str(m["batch"]), str(m["hidden"]),
            f"{m['extra_bytes'] / 2**20:.0f}", f"{m['multiple']:.2f}",
        )  # fmt: skip
    out.print(memory)


def _print_long(rows: list[dict]) -> None:
    table = Table(
        "cell", "engine", "T", "B", "H", "seconds", "peak GiB", "estimate GiB", "within",
        title="a recorded training step at T = 100,000 (loss on h_n)",
    )  # fmt: skip
    for m in rows:
        table.add_row(
            m["cell"], m["ran"], str(m["seq_len"]), str(m["batch"]), str(m["hidden"]), f"{m['seconds']:.1f}",
            f"{m['extra_bytes'] / 2**30:.2f}", f"{m['estimate_bytes'] / 2**30:.2f}", "yes" if m["within"] else "NO",
        )  # fmt: skip
    Console().print(table)


def _scan_cells(quick: bool, as_json: bool, device: str, progress) -> None:
    result = scan_bench.measure(
        scan_bench.QUICK_SHAPE if quick else scan_bench.SHAPE,
        rounds=3 if quick else 5,
        device=device,
        progress=progress,
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
        title=f"against {scan_bench.BASELINE} ({result.baseline_seconds:.3f} s / step) at I={I} B={B} H={H} T={T}, "
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
