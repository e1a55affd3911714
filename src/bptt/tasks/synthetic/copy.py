"""Copy memory: read ten symbols, wait, then write them back after a delimiter.

Inputs are time-major one-hot vectors (T + 20, B, 10); targets are per-step
symbol ids (T + 20, B).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from bptt.tasks.base import TASKS, Batch, Task, TaskSettings
from bptt.tasks.checks import check_generated, require_batch_size, seq_len_of

DEFAULT_SEQ_LEN = 100
NUM_SYMBOLS = 10  # a0..a9
NUM_DATA_SYMBOLS = 8  # the data are drawn from a0..a7
BLANK = 8
DELIMITER = 9
RECALL_LEN = 10  # symbols to copy


@TASKS.register("copy")
class CopyTask(Task):
    r"""Copy memory (Arjovsky, Shah & Bengio 2016, "Unitary evolution RNNs", section 4.1).

    With T = ``seq_len`` (default 100) every sequence has T + 20 steps, t = 0..T+19:

    - input: the 10 data symbols at t = 0..9, drawn i.i.d. uniform from a0..a7; blanks
      (a8) at t = 10..T+8 (T - 1 of them); the delimiter a9 at t = T + 9; blanks at
      t = T+10..T+19. One-hot over the 10 symbols: (T + 20, B, 10) float.
    - target: blanks at t = 0..T+9 (T + 10 of them), then the 10 data symbols at
      t = T+10..T+19, in order: (T + 20, B) long.

    Loss: cross-entropy averaged over every step of every sequence. The best memoryless
    predictor knows only the step index t: it puts probability 1 on the blank for
    t < T + 10 (loss 0) and 1/8 on each data symbol afterwards (loss ln 8), so the
    baseline is 10 ln 8 / (T + 20) (0.0400 at T = 500, 0.0204 at T = 1000).

    Metric ``recall_accuracy``: the fraction of the 10 recalled symbols (t >= T + 10)
    predicted right; chance 1/8. ``solved``: recall accuracy more than halfway from
    chance to 1 (the base-class rule on this chance level).
    """

    name = "copy"
    # At T = 100, with the defaults, a GRU goes below the memoryless baseline within about 1000 steps;
    # 2000 take it well below. (A standard LSTM stays on the baseline far longer: init chrono is its remedy.)
    recommended = {"steps": 2000}
    kind = "per_step"
    input_kind = "dense"
    input_size = NUM_SYMBOLS
    output_size = NUM_SYMBOLS
    metric_name = "recall_accuracy"
    higher_is_better = True

    def __init__(self, settings: TaskSettings) -> None:
        variant = check_generated(settings, self.name)
        seq_len = seq_len_of(settings, self.name, DEFAULT_SEQ_LEN, 1)
        super().__init__(dataclasses.replace(settings, seq_len=seq_len, variant=variant))

    @property
    def num_steps(self) -> int:
        """Steps per sequence: T + 20."""
        return self.seq_len + 2 * RECALL_LEN

    @property
    def baseline(self) -> float:
        return RECALL_LEN * math.log(NUM_DATA_SYMBOLS) / self.num_steps

    @property
    def chance_metric(self) -> float:
        return 1.0 / NUM_DATA_SYMBOLS

    def metric(self, prediction: torch.Tensor, batch: Batch) -> float:
        """Accuracy over the recalled symbols only: prediction (T + 20, B, 10) logits."""
        recalled = prediction[-RECALL_LEN:].argmax(-1)  # (10, B)
        return float((recalled == batch.targets[-RECALL_LEN:]).float().mean())

    def sample(self, batch_size: int, gen: torch.Generator) -> Batch:
        batch_size = require_batch_size(batch_size)
        data = torch.randint(0, NUM_DATA_SYMBOLS, (RECALL_LEN, batch_size), generator=gen)  # (10, B)
        delimiter_step = self.seq_len + RECALL_LEN - 1
        symbols = torch.full((self.num_steps, batch_size), BLANK, dtype=torch.long)
        symbols[:RECALL_LEN] = data
        symbols[delimiter_step] = DELIMITER
        targets = torch.full((self.num_steps, batch_size), BLANK, dtype=torch.long)
        targets[-RECALL_LEN:] = data
        inputs = F.one_hot(symbols, NUM_SYMBOLS).float()  # (T + 20, B, 10)
        return Batch(inputs, targets)
