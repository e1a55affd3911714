"""bptt: train recurrent networks by backpropagation through time, and see,
measure and fix the vanishing gradient."""
from bptt.modules import GRU, LSTM, RNN

__version__ = "0.1.0"
__all__ = ["GRU", "LSTM", "RNN", "__version__"]
