"""Laying a database's rows over a results CSV's: nothing shipped is lost when a database lacks a run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bptt.report.results import NOT_RUN, ResultRow

RowKey = tuple[str, str, int | None, str, int]


def row_key(row: ResultRow) -> RowKey:
    """What a CSV row stands for: one seed of one model at one task, variant and length."""
    return (row.task, row.variant, row.seq_len, row.model, row.seed)


def describe_key(key: RowKey) -> str:
    task, variant, seq_len, model, seed = key
    return f"{task}{'' if variant == 'default' else f' ({variant})'} T={seq_len or '-'} {model} seed {seed}"


@dataclass(frozen=True)
class Merged:
    """``rows``: the CSV to write; ``replaced``: keys of earlier rows the database's rows changed;
    ``kept``: keys of earlier rows the database does not hold, kept as they were."""

    rows: list[ResultRow]
    replaced: list[RowKey]
    kept: list[RowKey]


def _over(fresh: list[ResultRow], earlier: list[ResultRow]) -> list[ResultRow]:
    """The fresh rows of one key, each "not run" row (a planned run the database does not hold) giving
    way to an earlier row of the same role that ran: a database that lacks a run never erases it, nor does
    one whose rerun of it is still running (the earlier result stays until the rerun ends). An
    earlier row "running" holds no result, and the sweep's database no longer holds its run: the plan's
    row takes its place."""
    ran = {row.role: row for row in earlier if row.status not in (NOT_RUN, "running")}
    return [ran.get(row.role, row) if row.status in (NOT_RUN, "running") else row for row in fresh]


def _lengths_found(rows: Sequence[ResultRow]):
    """``row_key`` where a row without a length (a planned run of a task whose length its data sets, e.g.
    mnist5k's 784, which only a run records) takes the key of the one row of its model, seed and task
    that has one."""
    lengths: dict[RowKey, set[int]] = {}
    for row in rows:
        if row.seq_len is not None:
            lengths.setdefault(row_key(replace(row, seq_len=None)), set()).add(row.seq_len)

    def key_of(row: ResultRow) -> RowKey:
        found = lengths.get(row_key(row), set()) if row.seq_len is None else set()
        return row_key(replace(row, seq_len=next(iter(found)))) if len(found) == 1 else row_key(row)

    return key_of


def merge_rows(earlier: Sequence[ResultRow], fresh: Sequence[ResultRow]) -> Merged:
    """``fresh`` (a database's rows, in its spec's order) laid over ``earlier`` (the CSV's): the fresh rows
    of a key (``row_key``) take the place of the earlier rows of that key; an earlier row that no fresh
    one replaces is kept in its place; a fresh row of a new key follows the fresh row before it."""
    key_of = _lengths_found([*earlier, *fresh])
    by_key: dict[RowKey, list[ResultRow]] = {}
    for row in fresh:
        by_key.setdefault(key_of(row), []).append(row)
    earlier_by_key: dict[RowKey, list[ResultRow]] = {}
    for row in earlier:
        earlier_by_key.setdefault(key_of(row), []).append(row)
    inserts: dict[RowKey | None, list[ResultRow]] = {}
    anchor: RowKey | None = None
    for row in fresh:
        key = key_of(row)
        if key in earlier_by_key:
            anchor = key
        else:
            inserts.setdefault(anchor, []).append(row)
    merged = list(inserts.get(None, []))
    replaced: list[RowKey] = []
    kept: list[RowKey] = []
    for key, rows in earlier_by_key.items():
        if key in by_key:
            laid = _over(by_key[key], rows)
            merged += laid
            if any(row.status != NOT_RUN and row not in rows for row in laid):  # a plan's new note is no result
                replaced.append(key)
            elif any(row is not plan for row, plan in zip(laid, by_key[key])):  # a run only the CSV holds
                kept.append(key)
        else:
            merged += rows
            kept.append(key)
        merged += inserts.get(key, [])
    return Merged(merged, replaced, kept)
