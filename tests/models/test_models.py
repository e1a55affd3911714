"""The sequence model: encoders, readouts, padding."""

import pytest
import torch

from bptt.config import build_config
from bptt.models import SequenceModel
from bptt.models.readout import last_state, mean_state
from bptt.tasks import TaskSettings, build_task


def _model(task_name="adding", **values):
    config = build_config({"task": task_name, "hidden_size": 6, **values})
    task = build_task(task_name, TaskSettings(seq_len=12, eval_size=8))
    return SequenceModel(config, task), task


@pytest.mark.parametrize("readout", ["last", "mean", "attention"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_padding_after_the_end_changes_nothing(readout, cell):
    model, _ = _model(readout=readout, cell=cell)
    model.eval()
    lengths = torch.tensor([5, 9, 3])
    inputs = torch.randn(9, 3, 2)
    padded = inputs.clone()
    for b, n in enumerate(lengths):
        padded[n:, b] = 100.0  # garbage in the padding
    together = model(padded, lengths)
    for b, n in enumerate(lengths):
        alone = model(inputs[:n, b : b + 1])
        torch.testing.assert_close(together[b : b + 1], alone)


def test_readout_helpers():
    output = torch.arange(12.0).view(4, 3, 1)
    lengths = torch.tensor([1, 4, 2])
    assert last_state(output, lengths).flatten().tolist() == [0.0, 10.0, 5.0]
    assert mean_state(output, lengths).flatten().tolist() == [0.0, 5.5, 3.5]


def test_per_step_task_gets_a_prediction_per_step():
    model, task = _model("copy")
    batch = task.eval_set("test")
    assert model(batch.inputs).shape == (*batch.targets.shape, 10)


def test_token_task_embeds_its_inputs():
    config = build_config({"task": "sentiment", "hidden_size": 6, "embedding_size": 5})
    task = build_task("sentiment", TaskSettings(delay=2, eval_size=4))
    model = SequenceModel(config, task)
    assert isinstance(model.encoder, torch.nn.Embedding) and model.encoder.embedding_dim == 5
    assert model(task.eval_set("test").inputs).shape == (4, 2)


def test_attention_weights_sum_to_one_over_real_steps():
    model, _ = _model(readout="attention")
    model(torch.randn(7, 2, 2), torch.tensor([7, 4]))
    weights = model.attention.last_weights
    torch.testing.assert_close(weights.sum(0), torch.ones(2))
    assert torch.all(weights[4:, 1] == 0)
