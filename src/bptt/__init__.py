"""bptt: train recurrent networks by backpropagation through time, and see,
measure and fix the vanishing gradient."""
__version__ = "0.1.0"

from bptt.modules import GRU, LSTM, RNN, convert, record_gradients  # noqa: E402
from bptt.watcher import Watch, watch  # noqa: E402

__all__ = ["GRU", "LSTM", "RNN", "Watch", "__version__", "convert", "record_gradients", "watch"]
