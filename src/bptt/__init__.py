"""bptt: train recurrent networks by backpropagation through time, and see,
measure and fix the vanishing gradient."""
__version__ = "0.1.0"

from bptt.modules import GRU, LSTM, RNN, record_gradients  # noqa: E402

__all__ = ["GRU", "LSTM", "RNN", "__version__", "record_gradients"]
