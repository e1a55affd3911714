"""bptt.watch: the gradient profile recorded inside the caller's own training loop."""

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import bptt
from bptt.diagnostics import memory_horizon


class Tagger(nn.Module):
    def __init__(self, bidirectional=False):
        super().__init__()
        self.embed = nn.Embedding(12, 5)
        self.rnn = nn.LSTM(5, 7, 2, bidirectional=bidirectional)
        self.out = nn.Linear(7 * (2 if bidirectional else 1), 3)

    def forward(self, tokens, lengths=None):
        x = self.embed(tokens)
        if lengths is not None:
            x = pack_padded_sequence(x, lengths, enforce_sorted=False)
        _, (h, _) = self.rnn(x)
        return self.out(torch.cat(list(h[-2:]), -1) if self.rnn.bidirectional else h[-1])


def _batches(count, steps=9, batch=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randint(0, 12, (steps, batch), generator=gen), torch.randint(0, 3, (batch,), generator=gen))
        for _ in range(count)
    ]


def _loss(model, tokens, labels, lengths=None):
    return nn.functional.cross_entropy(model(tokens, lengths), labels)


def test_records_every_nth_backward_as_an_explicit_measurement_would():
    torch.manual_seed(0)
    model = Tagger()
    seen = []
    watch = bptt.watch(model, every=2, lags=(1, 5), recent=3, to=seen.append)
    assert isinstance(model.rnn, bptt.LSTM)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    snapshots = {}
    for step, (tokens, labels) in enumerate(_batches(5), start=1):
        snapshots[step] = copy.deepcopy(model)
        for module in snapshots[step].modules():  # the copy would carry the watch's hook
            module._forward_pre_hooks.clear()
        optimizer.zero_grad()
        _loss(model, tokens, labels).backward()
        optimizer.step()
        with torch.no_grad():  # an evaluation forward: not counted
            model(tokens)
    records = watch.close()
    assert [r.step for r in records] == [2, 4] and seen == records
    for record, (tokens, labels) in zip(records, [_batches(5)[1], _batches(5)[3]]):
        twin = snapshots[record.step]
        with bptt.record_gradients(twin, updates=True) as rec:
            _loss(twin, tokens, labels).backward()
        torch.testing.assert_close(record.profile, rec.by_lag().double())
        assert record.horizon == [memory_horizon(row, 1e-3) for row in rec.by_lag()]
        top = rec.by_lag()[-1]
        assert record.ratios[5] == pytest.approx(float(top[5] / top[0]))
        terms = rec.update_terms()[-1]
        assert record.update_share[-1] == pytest.approx(float(terms[-3:].sum() / terms.sum()))
        norm = math.sqrt(sum(float(p.grad.double().norm()) ** 2 for p in twin.parameters() if p.grad is not None))
        assert record.grad_norm == pytest.approx(norm)
        assert record.scalars()["bptt/rnn/ratio_lag5"] == record.ratios[5]


def test_bidirectional_packed_model_gets_a_profile_per_direction_and_displays():
    model = Tagger(bidirectional=True)
    watch = bptt.watch(model, every=1)
    tokens, labels = _batches(1)[0]
    _loss(model, tokens, labels, torch.tensor([9, 4, 7, 2])).backward()
    (record,) = watch.flush()
    assert record.reverse is not None and record.reverse.shape == record.profile.shape == (2, 9)
    assert record.horizon_reverse is not None
    html = watch._repr_html_()
    assert "<svg" in html and "bptt/rnn/horizon_l0" in html
    frame = watch.frame()
    assert list(frame["step"]) == [1] and "bptt/rnn/horizon_reverse_l1" in frame.columns


def test_watch_needs_a_recurrent_layer_and_valid_settings():
    with pytest.raises(TypeError, match="needs a recurrent layer"):
        bptt.watch(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="every"):
        bptt.watch(Tagger(), every=0)
    with pytest.raises(ValueError, match="unknown logging target"):
        bptt.watch(Tagger(), to="wandb")


def test_a_lag_past_the_sequence_is_not_logged_as_the_last_lag():
    class Last(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(3, 8)

        def forward(self, x):
            return self.rnn(x)[0][-1]

    model = Last()
    watch = bptt.watch(model, every=1)  # lags 10 and 50 by default
    with pytest.warns(UserWarning, match="a 40-step sequence reaches lag 39 at most; ratio_lag50 not logged"):
        model(torch.randn(40, 4, 3)).pow(2).sum().backward()
        (record,) = watch.flush()
    assert list(record.ratios) == [10]
    assert "bptt/rnn/ratio_lag10" in record.scalars() and "bptt/rnn/ratio_lag50" not in record.scalars()
