"""`bptt demo`: the vanishing gradient and its remedies, in a few minutes on a laptop."""
from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from bptt.cli.output import console
from bptt.config import build_config
from bptt.training import train

#: (label, settings) of each model the demo trains.
MODELS: list[tuple[str, dict[str, Any]]] = [
    ("sigmoid RNN", {"cell": "rnn", "activation": "sigmoid"}),
    ("LSTM (forget bias 1)", {"cell": "lstm", "forget_bias": 1.0, "clip_norm": 1.0}),
]
LENGTHS = {"short": 10, "long": 100}
BASE = {"task": "adding", "hidden_size": 32, "batch_size": 32, "lr": 0.01, "steps": 600, "eval_every": 100,
        "eval_size": 500, "seed": 0}
QUICK = {"steps": 30, "eval_size": 64, "hidden_size": 16}


@click.command("demo")
@click.option("--quick", is_flag=True, help="A seconds-long version (fewer steps, smaller models).")
@click.option("--seed", default=0, show_default=True, type=int)
def command(quick: bool, seed: int) -> None:
    """Train a sigmoid RNN and an LSTM on the adding problem at a short and a long length."""
    out = console()
    table = Table(title="adding problem: test MSE (memoryless baseline 0.1667; solved < 0.0167)")
    table.add_column("model")
    for name, length in LENGTHS.items():
        table.add_column(f"{name} (T={length})", justify="right")
    for label, settings in MODELS:
        row = [label]
        for length in LENGTHS.values():
            config = build_config({**BASE, **(QUICK if quick else {}), **settings, "seq_len": length, "seed": seed})
            result = train(config)
            mse = result.final["test_loss"]
            row.append("diverged" if mse is None else f"{mse:.4f}" + (" solved" if result.final["solved"] else ""))
        table.add_row(*row)
    out.print(table)
