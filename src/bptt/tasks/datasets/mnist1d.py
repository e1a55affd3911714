"""MNIST-1D (Greydanus 2020), generated locally by the ``mnist1d`` package.

The package's generator (``mnist1d.data.make_dataset``) is called with its
default arguments: 5000 one-dimensional signals, 500 per digit template 0-9,
each padded, scaled, translated, given correlated and iid noise and sheared,
then resampled to ``final_seq_length`` points and standardised over the whole
set; generation seed 42, the package's default, so the examples are the
published MNIST-1D's. The package's split is 4000 train / 1000 test.

Here: ``settings.seq_len`` sets the number of steps (default 40, the
package's); each step carries 1 feature; 10 classes. A stratified 20 % of the
package's training split (800) is held out as validation, drawn from
``settings.seed``, leaving 3200 for training; test is the package's 1000.
"""

from __future__ import annotations

import functools
import random

import numpy as np
import torch

from bptt.tasks.base import TASKS
from bptt.tasks.checks import require_int
from bptt.tasks.datasets.common import DatasetTask, Split, Splits, require, stratified_split

DEFAULT_SEQ_LEN = 40
GENERATION_SEED = 42


@functools.lru_cache(maxsize=8)
def _generate(seq_len: int) -> dict[str, np.ndarray]:
    """The package's dataset at ``seq_len`` points. Its generator seeds NumPy's and
    Python's global random state; both are restored afterwards."""
    # mnist1d is optional (the data extra): imported only when this task generates its data.
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.final_seq_length = seq_len
    args.seed = GENERATION_SEED
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        return make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@functools.lru_cache(maxsize=16)
def load_mnist1d_splits(seq_len: int, seed: int) -> Splits:
    data = _generate(seq_len)

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        inputs = torch.from_numpy(np.asarray(x, dtype=np.float32)).unsqueeze(-1)  # (N, T, 1)
        return Split(inputs, torch.from_numpy(np.asarray(y, dtype=np.int64)))

    index = stratified_split(data["y"], {"val": 0.2}, seed)
    return Splits(
        train=split(data["x"][index["train"]], data["y"][index["train"]]),
        val=split(data["x"][index["val"]], data["y"][index["val"]]),
        test=split(data["x_test"], data["y_test"]),
        classes=tuple(str(c) for c in range(10)),
    )


@TASKS.register("mnist1d")
class MNIST1D(DatasetTask):
    """MNIST-1D: seq_len steps (default 40) of 1 feature, 10 classes; 3200/800/1000 examples."""

    name = "mnist1d"

    def _load(self) -> Splits:
        seq_len = DEFAULT_SEQ_LEN if self.settings.seq_len is None else self.settings.seq_len
        seq_len = require_int(seq_len, "seq_len", self.name, 2)
        require("mnist1d", "mnist1d", self.name)
        return load_mnist1d_splits(seq_len, int(self.settings.seed))
