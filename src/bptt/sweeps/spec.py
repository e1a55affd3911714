"""Sweep specs: a YAML file that expands to a list of validated run configs.

A spec::

    name: remedies                 # names the sweep in the database and its checkpoint folder
    description: ...               # optional, free text
    base: {task: adding, steps: 2000, hidden_size: 64}   # settings shared by every run
    grid:                          # setting -> values; every combination is run
      activation: [sigmoid, tanh]
      seq_len: [10, 50, 100]
    variants:                      # optional: named settings applied together, crossed with the grid
      - {name: plain}
      - {name: xavier+clip, init: xavier, clip_norm: 1.0}
    include:                       # optional: extra single runs (base + entry), not crossed with the grid
      - {name: lstm, cell: lstm, seq_len: 100}
    seeds: [0, 1, 2]               # every run above once per seed
    ladder: ...                    # optional: climb a task's length per model (``bptt.sweeps.ladder``)

``grid`` may also be a list of such mappings: the union of their products (so
one sweep can vary ``delay`` for one task and ``seq_len`` for another). Later
layers win: base < variant < grid < seed < command-line overrides; a variant
and the grid may not set the same key.

Everything is validated before anything runs: unknown keys and bad values end
with one line naming the key (a ``SweepSpecError``, exit code 2 on the CLI).
Each expanded run is a ``RunConfig``; its ``identity()`` (every setting except
the schedule ones) names it, so a run is never planned twice.

A spec is counted before it is expanded: more than ``MAX_RUNS`` runs is
refused unless ``allow_large`` is given (``--allow-large``), and a ``--filter``
that keeps no run says so. For the backends that run here, ``check_devices_here``
refuses a spec with a run on a device this machine lacks, and ``check_memory_here``
one with a run too large for its free memory; a spec itself expands on any machine.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bptt import yamlfile
from bptt.build import make_task
from bptt.checks import brief
from bptt.config import ConfigError, RunConfig, build_config, check_device, load_yaml, unknown_setting
from bptt.sweeps.ladder import Ladder, Rung, parse_ladder
from bptt.tasks import Task, TaskError
from bptt.training import MemoryLimitError, check_memory

SPEC_KEYS = ("name", "description", "base", "grid", "variants", "include", "seeds", "ladder")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: A sweep's name becomes a folder and a lock file's name: at most this long.
MAX_NAME = 100
#: A variant's name goes into tables, the README and the terminal: one line of printable text, this long at most.
MAX_VARIANT_NAME = 100
#: The most runs a spec expands to without ``allow_large``.
MAX_RUNS = 10_000


class SweepSpecError(ConfigError):
    """A bad sweep spec: one line naming the key and what is allowed."""


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its config and, when it came from a named variant, that name; on a
    ladder, its rung (or ``timing``: the model's one timing run)."""

    config: RunConfig
    variant: str | None = None
    rung: Rung | None = None
    timing: bool = False

    @property
    def identity(self) -> str:
        return self.config.identity()


