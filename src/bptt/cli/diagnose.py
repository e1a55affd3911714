"""`bptt diagnose`: measure the vanishing gradient of a saved run, a config, or your own module.

    bptt diagnose --db bptt.db --run 3 --out diag/          # a trained run, from its checkpoint
    bptt diagnose --task sentiment --delay 50 --activation sigmoid --out diag/   # a config, at initialisation
    bptt diagnose --config run.yaml --train                 # train the config first, then measure
    bptt diagnose --module my_model.py:build --task adding --seq-len 100     # any torch.nn.Module

Prints the verdict; ``--json`` prints every measured value instead. Figures go
to ``--out`` as PNG and SVG.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import matplotlib.pyplot as plt
from click.core import ParameterSource

from bptt.build import make_model, make_task
from bptt.cli.options import FiniteFloatRange, given, run_options
from bptt.cli.output import console
from bptt.cli.paths import writable_folder
from bptt.config import load_config
from bptt.diagnostics import (
    DEFAULT_EPSILON,
    DEFAULT_EXAMPLES,
    DEFAULT_LAG,
    DEFAULT_RECENT,
    diagnose,
    diagnose_module,
    figures,
    training_history,
)
from bptt.loading import SourceError, model_from_run, module_from_factory
from bptt.report.html import save_figure
from bptt.store import Database
from bptt.training import Trainer, check_memory


def _save(pictures: dict[str, Any], out: Path) -> list[Path]:
    written = []
    for name, fig in pictures.items():
        written.extend(save_figure(fig, out / name))
        plt.close(fig)
    return written


def _given_by_user(*names: str) -> list[str]:
    """Which of these options the user set on the command line (not left at their defaults)."""
    context = click.get_current_context()
    return [name for name in names if context.get_parameter_source(name) != ParameterSource.DEFAULT]


@click.command("diagnose")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="Results database of the run (with --run).")
@click.option("--run", "run_id", type=int, help="Id of a saved run to diagnose (see `bptt runs`).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML file of run settings.")
@click.option("--module", "module_spec", metavar="FILE.py:FACTORY",
              help="Diagnose your own torch.nn.Module: FACTORY() returns a module mapping (T, B, I) to predictions "
                   "(token tasks are fed one-hot). Input contribution only.")
@click.option("--batch-first", is_flag=True, help="With --module: the module takes (B, T, I).")
@click.option("--train", "train_first", is_flag=True, help="With a config: train it first (no database), then measure.")
@click.option("--examples", default=DEFAULT_EXAMPLES, show_default=True, type=click.IntRange(min=1),
              help="Examples in the fixed batch the quantities are measured on.")
@click.option("--lag", default=DEFAULT_LAG, show_default=True, type=click.IntRange(min=1),
              help="Lag of the reported gradient ratio.")
@click.option("--epsilon", default=DEFAULT_EPSILON, show_default=True,
              type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
              help="Memory horizon threshold, relative to the lag-0 gradient.")
@click.option("--recent", default=DEFAULT_RECENT, show_default=True, type=click.IntRange(min=1),
              help="How many last steps the update and input shares count.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Folder for the figures (PNG and SVG).")
@click.option("--json", "as_json", is_flag=True, help="Print every measured value as one JSON object.")
@run_options
def command(db_path: str | None, run_id: int | None, config_path: str | None, module_spec: str | None,
            batch_first: bool, train_first: bool, examples: int, lag: int, epsilon: float, recent: int,
            out_dir: str | None, as_json: bool, **settings: Any) -> None:
    """Measure the gradient profile, memory horizon, input contribution, update share, Jacobian chain and
    per-layer gradients on a fixed batch, and say in words whether the gradient vanishes."""
    overrides = given(settings)
    if run_id is not None and (config_path or overrides or module_spec):
        raise click.UsageError("--run takes no run settings, --config or --module: the run's own config is used")
    if (db_path is None) != (run_id is None):
        raise click.UsageError("--db and --run go together")
    if module_spec is not None and (train_first or _given_by_user("lag", "epsilon")):
        raise click.UsageError("--module measures input contribution only: --train, --lag and --epsilon do not apply")
    if batch_first and module_spec is None:
        raise click.UsageError("--batch-first applies to --module only")
    if train_first and run_id is not None:
        raise click.UsageError("--train applies to a config; a saved run is already trained")
    out = writable_folder(out_dir, "--out") if out_dir else None
    report: dict[str, Any]
    pictures: dict[str, Any] = {}
    try:
        if module_spec is not None:
            config = load_config(config_path, **overrides)
            task = make_task(config)
            module = module_from_factory(module_spec)
            result = diagnose_module(module, task, batch_first=batch_first, examples=examples, recent=recent,
                                     label=module_spec)
            report = {"source": "module", "task": task.describe(), **result.to_dict()}
            pictures["contribution"] = figures.contribution_figure({result.label: result})
        else:
            history = None
            if run_id is not None:
                with Database(db_path, read_only=True) as db:
                    config, task, model = model_from_run(db, run_id)
                    history = training_history(db, run_id)
                source = {"source": "run", "run": run_id}
            else:
                config = load_config(config_path, **overrides)
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
            result = diagnose(model, task, examples=examples, lag=lag, epsilon=epsilon, recent=recent,
                              label=config.label())
            report = {**source, "task": task.describe(), "config": config.model_dump(), **result.to_dict()}
            named = {result.label: result}
            pictures = {"profile": figures.profile_figure(named), "contribution": figures.contribution_figure(named),
                        "updates": figures.update_figure(named), "jacobian": figures.jacobian_figure(named),
                        "layers": figures.layers_figure(named)}
            if history is not None:
                report["history"] = history.to_dict()
                if history.steps:
                    pictures["history"] = figures.history_figure(history, config.label())
    except SourceError as error:
        raise click.UsageError(str(error)) from None
    written = _save(pictures, out) if out is not None else []
    if not written:
        for fig in pictures.values():
            plt.close(fig)
    report["figures"] = [str(p) for p in written]
    if as_json:
        click.echo(json.dumps(report, default=float))
        return
    show = console()
    show.print(f"[bold]{report['label']}[/bold] on {task.name} (T = {result.seq_len})", highlight=False)
    show.print(result.verdict(), highlight=False)
    if "history" in report:
        h = report["history"]
        show.print(f"training: {h['steps_recorded']} steps, {h['clipped_steps']} clipped, "
                   f"{h['skipped_steps']} skipped, "
                   f"{len(h['nan_events'])} NaN events; {h['plateau_steps']} steps within 5 % of the baseline "
                   f"{h['baseline']:.4g}; target loss {h['target_loss']:.4g} reached at step "
                   f"{h['steps_to_target'] if h['steps_to_target'] is not None else 'never'}", highlight=False)
    if written:
        show.print(f"figures: {out}/ ({len(written)} files)", highlight=False)
