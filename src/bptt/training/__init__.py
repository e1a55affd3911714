"""Training: the loop, optimizers, clipping, checkpoints."""
from bptt.training.loop import NonFiniteGradientError, RunResult, Trainer, evaluate, make_model, make_task, train

__all__ = ["NonFiniteGradientError", "RunResult", "Trainer", "evaluate", "make_model", "make_task", "train"]
