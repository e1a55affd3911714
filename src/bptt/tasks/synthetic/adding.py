"""The adding problem: remember two marked numbers across the sequence and add them.

Inputs are time-major (T, B, 2): channel 0 holds the values, channel 1 the markers.
The target (B, 1) is read at each sequence's last step.
"""

from __future__ import annotations

import dataclasses

import torch

from bptt.tasks.base import TASKS, Batch, Task, TaskSettings, step_mask
from bptt.tasks.checks import check_generated, require_batch_size, seq_len_of

VARIANTS = ("default", "hochreiter", "tcn")
DEFAULT_SEQ_LEN = 100
#: Hochreiter & Schmidhuber put the first marker among the first ten steps.
HOCHREITER_FIRST_WINDOW = 10


@TASKS.register("adding")
class AddingTask(Task):
    r"""The adding problem, in three published variants (``settings.variant``).

    Positions are integer steps t = 0..T-1 with T = ``seq_len`` (default 100); the
    "first half" is the steps t < T/2, i.e. t in [0, ceil(T/2)).

    ``"default"`` (None means default; Le et al. 2015, Arjovsky et al. 2016, IndRNN,
    coRNN): channel 0 holds v_t ~ U[0, 1] i.i.d.; channel 1 holds exactly two 1s, at
    t1 uniform in [0, T/2) and t2 uniform in [T/2, T), zeros elsewhere. Target
    y = v_{t1} + v_{t2}. The best constant prediction is E[y] = 1 with MSE
    Var(y) = 2 * 1/12 = 1/6.

    ``"hochreiter"`` (Hochreiter & Schmidhuber 1997, experiment 4): each sequence has
    its own length T_b uniform in {T, ..., T + floor(T/10)} (so in [T, 1.1 T]); the
    batch is zero-padded after each end to the longest T_b and ``Batch.lengths``
    holds the T_b. Values v_t ~ U[-1, 1]. Marker t1 uniform in [0, 10); t2 uniform
    over the other steps of [0, T/2). Channel 1 is 1 at t1 and t2, -1 at the first
    and the last step (t = 0 and t = T_b - 1) unless marked there, 0 elsewhere. A
    value marked at t = 0 is set to 0 (the paper's rule for that rare case). Target
    y = 0.5 + (X1 + X2) / 4 with X_i = v_{t_i}. Needs ``seq_len >= 20`` so that the
    first ten steps lie in the first half. Baseline (the variance of y):
    (1/16) (E[X1^2] + E[X2^2]) = (1/48) (0.9 + 1 - 0.9 / (ceil(T/2) - 1)),
    since X1 is zeroed with probability 1/10 and X2 with probability 0.9/(ceil(T/2)-1).

    ``"tcn"`` (Bai, Kolter & Koltun 2018, the TCN benchmark code): as "default" but
    the two markers sit at two distinct steps drawn uniformly from [0, T). Baseline 1/6.

    Loss and metric: MSE (``metric_name`` "mse", lower is better); the memoryless
    baseline is the MSE of the best constant prediction.
    """

    name = "adding"
    # At T = 100, with the defaults, an LSTM leaves the 1/6 plateau after about 700 steps and a GRU
    # after about 250; 2000 steps leave room for a slower seed.
    recommended = {"steps": 2000}
    kind = "regression"
    input_kind = "dense"
    input_size = 2
    output_size = 1
    metric_name = "mse"
    higher_is_better = False

    def __init__(self, settings: TaskSettings) -> None:
        variant = check_generated(settings, self.name, variants=VARIANTS)
        minimum = 2 * HOCHREITER_FIRST_WINDOW if variant == "hochreiter" else 2
        seq_len = seq_len_of(settings, self.name, DEFAULT_SEQ_LEN, minimum, variant)
        super().__init__(dataclasses.replace(settings, seq_len=seq_len, variant=variant))

    @property
    def variant(self) -> str:
        assert self.settings.variant is not None
        return self.settings.variant

    @property
    def baseline(self) -> float:
        if self.variant == "hochreiter":
            half = (self.seq_len + 1) // 2
            return (0.9 + 1.0 - 0.9 / (half - 1)) / 48.0
        return 1.0 / 6.0

    def describe(self) -> dict:
        return {**super().describe(), "variant": self.variant}

    def sample(self, batch_size: int, gen: torch.Generator) -> Batch:
        batch_size = require_batch_size(batch_size)
        if self.variant == "hochreiter":
            return self._sample_hochreiter(batch_size, gen)
        steps, half = self.seq_len, (self.seq_len + 1) // 2
        values = torch.rand(steps, batch_size, generator=gen)  # (T, B)
        if self.variant == "default":
            first = torch.randint(0, half, (batch_size,), generator=gen)
            second = torch.randint(half, steps, (batch_size,), generator=gen)
        else:  # "tcn": two distinct steps anywhere
            first = torch.randint(0, steps, (batch_size,), generator=gen)
            second = torch.randint(0, steps - 1, (batch_size,), generator=gen)
            second = second + (second >= first).long()
        examples = torch.arange(batch_size)
        markers = torch.zeros(steps, batch_size)
        markers[first, examples] = 1.0
        markers[second, examples] = 1.0
        targets = (values[first, examples] + values[second, examples]).unsqueeze(1)  # (B, 1)
        return Batch(torch.stack([values, markers], dim=-1), targets)

    def _sample_hochreiter(self, batch_size: int, gen: torch.Generator) -> Batch:
        shortest, half = self.seq_len, (self.seq_len + 1) // 2
        lengths = torch.randint(shortest, shortest + shortest // 10 + 1, (batch_size,), generator=gen)
        steps = int(lengths.max())
        values = torch.rand(steps, batch_size, generator=gen) * 2.0 - 1.0  # (T_max, B)
        first = torch.randint(0, HOCHREITER_FIRST_WINDOW, (batch_size,), generator=gen)
        second = torch.randint(0, half - 1, (batch_size,), generator=gen)
        second = second + (second >= first).long()
        examples = torch.arange(batch_size)
        markers = torch.zeros(steps, batch_size)
        markers[0] = -1.0
        markers[lengths - 1, examples] = -1.0
        markers[first, examples] = 1.0
        markers[second, examples] = 1.0
        values[0] = torch.where(markers[0] == 1.0, 0.0, values[0])
        padding = ~step_mask(lengths, steps)  # (T_max, B)
        values = values.masked_fill(padding, 0.0)
        markers = markers.masked_fill(padding, 0.0)
        targets = 0.5 + (values[first, examples] + values[second, examples]) / 4.0
        return Batch(torch.stack([values, markers], dim=-1), targets.unsqueeze(1), lengths)
