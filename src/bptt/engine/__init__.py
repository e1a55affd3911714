"""The BPTT engines: time loops over one recurrent layer, the cells and activations they run,
and per-step gradient recording.

Tensors are time-major, (T, B, features). An engine runs one layer over all
steps with ``rnn_layer``, ``lstm_layer`` and ``gru_layer`` (the signatures of
``bptt.engine.reference``); ``ENGINES`` maps names to engines:

- "reference": the plain autograd loop (``reference``), what the others are tested against;
- "fast": hand-written forward and backward loops (``rnn``, ``lstm``, ``gru``), recording
  every per-step quantity inside its backward;
- "compiled": the same, with each step's work in compiled C++ (``compiled``; built at first use by
  ``extension``, else "fast");
- "recompute": "compiled" keeping every K-th state and recomputing each chunk of K steps in the
  backward (``recompute``): about one (T, B, H) tensor of memory per layer, for sequences whose stored
  steps do not fit (``memory`` says what each engine keeps);
- "probe": the vendor's kernel, widened so that its input gradient is the recurrent part of
  dL/dh_t (``vendor``): the per-step gradient at the vendor's speed, for the tanh/ReLU RNN
  and the LSTM (dL/dc_t derived from it); others run "fast";
- "triton": fused kernels of our own for the simple RNN with every activation, the per-step
  norms written from inside the backward (``triton_rnn``; Triton on a GPU, else "fast").

The scan cells (LRU, minGRU, minLSTM) run their diagonal linear recurrence through ``scan``
(step by step or in parallel doubling rounds, each with its hand-written reverse pass), called from
``lru`` and ``minrnn``; their layers name those engines "fast", "scan" and "reference", and minGRU's and
minLSTM's "compiled" runs their fused loops in C++ (``compiled.min_layer``).

Two more names run a whole stack rather than one layer at a time, and are the layers' to
resolve: "vendor" (torch.nn's own kernel, ``vendor.run_stack``: no per-step view) and "auto"
(the default: per call, the fastest engine that gives what was asked for; see
``bptt.modules.base``).

This package knows nothing of the layers that call it (``bptt.modules``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from bptt.engine import compiled, gru, lstm, recompute, reference, rnn, triton_rnn, vendor
from bptt.engine.activations import ACTIVATIONS, DEFAULT_SLOPE, Activation, Slope
from bptt.engine.recording import GradientRecord, LayerRecorders, StepRecorder
from bptt.engine.reference import StepWatch
from bptt.registry import Registry


class RNNLayer(Protocol):
    """An engine's simple RNN over all steps of one layer and direction (``reference.rnn_layer``)."""

    def __call__(
        self,
        x: torch.Tensor,
        h0: torch.Tensor,
        weight_ih: torch.Tensor,
        weight_hh: torch.Tensor,
        bias_ih: torch.Tensor | None,
        bias_hh: torch.Tensor | None,
        activation: str = "tanh",
        slope: Slope = None,
        record: LayerRecorders | None = None,
        *,
        watch: StepWatch | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class LSTMLayer(Protocol):
    """An engine's LSTM over all steps of one layer and direction (``reference.lstm_layer``)."""

    def __call__(
        self,
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
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]: ...


class GRULayer(Protocol):
    """An engine's GRU over all steps of one layer and direction (``reference.gru_layer``)."""

    def __call__(
        self,
        x: torch.Tensor,
        h0: torch.Tensor,
        weight_ih: torch.Tensor,
        weight_hh: torch.Tensor,
        bias_ih: torch.Tensor | None,
        bias_hh: torch.Tensor | None,
        record: LayerRecorders | None = None,
        *,
        watch: StepWatch | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class Engine:
    """One way of running a layer over time: a function per cell family. Every engine takes a step
    ``watch`` (the reference loop runs while one is given: only it has per-step graph nodes to show)."""

    name: str
    rnn_layer: RNNLayer
    lstm_layer: LSTMLayer
    gru_layer: GRULayer


ENGINES: Registry[Engine] = Registry("engine")
ENGINES.add("reference", Engine("reference", reference.rnn_layer, reference.lstm_layer, reference.gru_layer))
ENGINES.add("fast", Engine("fast", rnn.rnn_layer, lstm.lstm_layer, gru.gru_layer))
ENGINES.add("compiled", Engine("compiled", compiled.rnn_layer, compiled.lstm_layer, compiled.gru_layer))
ENGINES.add("recompute", Engine("recompute", recompute.rnn_layer, recompute.lstm_layer, recompute.gru_layer))
ENGINES.add("probe", Engine("probe", vendor.rnn_layer, vendor.lstm_layer, gru.gru_layer))
ENGINES.add("triton", Engine("triton", triton_rnn.rnn_layer, lstm.lstm_layer, gru.gru_layer))
#: Every name a layer accepts: the per-layer engines, and the two that run whole stacks.
ENGINE_NAMES = ("auto", *ENGINES.names(), "vendor")
DEFAULT_ENGINE = "auto"

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_ENGINE",
    "DEFAULT_SLOPE",
    "ENGINES",
    "ENGINE_NAMES",
    "Activation",
    "Engine",
    "GRULayer",
    "GradientRecord",
    "LSTMLayer",
    "LayerRecorders",
    "RNNLayer",
    "StepRecorder",
]
