"""Where ``bptt.watch`` records go: TensorBoard, MLflow, PyTorch Lightning.

Each integration is an optional extra (``pip install 'bptt[tensorboard]'``,
``'bptt[mlflow]'``, ``'bptt[lightning]'``); a missing one ends with one line
naming it.
"""


class MissingExtra(ImportError):
    """An optional package an integration needs is not installed; the message says what to install."""


def missing(package: str, extra: str) -> MissingExtra:
    return MissingExtra(f"{package} is not installed; pip install 'bptt[{extra}]'")
