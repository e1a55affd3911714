"""`bptt demo`: the vanishing gradient and its remedies, trained and measured in a few minutes.

Twelve models (sigmoid and tanh RNNs; IRNN and a leaky-ReLU RNN; Xavier init;
clipping; stacking with and without residual connections; attention; LSTM;
GRU) on delayed sentiment at a short and a long delay. Prints its budget at the
start, one line per model as it finishes (on a terminal or not), then the table
and what each remedy family did, and writes a self-contained HTML page with every
figure. On a terminal a progress bar shows the run in hand and the time left.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import click
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bptt.checks import device_name
from bptt.cli.output import console
from bptt.cli.paths import writable_folder
from bptt.demo import beyond
from bptt.demo.experiment import DemoResult, DemoSettings, ModelResult, demo_plan, format_accuracy, run_demo
from bptt.demo.experiment import Progress as DemoProgress
from bptt.demo.page import EXPLORABLE, write_demo_page
from bptt.demo.story import remedy_notes
from bptt.demo.tables import table_header, table_rows


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _say(text: str) -> None:
    """One line on stdout, at once, whether stdout is a terminal or a pipe (above the bar while one shows)."""
    print(text, flush=True)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@click.command("demo", short_help="The vanishing gradient and its remedies, told end to end.")
@click.option(
    "--quick",
    is_flag=True,
    help="The quick version: the same story, smaller (fewer models, a long "
    "delay of 20 words, fewer steps), in well under a minute.",
)
@click.option(
    "--beyond",
    "beyond_",
    is_flag=True,
    help=f"Instead: the cells beyond the notes (IndRNN, ...) on delayed sentiment at delay {beyond.DELAY}, "
    "on their own page, OUT/beyond.html, in about two minutes.",
)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of every run.")
@click.option(
    "--out",
    "out_dir",
    default="bptt-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the page (index.html).",
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    metavar="cpu|cuda",
    help="Where every model trains and is measured (cuda: a GPU this machine has).",
)
def command(quick: bool, beyond_: bool, seed: int, out_dir: str, device: str) -> None:
    """Train a sigmoid RNN, its remedies, an LSTM and a GRU on delayed sentiment at a short and a long
    delay; measure how the gradient vanishes; say what each remedy did; write the page to OUT/index.html.
    With --beyond, the cells that reached thousands of steps instead, on OUT/beyond.html."""
    try:
        device = device_name("--device", device)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    writable_folder(out_dir, "--out")  # before minutes of training, not after
    if beyond_:
        if quick:
            raise click.UsageError("--beyond has no quick version; give one of --quick and --beyond")
        _beyond(seed, out_dir, device)
        return
    settings = DemoSettings.quick(seed, device) if quick else DemoSettings(seed=seed, device=device)
    started, cpu = time.perf_counter(), _cpu_seconds()
    plan = demo_plan(settings)
    models = settings.chosen()
    delays = settings.delays
    _say(
        f"{title_line(settings)}: {len(models)} models on delayed sentiment at delays {delays['short']} and "
        f"{delays['long']} words, {len(plan.runs)} training runs; {budget(settings.expected_seconds())} on a quiet "
        "2-core machine."
    )
    threads = torch.get_num_threads()
    # The demo's matrices are tiny: a second thread adds only synchronisation, and on a
    # busy machine a waiting thread can slow each step tenfold.
    torch.set_num_threads(1)
    try:
        result = _run(settings, len(models))
    finally:
        torch.set_num_threads(threads)
    path = write_demo_page(result, Path(out_dir) / "index.html")
    out = console()
    table = Table(*table_header(result), title=f"delayed sentiment (chance 50 %){' - quick version' * quick}")
    for row in table_rows(result):
        table.add_row(*row)
    out.print(table)
    first = result.models[0]
    out.print(f"{first.label}, {first.diagnosis.state}: {first.diagnosis.verdict()}", highlight=False)
    out.print("What each remedy did:", highlight=False)
    for note in remedy_notes(result):
        out.print(f"- {note.heading}. {note.lead}", highlight=False)
        for paragraph in note.paragraphs:
            out.print(f"  {paragraph}", highlight=False)
    out.print(
        f"wrote {path} in {time.perf_counter() - started:.0f} s (CPU {_cpu_seconds() - cpu:.0f} s), "
        f"and the explorable beside it ({path.parent / EXPLORABLE}; bptt explore writes it on its own)",
        highlight=False,
    )


def _beyond(seed: int, out_dir: str, device: str) -> None:
    chosen = beyond.models()
    _say(
        f"bptt demo --beyond: {len(chosen)} models ({', '.join(label for label, _ in chosen)}) on delayed sentiment "
        f"at delay {beyond.DELAY}; {budget(beyond.EXPECTED_SECONDS_PER_MODEL * len(chosen))} on a quiet 2-core machine."
    )
    started, cpu = time.perf_counter(), _cpu_seconds()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = beyond.run_beyond(
            seed,
            device,
            lambda m, i, n: _say(
                f"[{i}/{n}] {m.label}: accuracy {format_accuracy(m.accuracy)}, ||dL/dh|| lag {beyond.DELAY} / lag 0 "
                f"{'-' if m.ratio is None else f'{m.ratio:.2g}'} ({_clock(time.perf_counter() - started)})"
            ),
        )
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    path = beyond.write_beyond_page(results, Path(out_dir) / "beyond.html", seconds)
    table = Table(*beyond.TABLE_HEADER, title=f"delayed sentiment at delay {beyond.DELAY} (chance 50 %)")
    for row in beyond.table_rows(results):
        table.add_row(*row)
    out = console()
    out.print(table)
    out.print(f"wrote {path} in {seconds:.0f} s (CPU {_cpu_seconds() - cpu:.0f} s)", highlight=False)


def budget(seconds: float) -> str:
    """The expected time in round numbers: "about 60 seconds", "about 3 minutes"."""
    if seconds >= 90:
        return f"about {round(seconds / 60)} minutes"
    return f"about {max(10, round(seconds, -1)):.0f} seconds"


def title_line(settings: DemoSettings) -> str:
    return "bptt demo, quick version" if settings.quick_version else "bptt demo"


def _model_line(result: ModelResult, index: int, total: int, now: DemoProgress) -> str:
    d = result.diagnosis
    short, long = (result.outcomes[k].config.delay for k in ("short", "long"))
    left = now.remaining_seconds
    eta = "done" if index == total else f"about {_clock(left)} left"
    return (
        f"[{index:>2}/{total}] {result.label}: delay {short} {format_accuracy(result.accuracy('short'))}, "
        f"delay {long} {format_accuracy(result.accuracy('long'))}; dL/dh lag {d.lag_used}/lag 0 "
        f"{d.gradient_ratio:.1e}; memory horizon {d.horizon[-1]} step{'' if d.horizon[-1] == 1 else 's'}"
        f"{f', reach {d.reach[-1]}' if d.reach[-1] > d.horizon[-1] else ''}  ({_clock(now.elapsed)} elapsed, {eta})"
    )


def _run(settings: DemoSettings, total: int) -> DemoResult:
    """Train and diagnose every model: a line per model, and a progress bar with the time left on a terminal."""
    status = Console(file=sys.stderr)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[left]}"),
        console=status,
        disable=not status.is_terminal,
        transient=True,
    )
    finished = 0
    with bar:
        task_id = bar.add_task("bptt demo", total=1.0, left="")

        def progress(now: DemoProgress) -> None:
            left = now.remaining_seconds
            bar.update(
                task_id,
                description=now.text,
                completed=now.done / now.total,
                left="" if left is None else f"about {_clock(left)} left",
            )

        def model_done(result: ModelResult, now: DemoProgress) -> None:
            nonlocal finished
            finished += 1
            bar.update(task_id, completed=now.done / now.total)
            _say(_model_line(result, finished, total, now))

        return run_demo(settings, progress, model_done)
