"""Optimizers by name, and gradient clipping that reports what it did."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from bptt.config import RunConfig
from bptt.modules.base import RecurrentBase


def parameter_groups(model: nn.Module, params: Iterable[nn.Parameter], lr: float) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: ``params`` at ``lr``, except those a recurrent layer of
    ``model`` declares a rate of its own for (``RecurrentBase.parameter_groups``: e.g. expRNN's skew
    matrix), each group at ``lr`` times its factor. One group when no layer declares any."""
    wanted = {id(p) for p in params}
    groups: list[dict[str, Any]] = []
    claimed: set[int] = set()
    for module in model.modules():
        if isinstance(module, RecurrentBase):
            for members, factor in module.parameter_groups():
                mine = [p for p in members if id(p) in wanted and id(p) not in claimed]
                claimed.update(id(p) for p in mine)
                if mine:
                    groups.append({"params": mine, "lr": lr * factor})
    rest = [p for p in params if id(p) not in claimed]
    return [{"params": rest, "lr": lr}, *groups]


def build_optimizer(
    config: RunConfig, params: Iterable[torch.nn.Parameter], model: nn.Module | None = None
) -> torch.optim.Optimizer:
    """The optimiser a config names over ``params``, in the groups the layers of ``model`` declare."""
    params = list(params)
    groups = parameter_groups(model, params, config.lr) if model is not None else [{"params": params}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.Adam(groups, lr=config.lr)


def total_norm(grads: Sequence[torch.Tensor]) -> tuple[float, float]:
    """(||g||_2 over every element of every tensor, max_i |g_i|), as Python floats.

    Summed in float64, so no finite gradient overflows it (a float32 gradient
    with elements of 3e21 has squares past float32's range); a float64
    gradient is divided by max_i |g_i| first. Both values are nan when an
    element is nan, else inf when one is inf.
    """
    largest_t = torch.stack([g.detach().abs().amax().double() for g in grads]).amax()
    largest = float(largest_t)
    if not math.isfinite(largest):
        return largest, largest
    if largest == 0.0:
        return 0.0, 0.0
    norms = [
        torch.linalg.vector_norm(g.detach() / largest_t) * largest_t
        if g.dtype == torch.float64
        else torch.linalg.vector_norm(g.detach(), dtype=torch.float64)
        for g in grads
    ]
    return float(torch.linalg.vector_norm(torch.stack(norms) / largest_t)) * largest, largest


def clip_gradients(
    params: list[torch.nn.Parameter], clip_norm: float | None, clip_value: float | None
) -> tuple[float, bool]:
    """Clip in place; return (total L2 norm of all gradients before clipping, whether any was clipped).

    By norm (Pascanu et al. 2013): if ||g|| > c then g <- c g / ||g||, at any
    magnitude of g (see ``total_norm``). By value: each element to [-v, v].
    When an element is nan or inf the total norm is returned as nan or inf
    and nothing is clipped; the caller decides what such a step does.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0, False
    total, largest = total_norm(grads)
    if not math.isfinite(total):
        return total, False
    clipped = False
    if clip_norm is not None and total > clip_norm:
        scale = clip_norm / (total + 1e-6)
        for grad in grads:
            if scale >= torch.finfo(grad.dtype).tiny:
                grad.mul_(scale)
            else:  # the factor itself would underflow: divide by the largest element first
                grad.div_(largest).mul_(scale * largest)
        clipped = True
    if clip_value is not None:
        if clipped:
            largest = max(float(g.abs().amax()) for g in grads)
        if largest > clip_value:
            torch.nn.utils.clip_grad_value_([p for p in params if p.grad is not None], clip_value)
            clipped = True
    return total, clipped
