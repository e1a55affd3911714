"""Training: the loop, optimizers, clipping, checkpoints."""
from bptt.training.loop import NonFiniteGradientError, RunResult, Trainer, evaluate, train

__all__ = ["NonFiniteGradientError", "RunResult", "Trainer", "evaluate", "train"]