@dataclass(frozen=True)
class SweepSpec:
    name: str
    runs: tuple[PlannedRun, ...]
    description: str = ""
    source: str = ""
    ladder: Ladder | None = None


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line; the value is read as YAML (``1e-3``, ``true``, ``null``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SweepSpecError(f"expected KEY=VALUE, got {brief(text)}")
    try:
        return key.strip(), yamlfile.load(value)
    except yamlfile.YAMLRefused as error:
        raise SweepSpecError(f"--set: {brief(key.strip())}: {error}") from None
    except yaml.YAMLError:
        raise SweepSpecError(f"--set: malformed value in {brief(text)}") from None


def _check_settings(values: Any, where: str, source: str) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise SweepSpecError(f"sweep {source}: {where}: must be a mapping of run settings, got {type(values).__name__}")
    for key in values:
        if key not in RunConfig.model_fields:
            raise SweepSpecError(f"sweep {source}: {where}: {unknown_setting(key)}")
    return dict(values)


def _grids(data: dict[str, Any], source: str) -> list[tuple[str, dict[str, list[Any]]]]:
    grid = data.get("grid")
    if grid is None or grid == {} or grid == []:
        return []
    blocks = grid if isinstance(grid, list) else [grid]
    result = []
    for index, block in enumerate(blocks):
        where = f"grid[{index}]" if isinstance(grid, list) else "grid"
        block = _check_settings(block, where, source)
        for key, values in block.items():
            if key == "seed":
                raise SweepSpecError(f"sweep {source}: {where}.seed: list seeds under the top-level 'seeds' key")
            if not isinstance(values, list) or not values:
                raise SweepSpecError(
                    f"sweep {source}: {where}.{key}: must be a non-empty list of values, got {brief(values)}"
                )
        result.append((where, block))
    return result


def _named_entries(data: dict[str, Any], key: str, source: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    entries = data.get(key) or []
    if not isinstance(entries, list):
        raise SweepSpecError(f"sweep {source}: {key}: must be a list of mappings, got {type(entries).__name__}")
    result = []
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]"
        if not isinstance(entry, dict):
            raise SweepSpecError(f"sweep {source}: {where}: must be a mapping, got {type(entry).__name__}")
        entry = dict(entry)
        name = entry.pop("name", None)
        if name is not None and (
            not isinstance(name, str) or not name.isprintable() or not name.strip() or len(name) > MAX_VARIANT_NAME
        ):
            raise SweepSpecError(
                f"sweep {source}: {where}.name: must be one line of printable text, at most {MAX_VARIANT_NAME} "
                f"characters, got {brief(name)}"
            )
        if "seed" in entry:
            raise SweepSpecError(f"sweep {source}: {where}.seed: list seeds under the top-level 'seeds' key")
        result.append((where if name is None else f"{where} {name!r}", name, _check_settings(entry, where, source)))
    return result


def _seeds(data: dict[str, Any], base: dict[str, Any], source: str) -> list[int]:
    if "seeds" not in data:
        return [base.get("seed", 0)]
    seeds = data["seeds"]
    if "seed" in base:
        raise SweepSpecError(f"sweep {source}: base.seed: give either base.seed or seeds, not both")
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise SweepSpecError(f"sweep {source}: seeds: must be a non-empty list of integers >= 0, got {brief(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise SweepSpecError(f"sweep {source}: seeds: each seed once, got {brief(seeds)}")
    return seeds


def _matches(config: RunConfig, filters: dict[str, list[Any]]) -> bool:
    return all(getattr(config, key) in values for key, values in filters.items())


def expand_spec(
    data: dict[str, Any],
    source: str = "spec",
    *,
    overrides: dict[str, Any] | None = None,
    seeds: list[int] | None = None,
    filters: dict[str, list[Any]] | None = None,
    name: str | None = None,
    allow_large: bool = False,
    check_tasks: bool = True,
) -> SweepSpec:
    """The runs of a spec mapping, each validated; raises SweepSpecError naming the bad key.

    overrides: settings set on every run, last (``--set``); seeds: replaces the
    spec's seeds; filters: keep only runs whose setting is one of the values
    (``--filter``; an unset setting reads as None); name: replaces the spec's name;
    allow_large: expand a spec of more than ``MAX_RUNS`` runs; check_tasks: build each task once to
    check its settings (off for what trains nothing, e.g. ``reproduce --collect``: a task whose data
    needs an extra is then not built).
    """
    for key in data:
        if key not in SPEC_KEYS:
            raise SweepSpecError(f"sweep {source}: unknown key {brief(key)}; allowed: {', '.join(SPEC_KEYS)}")
    name = data.get("name") if name is None else name
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME:
        raise SweepSpecError(
            f"sweep {source}: name: required, letters, digits and _ . - only, at most {MAX_NAME} characters, "
            f"got {brief(name)}"
        )
    base = _check_settings(data.get("base") or {}, "base", source)
    grids = _grids(data, source)
    variants = _named_entries(data, "variants", source)
    includes = _named_entries(data, "include", source)
    seed_list = _seeds(data, base, source) if seeds is None else seeds
    overrides = _check_settings(overrides or {}, "--set", source)
    filters = _check_settings(filters or {}, "--filter", source)
    ladder = parse_ladder(data.get("ladder"), source, SweepSpecError)

    crossed = grids or variants or not includes
    products = sum(math.prod(len(values) for values in block.values()) for _, block in grids) if grids else 1
    planned = ((products * max(1, len(variants)) if crossed else 0) + len(includes)) * len(seed_list)
    if ladder is not None:
        planned *= max(len(task.seq_lens) for task in ladder.tasks.values())
    if planned > MAX_RUNS and not allow_large:
        raise SweepSpecError(
            f"sweep {source}: expands to {planned:,} runs, more than {MAX_RUNS:,}; "
            f"check the grid, or pass --allow-large to expand it anyway"
        )

    # (where, variant name, settings) for every combination, before seeds. The
    # product runs when a grid or variants are given, or when nothing else is.
    combos: list[tuple[str, str | None, dict[str, Any]]] = []
    if crossed:
        for grid_where, block in grids or [("", {})]:
            keys = list(block)
            for variant_where, variant, settings in variants or [("", None, {})]:
                shared = sorted(set(settings) & set(keys))
                if shared:
                    raise SweepSpecError(f"sweep {source}: {variant_where} and {grid_where} both set {shared[0]!r}")
                where = " ".join(w for w in (grid_where, variant_where) if w)
                for chosen in itertools.product(*(block[k] for k in keys)):
                    combos.append((where, variant, {**settings, **dict(zip(keys, chosen))}))
    combos += includes

    runs: list[PlannedRun] = []
    seen: set[str] = set()
    values_seen: dict[str, set[str]] = {key: set() for key in filters}
    baselines: dict[tuple[Any, ...], float] = {}
    models: dict[str, PlannedRun] = {}  # each ladder model's first run, filtered or not
    for where, variant, settings in combos:
        for seed in seed_list:
            shown = ", ".join(f"{k}={v}" for k, v in settings.items())
            label = f"{where or 'base'}{f' ({shown})' if shown else ''}"
            values = {**base, **settings, "seed": seed, **overrides}
            for rung_values in [values] if ladder is None else ladder.rungs(values, label, SweepSpecError):
                config = _build(rung_values, label, source)
                rung = None if ladder is None else ladder.rung(config, _baseline(config, baselines, source))
                if rung is not None:
                    config = _build({**rung_values, "target_loss": rung.stop}, label, source)
                    models.setdefault(rung.model, PlannedRun(config, variant, rung))
                for key in filters:
                    values_seen[key].add(repr(getattr(config, key)))
                if filters and not _matches(config, filters):
                    continue
                if config.identity() in seen:
                    continue
                seen.add(config.identity())
                runs.append(PlannedRun(config, variant, rung))
    if ladder is not None and ladder.timing:
        runs = _timing_runs(list(models.values()), ladder, filters, seen, source) + runs
    if filters and not runs:
        shown = "; ".join(f"{key} is one of {', '.join(sorted(values_seen[key]))}" for key in filters)
        raise SweepSpecError(f"sweep {source}: --filter keeps no run; in this sweep {shown}")
    if check_tasks:
        _check_tasks(runs, source)
    return SweepSpec(name, tuple(runs), str(data.get("description") or ""), source, ladder)


def _build(values: dict[str, Any], label: str, source: str) -> RunConfig:
    try:
        return build_config(values)
    except ConfigError as error:
        raise SweepSpecError(f"sweep {source}: {label}: {error}") from None


def _baseline(config: RunConfig, cache: dict[tuple[Any, ...], float], source: str) -> float:
    """The memoryless baseline of a run's task (a ladder's threshold may be a fraction of it)."""
    key = _task_key(config)
    if key not in cache:
        try:
            cache[key] = make_task(config.model_copy(update={"eval_size": 1})).baseline
        except TaskError as error:
            raise SweepSpecError(f"sweep {source}: run {config.label()} on {config.task}: {error}") from None
    return cache[key]


def _timing_runs(
    models: list[PlannedRun], ladder: Ladder, filters: dict[str, list[Any]], seen: set[str], source: str
) -> list[PlannedRun]:
    """One timing run per model on the timing task: its first run with the timing settings on top."""
    timing, result = ladder.timing, []
    for run in models:
        if run.config.task != timing["task"]:
            continue
        values = {**run.config.model_dump(), "target_loss": None, "target_metric": None, **timing}
        config = _build(values, f"ladder.timing for {run.variant or run.config.label()}", source)
        if config.identity() in seen:
            raise SweepSpecError(
                f"sweep {source}: ladder.timing: its run of {run.variant or run.config.label()} is a rung's run; "
                "set something that changes what is trained, e.g. a smaller eval_size"
            )
        if not filters or _matches(config, filters):
            seen.add(config.identity())
            result.append(PlannedRun(config, run.variant, None, timing=True))
    return result


def _task_key(c: RunConfig) -> tuple[Any, ...]:
    """What a run's task is built from: runs with the same key share it."""
    return (c.task, c.seq_len, c.delay, c.task_variant, c.data_dir, c.seed, json.dumps(c.task_options, sort_keys=True))


def _check_tasks(runs: list[PlannedRun], source: str) -> dict[tuple[Any, ...], Task]:
    """Build each distinct task once, so bad task settings (a seq_len too short) end here."""
    tasks: dict[tuple[Any, ...], Task] = {}
    for run in runs:
        c = run.config
        key = _task_key(c)
        if key in tasks:
            continue
        try:
            tasks[key] = make_task(c.model_copy(update={"eval_size": 1}))
        except TaskError as error:
            raise SweepSpecError(f"sweep {source}: run {c.label()} on {c.task}: {error}") from None
    return tasks


def check_devices_here(spec: SweepSpec) -> None:
    """Refuse the spec if one of its runs names a device this machine lacks (for runs trained here)."""
    for run in spec.runs:
        try:
            check_device(run.config)
        except ConfigError as error:
            raise SweepSpecError(
                f"sweep {spec.source}: run {run.config.label()} on {run.config.task} (identity {run.identity}): {error}",
                "device",
            ) from None


def check_memory_here(spec: SweepSpec) -> None:
    """Refuse the spec if one of its runs needs more memory than this machine has free (one run at a time)."""
    tasks = _check_tasks(list(spec.runs), spec.source)
    for run in spec.runs:
        try:
            check_memory(run.config, tasks[_task_key(run.config)])
        except MemoryLimitError as error:
            raise SweepSpecError(
                f"sweep {spec.source}: run {run.config.label()} on {run.config.task} (identity {run.identity}): {error}"
            ) from None


def load_spec(path: str | Path, **options: Any) -> SweepSpec:
    """A sweep spec from a YAML file, expanded and validated (see ``expand_spec`` for options)."""
    try:
        data = load_yaml(path)
    except ConfigError as error:
        raise SweepSpecError(str(error).replace("config:", "sweep:", 1)) from None
    return expand_spec(data, str(path), **options)
