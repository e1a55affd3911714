"""``bptt.watch`` records into TensorBoard, through the caller's ``torch.utils.tensorboard.SummaryWriter``.

Per record: every scalar of ``WatchRecord.scalars`` (horizon, update share, ratios at the
chosen lags, gradient norm), the profile as a figure, and the profile as a histogram over
lag (bucket k holds the top layer's ||dL/dh|| at lag k, so TensorBoard's histogram view
shows how the gradient is spread over the lags, step after step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from bptt.watcher import WatchRecord


class TensorBoardSink:
    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def __call__(self, record: WatchRecord) -> None:
        for name, value in record.scalars().items():
            self.writer.add_scalar(name, value, record.step)
        fig = record.figure()
        prefix = f"bptt/{record.layer or 'model'}"
        self.writer.add_figure(f"{prefix}/profile", fig, record.step)
        top = torch.nan_to_num(record.profile[-1], nan=0.0, posinf=0.0).double()
        lags = torch.arange(len(top), dtype=torch.float64)
        self.writer.add_histogram_raw(
            f"{prefix}/profile_by_lag",
            min=0.0,
            max=float(len(top) - 1),
            num=float(top.sum()),
            sum=float((lags * top).sum()),
            sum_squares=float((lags**2 * top).sum()),
            bucket_limits=(lags + 0.5).tolist(),
            bucket_counts=top.tolist(),
            global_step=record.step,
        )
        self.writer.flush()
