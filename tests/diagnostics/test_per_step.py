"""A task that scores every step (copy) is diagnosed on its last step's loss alone.

With the loss of every step, each step's own term puts gradient on its own hidden state, so the
profile stays near 1 at every lag whatever the cell carries; the last step's loss shows what
reaches back. Checked against a plain torch.nn.LSTMCell loop with the same weights.
"""

import torch
import torch.nn.functional as F
from torch import nn

from bptt.build import make_model, make_task
from bptt.config import build_config
from bptt.diagnostics import diagnose, diagnose_module, fixed_batch

T, HIDDEN, EXAMPLES = 30, 12, 16


class Copier(nn.Module):
    def __init__(self, batch_first: bool = False) -> None:
        super().__init__()
        self.rnn = nn.LSTM(10, HIDDEN, batch_first=batch_first)
        self.out = nn.Linear(HIDDEN, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(x)[0])


def _copy_task():
    return make_task(build_config({"task": "copy", "seq_len": T, "eval_size": EXAMPLES}))


def _reference_profile(model: Copier, inputs: torch.Tensor, targets: torch.Tensor, last_only: bool) -> torch.Tensor:
    """Batch-mean ||dL/dh_t||, by lag, from a step loop of nn.LSTMCell in float64."""
    cell = nn.LSTMCell(10, HIDDEN).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(model.rnn, f"{name}_l0"))
    out = nn.Linear(HIDDEN, 10).double()
    out.load_state_dict(model.out.state_dict())
    h = torch.zeros(inputs.shape[1], HIDDEN, dtype=torch.float64)
    c = torch.zeros_like(h)
    states = []
    for x in inputs.double():
        h, c = cell(x, (h, c))
        h.retain_grad()
        states.append(h)
    logits = torch.stack([out(s) for s in states])
    if last_only:
        loss = F.cross_entropy(logits[-1], targets[-1])
    else:
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    loss.backward()
    return torch.stack([s.grad.norm(dim=1).mean() for s in states]).flip(0)


def test_copy_is_diagnosed_on_its_last_step_loss_and_matches_a_plain_loop():
    task = _copy_task()
    torch.manual_seed(0)
    model = Copier()
    batch = fixed_batch(task, EXAMPLES)
    found = diagnose_module(model, task, examples=EXAMPLES, lag=20)
    last = _reference_profile(model, batch.inputs, batch.targets, last_only=True)
    every = _reference_profile(model, batch.inputs, batch.targets, last_only=False)
    torch.testing.assert_close(found.profile.hidden[0], last, rtol=1e-9, atol=0)
    assert found.last_step and found.to_dict()["last_step"] is True
    with torch.no_grad():
        logits = model.double()(batch.inputs.double())
    assert abs(found.loss - float(F.cross_entropy(logits[-1], batch.targets[-1]))) < 1e-9
    # every step's loss would hide the decay: its profile at lag 20 is a sizeable share of lag 0
    assert float(every[20] / every[0]) > 0.1 > 1e3 * found.gradient_ratio
    assert found.verdict().startswith("vanishing: dL/dh at lag 20 is")
    assert "of the loss at the last step alone" in found.verdict()


def test_a_batch_first_module_and_a_bptt_model_are_measured_on_the_last_step_too():
    task = _copy_task()
    torch.manual_seed(0)
    time_first = Copier()
    torch.manual_seed(0)
    batch_first = Copier(batch_first=True)
    a = diagnose_module(time_first, task, examples=EXAMPLES)
    b = diagnose_module(batch_first, task, examples=EXAMPLES, batch_first=True)
    torch.testing.assert_close(a.profile.hidden, b.profile.hidden)
    config = build_config({"task": "copy", "seq_len": T, "eval_size": EXAMPLES, "cell": "lstm", "hidden_size": 8})
    torch.manual_seed(0)
    model = make_model(config, task)
    ours = diagnose(model, task, examples=EXAMPLES)
    assert ours.last_step and "of the loss at the last step alone" in ours.verdict()
    batch = fixed_batch(task, EXAMPLES)
    with torch.no_grad():
        logits = model.double()(batch.inputs.double())
    assert abs(ours.loss - float(F.cross_entropy(logits[-1], batch.targets[-1]))) < 1e-9


def test_a_module_without_a_recurrent_layer_keeps_the_whole_loss():
    class Local(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.out = nn.Linear(10, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(x)

    task = _copy_task()
    torch.manual_seed(0)
    module = Local()
    found = diagnose_module(module, task, examples=EXAMPLES)
    batch = fixed_batch(task, EXAMPLES)
    with torch.no_grad():
        logits = module.double()(batch.inputs.double())
    assert abs(found.loss - float(F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten()))) < 1e-9


def test_a_sequence_to_one_task_keeps_its_whole_loss():
    config = build_config({"task": "adding", "seq_len": T, "eval_size": EXAMPLES, "cell": "lstm", "hidden_size": 8})
    task = make_task(config)
    found = diagnose(make_model(config, task), task, examples=EXAMPLES)
    assert not found.last_step and "last step alone" not in found.verdict()
    assert found.to_dict()["last_step"] is False
