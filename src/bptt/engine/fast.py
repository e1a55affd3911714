"""The "fast" engine: hand-written BPTT, one autograd Function per cell family.

Provides ``rnn_layer``, ``lstm_layer`` and ``gru_layer`` with the signatures
and results of ``bptt.modules.reference``; registered in
``bptt.modules.recurrent.ENGINES`` as "fast" (the default).
"""
from bptt.engine.gru import gru_layer
from bptt.engine.lstm import lstm_layer
from bptt.engine.rnn import rnn_layer

__all__ = ["gru_layer", "lstm_layer", "rnn_layer"]
