"""Recurrent layers (drop-in for torch.nn), their initialisations, and views inside them.

The layers run on the engines of ``bptt.engine``; this package imports the
engine, never the reverse.
"""

import torch

from bptt.modules.cells import CELLS
from bptt.modules.convert import convert
from bptt.modules.cornn import CoRNN
from bptt.modules.exprnn import ExpRNN
from bptt.modules.gru import GRU
from bptt.modules.indrnn import IndRNN
from bptt.modules.init import INIT_NAMES
from bptt.modules.lnlstm import LayerNormLSTM
from bptt.modules.lru import LRU
from bptt.modules.lstm import LSTM
from bptt.modules.minrnn import MinGRU, MinLSTM
from bptt.modules.recording import constrain, find_recurrent, record_gradients, require_recurrent, watch_steps
from bptt.modules.rnn import RNN

__all__ = [
    "CELLS",
    "GRU",
    "INIT_NAMES",
    "LRU",
    "LSTM",
    "RNN",
    "CoRNN",
    "ExpRNN",
    "IndRNN",
    "LayerNormLSTM",
    "MinGRU",
    "MinLSTM",
    "constrain",
    "convert",
    "find_recurrent",
    "record_gradients",
    "require_recurrent",
    "watch_steps",
]

# A whole model saved with torch.save loads with torch.load(weights_only=True) (torch's default)
# wherever bptt is imported: the layers hold only tensors, numbers and strings.
torch.serialization.add_safe_globals([CELLS.get(name).layer for name in CELLS])
