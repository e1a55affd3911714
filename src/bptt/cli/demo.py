"""`bptt demo`: the vanishing gradient and its remedies, trained and measured in a few minutes.

Twelve models (sigmoid, tanh, ReLU and leaky-ReLU RNNs; Xavier init; clipping;
stacking with and without residual connections; attention; LSTM; GRU) on
delayed sentiment at a short and a long delay. Prints one table and writes a
self-contained HTML page with every figure.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bptt.cli.output import console
from bptt.cli.paths import writable_folder
from bptt.demo.experiment import DemoResult, DemoSettings, demo_runs, run_demo
from bptt.demo.page import TABLE_HEADER, table_rows, write_demo_page


@click.command("demo")
@click.option("--quick", is_flag=True, help="A seconds-long version (few steps, small models), for CI.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of every run.")
@click.option("--out", "out_dir", default="bptt-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the page (index.html).")
def command(quick: bool, seed: int, out_dir: str) -> None:
    """Train a sigmoid RNN, its remedies, an LSTM and a GRU on delayed sentiment at a short and a long
    delay; measure how the gradient vanishes; write the page to OUT/index.html."""
    writable_folder(out_dir, "--out")  # before minutes of training, not after
    settings = DemoSettings.quick(seed) if quick else DemoSettings(seed=seed)
    started = time.perf_counter()
    threads = torch.get_num_threads()
    # The demo's matrices are tiny: a second thread adds only synchronisation, and on a
    # busy machine a waiting thread can slow each step tenfold.
    torch.set_num_threads(1)
    try:
        result = _run(settings)
    finally:
        torch.set_num_threads(threads)
    path = write_demo_page(result, Path(out_dir) / "index.html")
    out = console()
    table = Table(*TABLE_HEADER, title="delayed sentiment (chance 50 %)")
    for row in table_rows(result):
        table.add_row(*row)
    out.print(table)
    out.print(f"sigmoid RNN: {result.models[0].diagnosis.verdict()}", highlight=False)
    out.print(f"wrote {path} in {time.perf_counter() - started:.0f} s", highlight=False)


def _run(settings: DemoSettings) -> DemoResult:
    """Train and diagnose every model, with a progress bar on a terminal."""
    status = Console(file=sys.stderr)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=status, disable=not status.is_terminal, transient=True)
    with bar:
        task_id = bar.add_task("bptt demo", total=demo_runs(settings))

        def progress(text: str, done: int) -> None:
            bar.update(task_id, description=text, completed=done)

        return run_demo(settings, progress)
