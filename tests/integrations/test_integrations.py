"""bptt.watch into the tools people already look at: real TensorBoard event files, a real MLflow file
store and a real Lightning Trainer, each read back."""

import importlib
import sys

import pytest
import torch
from torch import nn

import bptt

tensorboard = pytest.importorskip("tensorboard")


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(2, 6)
        self.head = nn.Linear(6, 1)

    def forward(self, x):
        _, h = self.rnn(x)
        return self.head(h[-1]).squeeze(-1)


def _train(model, steps=4):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x, y = torch.randn(12, 8, 2, generator=gen), torch.randn(8, generator=gen)
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()


def test_tensorboard_event_files_hold_scalars_figure_and_histogram(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(tmp_path)
    model = Regressor()
    watch = bptt.watch(model, every=2, lags=(3,), to=writer)
    _train(model)
    records = watch.close()
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert "bptt/rnn/horizon_l0" in tags["scalars"] and "bptt/rnn/ratio_lag3" in tags["scalars"]
    ratio = events.Scalars("bptt/rnn/ratio_lag3")
    assert [e.step for e in ratio] == [2, 4]
    assert ratio[-1].value == pytest.approx(records[-1].ratios[3], rel=1e-6)
    assert "bptt/rnn/profile" in tags["images"]
    (histogram,) = [h for h in events.Histograms("bptt/rnn/profile_by_lag") if h.step == 4]
    assert histogram.histogram_value.bucket == pytest.approx(records[-1].profile[-1].tolist(), rel=1e-6)


def test_mlflow_run_holds_metrics_and_the_figure(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a local file store, read back below
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    model = Regressor()
    with mlflow.start_run() as run:
        watch = bptt.watch(model, every=2, to="mlflow")
        _train(model)
        records = watch.close()
    client = mlflow.tracking.MlflowClient()
    history = client.get_metric_history(run.info.run_id, "bptt.rnn.horizon_l0")
    assert [m.step for m in history] == [2, 4] and history[-1].value == records[-1].horizon[0]
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "bptt")]
    assert artifacts == ["bptt/rnn_profile_step2.png", "bptt/rnn_profile_step4.png"]


@pytest.mark.slow
def test_a_lightning_trainer_fit_logs_the_profile(tmp_path):
    lightning = pytest.importorskip("lightning")
    from bptt.integrations.lightning import GradientProfile

    class Module(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = Regressor()

        def training_step(self, batch, index):
            x, y = batch
            return nn.functional.mse_loss(self.model(x.transpose(0, 1)), y)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    data = torch.utils.data.TensorDataset(torch.randn(48, 12, 2), torch.randn(48))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    callback = GradientProfile(every=2)
    logger = lightning.pytorch.loggers.CSVLogger(tmp_path)
    trainer = lightning.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=logger,
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(Module(), loader)
    assert [r.step for r in callback.watch.records] == [2, 4, 6]
    logged = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "bptt/model.rnn/horizon_l0" in logged.splitlines()[0]


def test_a_missing_extra_is_one_line_naming_it(monkeypatch):
    from bptt.integrations import MissingExtra

    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(MissingExtra, match=r"mlflow is not installed; pip install 'bptt\[mlflow\]'"):
        bptt.watch(Regressor(), to="mlflow")
    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.delitem(sys.modules, "bptt.integrations.lightning", raising=False)
    with pytest.raises(MissingExtra, match=r"pip install 'bptt\[lightning\]'"):
        importlib.import_module("bptt.integrations.lightning")
