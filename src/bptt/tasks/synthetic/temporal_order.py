"""Temporal order: classify the order of two symbols X/Y hidden among distractors.

Inputs are time-major one-hot vectors (L, B, 8); targets are class ids (B,).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from bptt.tasks.base import TASKS, Batch, Task, TaskSettings, cross_entropy_baseline
from bptt.tasks.checks import check_generated, require_batch_size, seq_len_of

DEFAULT_SEQ_LEN = 100
MIN_SEQ_LEN = 10  # the shortest length whose two windows hold a step each
SYMBOLS = ("a", "b", "c", "d", "B", "E", "X", "Y")
A, B_END, E_START, X, Y = 0, 4, 5, 6, 7
NUM_DISTRACTORS = 4  # a, b, c, d
CLASSES = ("XX", "XY", "YX", "YY")


def _ceil_tenths(tenths: int, length: int) -> int:
    """ceil(tenths * length / 10) in integers."""
    return (tenths * length + 9) // 10


@TASKS.register("temporal_order")
class TemporalOrderTask(Task):
    r"""Temporal order, Hochreiter & Schmidhuber 1997 (task 6a), with the length scaled
    as in Pascanu, Mikolov & Bengio 2013.

    Every sequence has L = ``seq_len`` steps (default 100; at least 10) over the 8
    symbols ``SYMBOLS`` = (a, b, c, d, B, E, X, Y), given one-hot: (L, B, 8) float.
    Step 0 is E, step L-1 is B; step t1, uniform over the integers in
    [max(1, 0.1 L), 0.2 L), and step t2, uniform over the integers in [0.5 L, 0.6 L),
    each hold X or Y (independently, probability 1/2 each); every other step holds a
    distractor drawn uniformly from {a, b, c, d}. The class is the ordered pair
    (symbol at t1, symbol at t2): 0 = XX, 1 = XY, 2 = YX, 3 = YY (``CLASSES``), so
    the classes are equally likely. (The original task used lengths 100-110 with
    t1 in [10, 20] and t2 in [50, 60].)

    Loss: cross-entropy at the last step; memoryless baseline ln 4; chance accuracy 0.25.
    """

    name = "temporal_order"
    # At L = 100, with the defaults, a GRU leaves chance after about 850 steps (an LSTM did not in 2500).
    recommended = {"steps": 2000}
    kind = "classification"
    input_kind = "dense"
    input_size = len(SYMBOLS)
    output_size = len(CLASSES)
    metric_name = "accuracy"
    higher_is_better = True
    symbols = SYMBOLS
    classes = CLASSES

    def __init__(self, settings: TaskSettings) -> None:
        variant = check_generated(settings, self.name)
        seq_len = seq_len_of(settings, self.name, DEFAULT_SEQ_LEN, MIN_SEQ_LEN)
        super().__init__(dataclasses.replace(settings, seq_len=seq_len, variant=variant))

    @property
    def windows(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """The half-open step ranges [start, stop) of t1 and t2."""
        length = self.seq_len
        first = (max(1, _ceil_tenths(1, length)), _ceil_tenths(2, length))
        second = (_ceil_tenths(5, length), _ceil_tenths(6, length))
        return first, second

    @property
    def baseline(self) -> float:
        return cross_entropy_baseline([1.0 / len(CLASSES)] * len(CLASSES))

    def sample(self, batch_size: int, gen: torch.Generator) -> Batch:
        batch_size = require_batch_size(batch_size)
        (start1, stop1), (start2, stop2) = self.windows
        symbols = torch.randint(A, A + NUM_DISTRACTORS, (self.seq_len, batch_size), generator=gen)  # (L, B)
        symbols[0] = E_START
        symbols[-1] = B_END
        first = torch.randint(start1, stop1, (batch_size,), generator=gen)
        second = torch.randint(start2, stop2, (batch_size,), generator=gen)
        is_y = torch.randint(0, 2, (2, batch_size), generator=gen)  # 1: Y, 0: X
        examples = torch.arange(batch_size)
        symbols[first, examples] = X + is_y[0]
        symbols[second, examples] = X + is_y[1]
        targets = 2 * is_y[0] + is_y[1]  # XX=0, XY=1, YX=2, YY=3
        return Batch(F.one_hot(symbols, len(SYMBOLS)).float(), targets)

    def decode(self, inputs: torch.Tensor) -> str:
        """One sequence (L, 8) one-hot, or (L,) symbol ids, as a string such as "EabXc...B"."""
        ids = inputs.argmax(-1) if inputs.dim() == 2 else inputs
        return "".join(SYMBOLS[int(i)] for i in ids)
