"""bptt: train recurrent networks by backpropagation through time, and see,
measure and fix the vanishing gradient.

    result = bptt.train({"task": "adding", "seq_len": 50, "cell": "lstm"})
    bptt.diagnose(result.model, result.task)     # a notebook shows its figures and verdict
"""
__version__ = "0.1.0"

from bptt.config import RunConfig  # noqa: E402
from bptt.diagnostics import diagnose  # noqa: E402
from bptt.modules import GRU, LSTM, RNN, convert, record_gradients  # noqa: E402
from bptt.training import train  # noqa: E402
from bptt.watcher import Watch, watch  # noqa: E402

__all__ = ["GRU", "LSTM", "RNN", "RunConfig", "Watch", "__version__", "convert", "diagnose", "record_gradients",
           "train", "watch"]
