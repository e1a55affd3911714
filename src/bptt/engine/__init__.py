"""The BPTT engines: time loops over one recurrent layer, the cells and activations they run,
and per-step gradient recording.

Tensors are time-major, (T, B, features). An engine runs one layer over all
steps with ``rnn_layer``, ``lstm_layer`` and ``gru_layer`` (the signatures of
``bptt.engine.reference``); ``ENGINES`` maps names to engines:

- "reference": the plain autograd loop (``reference``), what the others are tested against;
- "fast": hand-written forward and backward loops (``rnn``, ``lstm``, ``gru``), the default.

This package knows nothing of the layers that call it (``bptt.modules``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bptt.engine import gru, lstm, reference, rnn
from bptt.engine.activations import ACTIVATIONS, DEFAULT_SLOPE, Activation
from bptt.engine.recording import GradientRecord, LayerRecorders, StepRecorder
from bptt.registry import Registry


@dataclass(frozen=True)
class Engine:
    """One way of running a layer over time: a function per cell family."""

    name: str
    rnn_layer: Callable[..., object]
    lstm_layer: Callable[..., object]
    gru_layer: Callable[..., object]


ENGINES: Registry[Engine] = Registry("engine")
ENGINES.add("reference", Engine("reference", reference.rnn_layer, reference.lstm_layer, reference.gru_layer))
ENGINES.add("fast", Engine("fast", rnn.rnn_layer, lstm.lstm_layer, gru.gru_layer))
DEFAULT_ENGINE = "fast"

__all__ = ["ACTIVATIONS", "Activation", "DEFAULT_ENGINE", "DEFAULT_SLOPE", "ENGINES", "Engine", "GradientRecord",
           "LayerRecorders", "StepRecorder"]
