"""The "recompute" engine: BPTT for sequences whose stored activations do not fit in memory.

The storing engines keep every step's gates and states for the backward: an LSTM seven (T, B, H)
tensors, a GRU five. Here the forward keeps the outputs and, for the LSTM, c_t at the end of every chunk
of K steps; the backward runs the forward again over each chunk, from its kept state, just before it
needs it, then that chunk's backward (``keep_every`` of ``bptt.engine.lstm.LSTMFunction`` and
``bptt.engine.gru.GRUFunction``). What it records is the same: dL/dh_t (and dL/dc_t) at every step.
The price is one more forward, about a third of a training step; the memory, about one (T, B, H)
tensor per layer (``bptt.engine.memory.kept_bytes``).

K is the storing engines' backward chunk (``bptt.engine.common.chunk_steps``), so each chunk's
recomputed values take a few MB. The loops are the compiled ones where they run, else the Python ones.
The simple RNN's storing engines keep only h_t (and its pre-activations where the slope needs them),
which the outputs are already: it runs on "compiled" unchanged.
"""

from __future__ import annotations

import torch

from bptt.engine import compiled, gru, lstm, python_loops, reference
from bptt.engine.common import chunk_steps
from bptt.engine.recording import LayerRecorders
from bptt.engine.reference import StepWatch

#: The simple RNN: nothing to recompute (see the module docstring).
rnn_layer = compiled.rnn_layer


def lstm_layer(
    x: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    record: LayerRecorders | None = None,
    *,
    weight_hr: torch.Tensor | None = None,
    watch: StepWatch | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``bptt.engine.lstm.lstm_layer``, recomputing each chunk in the backward (see the module docstring)."""
    if watch is not None:
        return reference.lstm_layer(
            x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr=weight_hr, watch=watch
        )
    loops = compiled.LSTM_LOOPS if compiled.runs_on(x) else python_loops.LSTM_LOOPS
    keep_every = chunk_steps(x.shape[0], x.shape[1], weight_hh.shape[0] // 4)
    return lstm.run(x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr, loops, keep_every)


def gru_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    record: LayerRecorders | None = None,
    *,
    watch: StepWatch | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``bptt.engine.gru.gru_layer``, recomputing each chunk in the backward (see the module docstring)."""
    if watch is not None:
        return reference.gru_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record, watch=watch)
    loops = compiled.GRU_LOOPS if compiled.runs_on(x) else python_loops.GRU_LOOPS
    keep_every = chunk_steps(x.shape[0], x.shape[1], weight_hh.shape[1])
    return gru.run(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record, loops, keep_every)
