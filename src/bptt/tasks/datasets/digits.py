"""Sequential and permuted 8x8 digits: scikit-learn's bundled copy of the UCI
optical handwritten digits test set (``sklearn.datasets.load_digits``, no download).

1797 grey-scale 8x8 images of the digits 0-9 (174-183 per class), pixel values
0-16 scaled to [0, 1] and fed one pixel per step in row-major order: 64 steps
of 1 feature, the class read at the last step.

Splits: stratified 60/20/20 (1079 train, 359 val, 359 test), drawn from
``settings.seed``. ``pdigits`` feeds the pixels in one fixed order, a
permutation of the 64 positions drawn from ``settings.seed`` and shared by
every image of every split.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from bptt.tasks.base import TASKS, generator
from bptt.tasks.datasets.common import PERMUTATION_STREAM, DatasetTask, Split, Splits, require, stratified_split

PIXELS = 64
FRACTIONS = {"val": 0.2, "test": 0.2}


@functools.cache
def _images() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 images as (N, 64, 1) float32 in [0, 1], and their labels (N,)."""
    # scikit-learn is optional (the data extra): imported only when this task loads its images.
    from sklearn.datasets import load_digits

    digits = load_digits()
    inputs = torch.from_numpy(np.asarray(digits.data, dtype=np.float32) / 16.0).unsqueeze(-1)
    return inputs, torch.from_numpy(np.asarray(digits.target, dtype=np.int64))


@functools.lru_cache(maxsize=16)
def load_digit_splits(seed: int) -> Splits:
    inputs, targets = _images()
    index = stratified_split(targets.numpy(), FRACTIONS, seed)
    split = {name: Split(inputs[torch.from_numpy(i)], targets[torch.from_numpy(i)]) for name, i in index.items()}
    return Splits(split["train"], split["val"], split["test"], tuple(str(c) for c in range(10)))


def pixel_permutation(seed: int, pixels: int) -> torch.Tensor:
    """The fixed order in which permuted tasks feed the pixels: a permutation of range(pixels)."""
    return torch.randperm(pixels, generator=generator(seed, PERMUTATION_STREAM))


@TASKS.register("digits")
class Digits(DatasetTask):
    """8x8 digits, one pixel per step (64 steps, 1 feature, 10 classes)."""

    name = "digits"
    native_seq_len = PIXELS

    def _load(self) -> Splits:
        require("sklearn", "scikit-learn", self.name)
        return load_digit_splits(int(self.settings.seed))


@TASKS.register("pdigits")
class PermutedDigits(Digits):
    """8x8 digits with the 64 pixels in one fixed, seeded order."""

    name = "pdigits"

    def _load(self) -> Splits:
        splits = super()._load()
        self.permutation = pixel_permutation(int(self.settings.seed), PIXELS)
        return splits
