"""Training: the loop, evaluation, optimizers, clipping, checkpoints, and the memory a run needs."""

from bptt.training.checkpoint import CheckpointError
from bptt.training.evaluation import evaluate
from bptt.training.loop import Trainer, train
from bptt.training.memory import MemoryLimitError, check_memory, estimate_memory
from bptt.training.results import NonFiniteGradientError, RunFailedError, RunResult
from bptt.training.resume import RunInUseError
from bptt.training.runtime import TrainingInterrupted

__all__ = [
    "CheckpointError",
    "MemoryLimitError",
    "NonFiniteGradientError",
    "RunFailedError",
    "RunInUseError",
    "RunResult",
    "Trainer",
    "TrainingInterrupted",
    "check_memory",
    "estimate_memory",
    "evaluate",
    "train",
]
