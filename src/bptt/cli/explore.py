"""`bptt explore`: write the explorable (one self-contained page) and open it where a browser is available.

The page computes the mechanism live: a small recurrent layer's forward and
backward through time, in the browser, for any cell, scale of W_hh, init,
length, input scale, clipping threshold and seed. The options set where it
starts; ``--vectors`` writes the numbers bptt computes for the settings the
page is tested against (JSON, float64).
"""

from __future__ import annotations

import json
import os
import sys
import webbrowser
from pathlib import Path

import click

from bptt.cli.output import console
from bptt.cli.paths import writable_file
from bptt.explore.numbers import test_vectors
from bptt.explore.page import write_explorable
from bptt.explore.weights import CELLS, INITS, ExploreSettings

#: Each starting setting's flag, for errors that name the flag as given.
FLAGS = {
    "cell": "--cell",
    "init": "--init",
    "hidden_size": "--hidden-size",
    "seq_len": "--seq-len",
    "spectral_norm": "--spectral-norm",
    "input_scale": "--input-scale",
    "clip": "--clip",
    "seed": "--seed",
    "lag": "--lag",
}


def can_open_browser() -> bool:
    """Whether a graphical browser can be started here: macOS and Windows always, elsewhere only with a
    display (a text browser would take over the terminal)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _settings(values: dict) -> ExploreSettings:
    try:
        return ExploreSettings(**values)
    except ValueError as error:
        text = str(error)
        name = text.split(" ", 1)[0]
        raise click.UsageError(text.replace(name, FLAGS.get(name, name), 1)) from None


@click.command("explore", short_help="Write the explorable page of the mechanism and open it.")
@click.option("-o", "--output", default="explore.html", show_default=True, type=click.Path(dir_okay=False))
@click.option("--cell", type=click.Choice(CELLS), default="sigmoid", show_default=True, help="Where the page starts.")
@click.option("--init", type=click.Choice(INITS), default="random", show_default=True)
@click.option("--hidden-size", type=int, default=32, show_default=True, help="1 to 64.")
@click.option("--seq-len", type=int, default=100, show_default=True, help="2 to 200.")
@click.option("--spectral-norm", type=float, default=1.0, show_default=True, help="sigma_max of W_hh.")
@click.option("--input-scale", type=float, default=1.0, show_default=True)
@click.option("--clip", type=float, default=None, help="Gradient-norm clipping threshold (default: none).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--lag", type=int, default=50, show_default=True, help="The lag the sentence reads.")
@click.option(
    "--open/--no-open", "open_page", default=None, help="Open the page (default: where a browser is available)."
)
@click.option(
    "--vectors",
    default=None,
    metavar="FILE.json",
    type=click.Path(dir_okay=False),
    help="Also write the numbers bptt computes for the page's test settings (float64 JSON).",
)
def command(output: str, open_page: bool | None, vectors: str | None, **values: object) -> None:
    """Write the explorable to OUTPUT and open it: change the mechanism and watch the gradient move, e.g.

    bptt explore --cell lstm --seq-len 150
    """
    settings = _settings(values)
    writable_file(output, "-o")
    if vectors is not None:
        writable_file(vectors, "--vectors")
    path = write_explorable(output, settings)
    out = console()
    out.print(f"wrote {path} ({path.stat().st_size // 1024} KiB, works offline)", highlight=False)
    if vectors is not None:
        Path(vectors).write_text(json.dumps(test_vectors(), indent=1), encoding="utf-8")
        out.print(f"wrote {vectors}", highlight=False)
    uri = path.resolve().as_uri()
    wanted = can_open_browser() if open_page is None else open_page
    if wanted and webbrowser.open(uri):
        out.print("opened it in your browser", highlight=False)
    else:
        out.print(f"open it in a browser: {uri}", highlight=False)
