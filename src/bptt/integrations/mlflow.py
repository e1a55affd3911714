"""``bptt.watch`` records into MLflow: the scalars as metrics of the active run (at the record's
step) and the profile figure as an artifact, ``bptt/<layer>_profile_step<N>.png``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bptt.integrations import missing

if TYPE_CHECKING:
    from bptt.watcher import WatchRecord


class MLflowSink:
    def __init__(self) -> None:
        try:
            import mlflow  # optional: the mlflow extra
        except ImportError:
            raise missing("mlflow", "mlflow") from None
        self.mlflow = mlflow

    def __call__(self, record: WatchRecord) -> None:
        metrics = {name.replace("/", "."): value for name, value in record.scalars().items()}
        self.mlflow.log_metrics(metrics, step=record.step)
        fig = record.figure()
        self.mlflow.log_figure(fig, f"bptt/{record.layer or 'model'}_profile_step{record.step}.png")
