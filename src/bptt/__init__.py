"""bptt: train recurrent networks by backpropagation through time, and see,
measure and fix the vanishing gradient."""
from bptt.modules import GRU, LSTM, RNN
from bptt.engine import record_gradients

__version__ = "0.1.0"
__all__ = ["GRU", "LSTM", "RNN", "__version__", "record_gradients"]
