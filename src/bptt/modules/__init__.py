"""Recurrent layers (drop-in for torch.nn), their initialisations, and views inside them.

The layers run on the engines of ``bptt.engine``; this package imports the
engine, never the reverse.
"""
from bptt.modules.gru import GRU
from bptt.modules.init import INIT_NAMES
from bptt.modules.lstm import LSTM
from bptt.modules.recording import find_recurrent, record_gradients, require_recurrent, watch_steps
from bptt.modules.rnn import RNN

__all__ = ["GRU", "INIT_NAMES", "LSTM", "RNN", "find_recurrent", "record_gradients", "require_recurrent",
           "watch_steps"]
