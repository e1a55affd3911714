"""Runs as a flat table (one row per run) for CSV or Parquet: the run's row, its settings, its final summary.

Times (``created_at``, ``finished_at``) are ISO 8601 text in UTC, e.g. ``2025-01-31T09:30:00+00:00``; the
database keeps them as seconds since the epoch.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bptt.config import RunConfig
from bptt.files import write_bytes
from bptt.store.database import Database
from bptt.store.records import RunSummary

RUN_COLUMNS = (
    "id",
    "sweep",
    "identity",
    "label",
    "task",
    "status",
    "reason",
    "steps_done",
    "train_seconds",
    "created_at",
    "finished_at",
)
#: The run columns that hold a time (seconds since the epoch in the database).
TIME_COLUMNS = ("created_at", "finished_at")
FINAL_COLUMNS = (
    "seq_len",
    "test_loss",
    "test_metric",
    "val_loss",
    "val_metric",
    "metric",
    "baseline",
    "chance_metric",
    "solved",
    "skipped_steps",
    "clipped_steps",
    "steps_per_second",
    "resumed_from",
)


def run_records(db_path: str | Path, sweep: str | None = None) -> list[dict[str, Any]]:
    """One dict per run: run columns, then every RunConfig setting, then ``final_*`` summary fields."""
    records = []
    with Database(db_path, read_only=True) as db:
        for row in db.runs(sweep=sweep):
            record: dict[str, Any] = {name: getattr(row, name) for name in RUN_COLUMNS}
            record.update({name: iso_time(record[name]) for name in TIME_COLUMNS})
            record.update(
                {f"config_{name}": _flat(row.config.get(name)) for name in RunConfig.model_fields if name != "task"}
            )
            final = row.final or RunSummary()
            record.update({f"final_{name}": _flat(getattr(final, name)) for name in FINAL_COLUMNS})
            records.append(record)
    return records


def iso_time(seconds: float | None) -> str | None:
    """Seconds since the epoch as ISO 8601 text in UTC (None stays None: a run not finished)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="seconds")


def _flat(value: Any) -> Any:
    """Scalars as they are; mappings and lists (``task_options``) as JSON text, so every column is flat."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def columns() -> list[str]:
    return [
        *RUN_COLUMNS,
        *(f"config_{n}" for n in RunConfig.model_fields if n != "task"),
        *(f"final_{n}" for n in FINAL_COLUMNS),
    ]


def export_runs(db_path: str | Path, output: str | Path, sweep: str | None = None) -> int:
    """Write the runs to ``output`` (.csv, or .parquet with pyarrow); return how many."""
    output = Path(output)
    records = run_records(db_path, sweep)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".parquet":
        # pyarrow is optional (the parquet extra): imported only when a Parquet file is asked for.
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(records) if records else pa.table({c: pa.array([], pa.null()) for c in columns()})
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        write_bytes(output, buffer.getvalue())
    else:
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns())
        writer.writeheader()
        writer.writerows(records)
        write_bytes(output, text.getvalue().encode("utf-8"))
    return len(records)
