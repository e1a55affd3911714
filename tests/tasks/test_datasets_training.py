"""Dataset tasks with the sequence model: padding is invisible to it, and digits is learnable."""

from __future__ import annotations

import pytest
import torch

from bptt.config import RunConfig
from bptt.models import SequenceModel
from bptt.tasks import build_task
from bptt.training.loop import Trainer


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("readout", ["last", "mean", "attention"])
def test_padding_does_not_change_the_output(cell, readout):
    pytest.importorskip("sktime")
    task = build_task("ucr:JapaneseVowels")  # 12 channels, lengths 7-29
    batch = task.train_batch(6, torch.Generator().manual_seed(0))
    assert batch.lengths is not None and len(set(batch.lengths.tolist())) > 1
    torch.manual_seed(0)
    model = SequenceModel(RunConfig(task=task.name, cell=cell, hidden_size=8, readout=readout), task).double()
    padded = model(batch.inputs.double(), batch.lengths)
    for b in range(batch.size):
        alone = batch.inputs[: batch.lengths[b], b : b + 1].double()  # (L_b, 1, 12), no padding
        torch.testing.assert_close(padded[b : b + 1], model(alone))


def test_short_training_on_digits_beats_chance():
    config = RunConfig(
        task="digits",
        cell="gru",
        hidden_size=32,
        lr=1e-2,
        batch_size=64,
        steps=150,
        eval_every=150,
        checkpoint_every=150,
        progress=False,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: extra threads only contend on a shared machine
    try:
        result = Trainer(config).run()
    finally:
        torch.set_num_threads(threads)
    assert result.status == "finished"
    # chance is about 0.10; a model that ignored the pixels could not pass 0.3
    assert result.final.test_metric > 0.3
