"""One-line conversion between torch.nn's recurrent layers and bptt's, in any module tree.

``convert(model)`` swaps every ``torch.nn.RNN``, ``LSTM`` and ``GRU`` inside
``model`` for its bptt twin, in place: the same weights (the same Parameter
objects, so an optimizer built before keeps working), device, dtype and
train/eval mode, and the hooks registered on the old layer. Outputs are the
same. ``convert(model, back=True)`` swaps bptt layers back to torch.nn for
export, where their settings allow it (tanh or ReLU, no remedies).
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from bptt.modules.base import RecurrentBase
from bptt.modules.gru import GRU
from bptt.modules.lstm import LSTM
from bptt.modules.rnn import RNN

TWINS: dict[type[nn.RNNBase], type[RecurrentBase]] = {nn.RNN: RNN, nn.LSTM: LSTM, nn.GRU: GRU}
BACK: dict[type[RecurrentBase], type[nn.RNNBase]] = {RNN: nn.RNN, LSTM: nn.LSTM, GRU: nn.GRU}

#: The hook tables of torch.nn.Module that a swapped layer takes over, as they are (their
#: removable handles keep working). This is the one place bptt writes torch's private
#: attributes: torch has no public API that lists a module's hooks or moves them to another
#: module, and a hook registered on the old layer must keep firing (and stay removable by its
#: handle) on the new one. The swapped weights themselves go through the public setattr, which
#: torch.nn.RNNBase's own __setattr__ keeps in step with its flat weights.
HOOK_TABLES = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


def _common(layer: nn.RNNBase) -> dict[str, Any]:
    """The settings both kinds of layer share. The new layer is built on the meta device: it takes the
    old layer's Parameters, so building it allocates nothing and draws nothing from the random state."""
    return {
        "num_layers": layer.num_layers,
        "bias": layer.bias,
        "batch_first": layer.batch_first,
        "dropout": layer.dropout,
        "bidirectional": layer.bidirectional,
        "device": "meta",
        "dtype": next(layer.parameters()).dtype,
    }


def _twin(layer: nn.RNNBase, options: dict[str, Any]) -> RecurrentBase:
    common = _common(layer)
    if type(layer) is nn.RNN:
        return RNN(layer.input_size, layer.hidden_size, nonlinearity=layer.nonlinearity, **common, **options)
    if type(layer) is nn.LSTM:
        return LSTM(layer.input_size, layer.hidden_size, proj_size=layer.proj_size, **common, **options)
    return GRU(layer.input_size, layer.hidden_size, **common, **options)


def _back(layer: RecurrentBase, where: str) -> nn.RNNBase:
    problems = [
        name
        for name, bad in (
            ("residual", layer.residual),
            ("truncate", layer.truncate is not None),
            ("activation", getattr(layer, "activation", "tanh") not in ("tanh", "relu")),
        )
        if bad
    ]
    if problems:
        raise ValueError(f"convert(back=True): {where} uses {', '.join(problems)}, which torch.nn's layers do not have")
    common = _common(layer)
    if isinstance(layer, RNN):
        return nn.RNN(layer.input_size, layer.hidden_size, nonlinearity=layer.activation, **common)
    if isinstance(layer, LSTM):
        return nn.LSTM(layer.input_size, layer.hidden_size, proj_size=layer.proj_size, **common)
    return nn.GRU(layer.input_size, layer.hidden_size, **common)


def _take_over(old: nn.Module, new: nn.Module, where: str) -> None:
    """Give ``new`` the Parameters, mode and hooks of ``old``; warn about what cannot move."""
    for name, param in old.named_parameters(recurse=False):
        setattr(new, name, param)
    left = [name for name, p in new.named_parameters() if p.is_meta]
    assert not left, f"convert: {where}: no counterpart for {left}"
    new.train(old.training)
    for table in HOOK_TABLES:
        hooks = getattr(old, table, None)
        if hooks:
            setattr(new, table, hooks)
    if getattr(old, "parametrizations", None) is not None:
        warnings.warn(
            f"convert: {where} has parametrizations (torch.nn.utils.parametrize), which are not carried "
            "over; remove them first",
            stacklevel=3,
        )


def convert(model: nn.Module, back: bool = False, **options: Any) -> nn.Module:
    """Swap every torch.nn RNN/LSTM/GRU in ``model`` for bptt's (``back=True``: the reverse), in place.

    ``options`` go to each new bptt layer (e.g. ``engine="reference"``). ``model``
    itself may be a layer: the new layer is returned then. Subclasses of torch.nn's
    layers are left as they are, with a warning (their own code would be lost).
    Returns ``model``.
    """
    if back and options:
        raise TypeError(f"convert(back=True) takes no layer options, got {', '.join(options)}")
    swap = (lambda m: isinstance(m, RecurrentBase)) if back else (lambda m: type(m) in TWINS)
    if swap(model):
        return _swapped(model, "the model", back, options)
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            where = f"{parent_name}.{name}" if parent_name else name
            if swap(child):
                setattr(parent, name, _swapped(child, where, back, options))
            elif (
                not back
                and isinstance(child, nn.RNNBase)
                and not isinstance(child, RecurrentBase)
                and type(child) not in TWINS
            ):
                warnings.warn(
                    f"convert: {where} is a {type(child).__name__}, a subclass of a torch.nn recurrent "
                    "layer; left as it is",
                    stacklevel=2,
                )
    return model


def _swapped(layer: nn.Module, where: str, back: bool, options: dict[str, Any]) -> nn.Module:
    new = _back(layer, where) if back else _twin(layer, options)
    _take_over(layer, new, where)
    return new
