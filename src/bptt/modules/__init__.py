"""Recurrent layers (drop-in for torch.nn), their activations and initialisations."""
from bptt.modules.activations import ACTIVATIONS, Activation
from bptt.modules.init import INIT_NAMES
from bptt.modules.recurrent import ENGINES, GRU, LSTM, RNN

__all__ = ["ACTIVATIONS", "Activation", "ENGINES", "GRU", "INIT_NAMES", "LSTM", "RNN"]
