"""``bptt.watch`` as a PyTorch Lightning callback::

    from bptt.integrations.lightning import GradientProfile
    trainer = lightning.Trainer(callbacks=[GradientProfile(every=100)])

At the start of fitting it watches the LightningModule (its torch.nn recurrent
layers become bptt's, same weights); each record's scalars go to the trainer's
logger (``log_metrics`` at the record's step) and, when the logger is
TensorBoard's, the profile figure and histogram too. ``callback.watch.records``
holds every record.
"""

from __future__ import annotations

from typing import Any

from bptt.integrations import missing

try:
    import lightning
except ImportError:
    raise missing("lightning", "lightning") from None

from bptt.integrations.tensorboard import TensorBoardSink
from bptt.watcher import Watch, WatchRecord


class GradientProfile(lightning.pytorch.Callback):
    """Record the per-step gradient profile every ``every`` training steps (options as ``bptt.watch``)."""

    def __init__(self, every: int = 100, **options: Any) -> None:
        super().__init__()
        self.every = every
        self.options = options
        self.watch: Watch | None = None
        self._trainer: Any = None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit" and self.watch is None:
            self._trainer = trainer
            self.watch = Watch(pl_module, self.every, to=self._log, **self.options)

    def _log(self, record: WatchRecord) -> None:
        for logger in self._trainer.loggers:
            logger.log_metrics(record.scalars(), step=record.step)
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_figure") and hasattr(experiment, "add_histogram_raw"):
                TensorBoardSink(experiment)(record)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.watch is not None:
            self.watch.flush()

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.watch is not None and stage == "fit":
            self.watch.close()
