"""One-line conversion between torch.nn's recurrent layers and bptt's, in any module tree.

``convert(model)`` swaps every ``torch.nn.RNN``, ``LSTM`` and ``GRU`` inside
``model`` for its bptt twin, in place: the same weights (the same Parameter
objects, so an optimizer built before keeps working), device, dtype and
train/eval mode, and the hooks registered on the old layer. Outputs are the
same. ``convert(model, back=True)`` swaps bptt layers back to torch.nn for
export, where their settings allow it (tanh or ReLU, no remedies).

The hooks are registered on the new layer anew, through torch's public
``register_*_hook`` methods: torch offers no public way to move a hook with its
handle, so a handle taken on the old layer no longer removes it. State-dict
hooks registered through torch's private methods are not carried (a warning
says so).
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


def _registered_hooks(module: nn.Module) -> tuple[list[tuple[str, Any, dict[str, bool]]], int]:
    """Every hook on ``module`` as (the public method that registers it, the hook, its options), and how
    many cannot be registered through a public method.

    The one read of torch.nn.Module's private state in bptt: torch registers and removes hooks through
    public methods but lists them nowhere public, so their tables are read here, and only read.
    """
    table = vars(module)
    hooks: list[tuple[str, Any, dict[str, bool]]] = []
    with_kwargs = table.get("_forward_pre_hooks_with_kwargs", {})
    for key, hook in table.get("_forward_pre_hooks", {}).items():
        hooks.append(("register_forward_pre_hook", hook, {"with_kwargs": key in with_kwargs}))
    with_kwargs, always = table.get("_forward_hooks_with_kwargs", {}), table.get("_forward_hooks_always_called", {})
    for key, hook in table.get("_forward_hooks", {}).items():
        hooks.append(("register_forward_hook", hook, {"with_kwargs": key in with_kwargs, "always_call": key in always}))
    hooks += [("register_full_backward_pre_hook", h, {}) for h in table.get("_backward_pre_hooks", {}).values()]
    full = table.get("_is_full_backward_hook") is not False
    backward = "register_full_backward_hook" if full else "register_backward_hook"
    hooks += [(backward, h, {}) for h in table.get("_backward_hooks", {}).values()]
    hooks += [("register_state_dict_pre_hook", h, {}) for h in table.get("_state_dict_pre_hooks", {}).values()]
    hooks += [
        ("register_load_state_dict_post_hook", h, {}) for h in table.get("_load_state_dict_post_hooks", {}).values()
    ]
    private = 0
    for hook in table.get("_state_dict_hooks", {}).values():
        if getattr(hook, "_from_public_api", False):
            hooks.append(("register_state_dict_post_hook", hook, {}))
        else:
            private += 1
    for wrapped in table.get("_load_state_dict_pre_hooks", {}).values():
        if getattr(wrapped, "with_module", False):  # as the public method wraps it
            hooks.append(("register_load_state_dict_pre_hook", wrapped.hook, {}))
        else:
            private += 1
    return hooks, private


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
    hooks, private = _registered_hooks(old)
    for method, hook, options in hooks:
        getattr(new, method)(hook, **options)
    if private:
        warnings.warn(
            f"convert: {where} has {private} state-dict hook(s) registered through torch's private methods, "
            "which are not carried over; register them on the new layer",
            stacklevel=3,
        )
    if getattr(old, "parametrizations", None) is not None:
        warnings.warn(
            f"convert: {where} has parametrizations (torch.nn.utils.parametrize), which are not carried "
            "over; remove them first",
            stacklevel=3,
        )
    if isinstance(new, nn.RNNBase):
        new.flatten_parameters()  # torch.nn's weights as one block for cuDNN (a no-op elsewhere)


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
