"""`bptt diagnose`: measure the vanishing gradient of a saved run, a config, or your own module.

    bptt diagnose --db bptt.db --run 3 --out diag/          # a trained run, from its checkpoint
    bptt diagnose --task sentiment --delay 50 --activation sigmoid --out diag/   # a config, at initialisation
    bptt diagnose --config run.yaml --train                 # train the config first, then measure
    bptt diagnose --module my_model.py:build --task adding --seq-len 100     # your own module, a task's batch
    bptt diagnose --module my_model.py:build --data batch.pt --loss ce       # your own module and data

Prints the verdict; ``--json`` prints every measured value instead. Figures go
to ``--out`` as PNG and SVG.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.markup import escape

from bptt.build import make_model, make_task
from bptt.cli.options import FiniteFloatRange, as_flags, config_from, given, model_options
from bptt.cli.output import console, plural, printable
from bptt.cli.paths import writable_folder
from bptt.config import check_device
from bptt.diagnostics import (
    DEFAULT_EPSILON,
    DEFAULT_EXAMPLES,
    DEFAULT_LAG,
    DEFAULT_RECENT,
    Diagnosis,
    ModuleDiagnosis,
    diagnose,
    diagnose_module,
    figures,
    training_history,
)
from bptt.diagnostics.module import DataError, ShapeError, load_batch
from bptt.loading import SourceError, model_from_run, module_from_factory
from bptt.plotting.html import save_figure
from bptt.store import Database
from bptt.training import Trainer, check_memory


def _save(pictures: dict[str, Any], out: Path) -> list[Path]:
    written = []
    for name, fig in pictures.items():
        written.extend(save_figure(fig, out / name))
    return written


def _figures(result: Diagnosis | ModuleDiagnosis) -> dict[str, Any]:
    """Every figure of the diagnosis (``Diagnosis.figures``: the per-layer chart only for stacked layers,
    each title saying when the model was measured); the input contribution alone for a module that holds
    no recurrent layer."""
    return result.figures()


def _note(text: str) -> None:
    click.echo(f"bptt: {text}", err=True)


def _given_by_user(*names: str) -> list[str]:
    """Which of these options the user set on the command line (not left at their defaults)."""
    context = click.get_current_context()
    return [name for name in names if context.get_parameter_source(name) != ParameterSource.DEFAULT]


@click.command("diagnose", short_help="Measure the vanishing gradient of a run, a config or your own module.")
@click.option(
    "--db",
    "db_path",
    default="bptt.db",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Results database of the run (with --run).",
)
@click.option("--run", "run_id", type=int, help="Id of a saved run to diagnose (see `bptt runs`).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML file of run settings.")
@click.option(
    "--module",
    "module_spec",
    metavar="FILE.py:FACTORY",
    help="Diagnose your own torch.nn.Module: FACTORY() returns it. Its torch.nn RNN/LSTM/GRU are "
    "converted to bptt's on a copy and everything is measured; other modules get the input "
    "contribution. Fed a task's batch (run settings) or your own (--data).",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=False),
    help="With --module: your batch, a .pt (dict of tensors) or .npz file holding inputs (T, B, I) "
    "floats or (T, B) token ids, targets, and optionally lengths.",
)
@click.option(
    "--loss",
    type=click.Choice(["ce", "mse"]),
    default=None,
    help="With --data: cross-entropy or MSE (default: ce for integer targets, mse for floats).",
)
@click.option(
    "--input",
    "input_kind",
    type=click.Choice(["auto", "tokens", "dense"]),
    default="auto",
    show_default=True,
    help="With --module on a token task: token ids into the module's embedding, "
    "or one-hot vectors (auto: ids when the module holds an nn.Embedding).",
)
@click.option("--batch-first", is_flag=True, help="With --module: the module takes (B, T, ...).")
@click.option(
    "--train",
    "train_first",
    is_flag=True,
    help="With a config: train it first (no database), then measure; training settings come from --config.",
)
@click.option(
    "--examples",
    default=DEFAULT_EXAMPLES,
    show_default=True,
    type=click.IntRange(min=1),
    help="Examples in the fixed batch the quantities are measured on.",
)
@click.option(
    "--lag",
    default=DEFAULT_LAG,
    show_default=True,
    type=click.IntRange(min=1),
    help="Lag of the reported gradient ratio.",
)
@click.option(
    "--epsilon",
    default=DEFAULT_EPSILON,
    show_default=True,
    type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
    help="Memory horizon threshold, relative to the lag-0 gradient.",
)
@click.option(
    "--recent",
    default=DEFAULT_RECENT,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many last steps the update and input shares count.",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Folder for the figures (PNG and SVG).")
@click.option("--json", "as_json", is_flag=True, help="Print every measured value as one JSON object.")
@model_options
def command(
    db_path: str,
    run_id: int | None,
    config_path: str | None,
    module_spec: str | None,
    data_path: str | None,
    loss: str | None,
    input_kind: str,
    batch_first: bool,
    train_first: bool,
    examples: int,
    lag: int,
    epsilon: float,
    recent: int,
    out_dir: str | None,
    as_json: bool,
    **settings: Any,
) -> None:
    """Measure the gradient profile, memory horizon, input contribution, update share, Jacobian chain and
    per-layer gradients on a fixed batch, and say in words whether the gradient vanishes."""
    overrides = given(settings)
    if run_id is not None and (config_path or overrides or module_spec):
        raise click.UsageError("--run takes no run settings, --config or --module: the run's own config is used")
    if _given_by_user("db_path") and run_id is None:
        raise click.UsageError("--db applies to --run only")
    if module_spec is not None and train_first:
        raise click.UsageError("--train applies to a config: --module diagnoses the module as its factory builds it")
    module_only = [
        name
        for name, given_ in (
            ("--batch-first", batch_first),
            ("--data", data_path),
            ("--input", _given_by_user("input_kind")),
        )
        if given_
    ]
    if module_only and module_spec is None:
        raise click.UsageError(f"{module_only[0]} applies to --module only")
    if loss is not None and data_path is None:
        raise click.UsageError("--loss applies to --data only (a task brings its own loss)")
    if data_path is not None and (config_path or overrides or _given_by_user("input_kind")):
        raise click.UsageError("--data replaces the task: run settings, --config and --input do not apply")
    if train_first and run_id is not None:
        raise click.UsageError("--train applies to a config; a saved run is already trained")
    out = writable_folder(out_dir, "--out") if out_dir else None
    report: dict[str, Any]
    source: dict[str, Any]
    pictures: dict[str, Any] = {}
    try:
        if module_spec is not None:
            module = module_from_factory(module_spec)
            if data_path is not None:
                data: Any = load_batch(data_path, loss, batch_first)
                source = {"source": "module", "data": data_path}
                subject = Path(data_path).name
            else:
                with as_flags(overrides):
                    data = make_task(check_device(config_from(config_path, settings)))
                source = {"source": "module", "task": data.describe()}
                subject = data.name
            result = diagnose_module(
                module,
                data,
                examples=examples,
                input_kind=input_kind,
                batch_first=batch_first,
                lag=lag,
                epsilon=epsilon,
                recent=recent,
                label=module_spec,
            )
            report = {**source, **result.to_dict()}
            pictures = _figures(result)
        else:
            history = None
            if run_id is not None:
                with Database(db_path, read_only=True) as db:
                    config, task, model = model_from_run(db, run_id, announce=_note)
                    history = training_history(db, run_id)
                source = {"source": "run", "run": run_id}
            else:
                config = config_from(config_path, settings)
                with as_flags(overrides):
                    check_device(config)
                    task = make_task(config)
                # The measurements run a batch of ``examples`` in float64: twice the bytes of a float32 batch.
                check_memory(config.model_copy(update={"batch_size": 2 * examples}), task)
                if train_first:
                    trainer = Trainer(config, task=task)
                    trainer.run()
                    model = trainer.model
                else:
                    model = make_model(config, task)
                source = {"source": "config", "trained": train_first}
            result = diagnose(
                model, task, examples=examples, lag=lag, epsilon=epsilon, recent=recent, label=config.label()
            )
            subject = task.name
            report = {**source, "task": task.describe(), "config": config.model_dump(), **result.to_dict()}
            pictures = _figures(result)
            if history is not None:
                report["history"] = history.to_dict()
                if history.steps:
                    pictures["history"] = figures.history_figure(history, config.label())
    except (SourceError, ShapeError, DataError) as error:
        raise click.UsageError(str(error)) from None
    written = _save(pictures, out) if out is not None else []
    report["figures"] = [str(p) for p in written]
    if as_json:
        click.echo(json.dumps(report, default=float))
        return
    show = console()
    label, on = escape(printable(str(report["label"]))), escape(printable(str(subject)))
    show.print(f"[bold]{label}[/bold] on {on} (T = {result.seq_len})", highlight=False)
    show.print(result.verdict(), highlight=False)
    if "history" in report:
        h = report["history"]
        show.print(
            f"training: {plural(h['steps_recorded'], 'step')}, {h['clipped_steps']} clipped, "
            f"{h['skipped_steps']} skipped, {plural(len(h['nan_events']), 'NaN event')}; "
            f"{plural(h['plateau_steps'], 'step')} within 5 % of the baseline "
            f"{h['baseline']:.4g}; target loss {h['target_loss']:.4g} "
            + (f"reached at step {h['steps_to_target']}" if h["steps_to_target"] is not None else "not reached"),
            highlight=False,
        )
    if written:
        show.print(f"figures: {out}/ ({plural(len(written), 'file')})", highlight=False)
