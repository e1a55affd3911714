"""bptt: train recurrent networks by backpropagation through time, and see,
measure and fix the vanishing gradient.

    result = bptt.train({"task": "adding", "seq_len": 50, "cell": "lstm"})
    bptt.diagnose(result.model, result.task)     # a notebook shows its figures and verdict
"""

__version__ = "0.1.0"

from bptt.config import RunConfig
from bptt.diagnostics import diagnose
from bptt.modules import GRU, LSTM, RNN, convert, record_gradients
from bptt.training import train
from bptt.watcher import Watch, watch

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "RunConfig",
    "Watch",
    "__version__",
    "convert",
    "diagnose",
    "record_gradients",
    "train",
    "watch",
]
