"""Seeing inside the layers: per-step gradient recording and step watches, on any module holding them.

``record_gradients(model)`` records the batch-mean norm of dL/dh_t (and dL/dc_t
for an LSTM) at every step of the first bptt layer in ``model``, inside the
backward pass (``bptt.engine.recording`` says what is recorded and how).
``watch_steps(layer, watch_for)`` shows a diagnostic every tensor of the time
loop while it runs (``bptt.engine.reference`` describes a watch).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from torch import nn

from bptt.engine.recording import RECORD_ATTRIBUTE, GradientRecord
from bptt.engine.reference import StepWatch
from bptt.modules.base import RecurrentBase
from bptt.modules.timeloop import WATCH_ATTRIBUTE


def find_recurrent(model: nn.Module) -> RecurrentBase | None:
    """The first bptt recurrent layer in ``model.modules()`` (``model`` itself if it is one), or None."""
    return next((m for m in model.modules() if isinstance(m, RecurrentBase)), None)


def require_recurrent(model: nn.Module, needed_by: str, hint: str = "") -> RecurrentBase:
    """``find_recurrent(model)``, or a TypeError saying that ``needed_by`` needs one (and ``hint``)."""
    found = find_recurrent(model)
    if found is None:
        raise TypeError(
            f"{needed_by} needs a bptt RNN, LSTM or GRU inside the model; found none in {type(model).__name__}{hint}"
        )
    return found


def constrain(model: nn.Module) -> None:
    """Apply every recurrent layer's constraint in ``model`` (``RecurrentBase.constrain_``, e.g. IndRNN's
    bound on |u|): call it after each ``optimizer.step()`` in your own loop; the Trainer does."""
    for module in model.modules():
        if isinstance(module, RecurrentBase):
            module.constrain_()


@contextmanager
def record_gradients(model: nn.Module, updates: bool = False, cells: bool = True) -> Iterator[GradientRecord]:
    """Record the batch-mean norm of dL/dh_t (and dL/dc_t for an LSTM, unless ``cells`` is False) at
    every step (and with ``updates``, each step's ||delta_t^T h_{t-1}||_F in dL/dW_hh: ``rec.update_terms()``).

    ``model`` is a bptt RNN/LSTM/GRU or any module containing one; with several,
    the first in ``model.modules()`` is recorded. Usage::

        with bptt.record_gradients(model) as rec:
            loss.backward()
        rec.hidden  # (num_layers, T): mean_b ||dL/dh_t[b]||_2

    The backward must run inside the block. Run the forward inside too: with the
    default engine "auto", a forward outside any record may take the vendor's
    kernel, which hides every step (a warning says so when nothing was recorded);
    with engine "fast" or "reference" the forward may run before the block.
    Values are as computed (NaN/inf gradients give NaN/inf norms). Costs nothing
    outside the block.
    """
    module = require_recurrent(model, "record_gradients")
    previous = getattr(module, RECORD_ATTRIBUTE, None)
    record = GradientRecord(
        num_layers=module.num_layers,
        num_directions=module.num_directions,
        updates=updates,
        cells=cells,
        names=module.STATE_NAMES,
    )
    object.__setattr__(module, RECORD_ATTRIBUTE, record)
    try:
        yield record
    finally:
        object.__setattr__(module, RECORD_ATTRIBUTE, previous)
    if record.hidden is None and module.last_engine == "vendor":
        warnings.warn(
            "record_gradients recorded nothing: the layer's forward ran on the vendor's kernel, which hides "
            "every step (engine 'auto' with no record open during the forward); run the forward inside the "
            "block, or give the layer engine='fast'",
            stacklevel=3,
        )


@contextmanager
def watch_steps(layer: RecurrentBase, watch_for: Callable[[int, int, int], StepWatch | None]) -> Iterator[None]:
    """Inside the block, every forward of ``layer`` runs on the reference loop and shows each call of
    one layer and direction to ``watch_for(layer_index, direction, offset)``'s watch (offset: the call's
    first step in that direction's order, non-zero for the later pieces of truncated BPTT or a packed
    batch; None: no watch for that call)."""
    previous = getattr(layer, WATCH_ATTRIBUTE, None)
    object.__setattr__(layer, WATCH_ATTRIBUTE, watch_for)
    try:
        yield
    finally:
        object.__setattr__(layer, WATCH_ATTRIBUTE, previous)
