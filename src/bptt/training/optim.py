"""Optimizers by name, and gradient clipping that reports what it did."""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from bptt.config import RunConfig


def build_optimizer(config: RunConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, momentum=config.momentum)
    return torch.optim.Adam(params, lr=config.lr)


def clip_gradients(
    params: list[torch.nn.Parameter], clip_norm: float | None, clip_value: float | None
) -> tuple[float, bool]:
    """Clip in place; return (total L2 norm of all gradients before clipping, whether any was clipped).

    By norm (Pascanu et al. 2013): if ||g|| > c then g <- c g / ||g||. By value:
    each element to [-v, v]. A non-finite total norm is returned as is (nan or
    inf) and nothing is clipped; the caller decides what such a step does.
    """
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return 0.0, False
    total = float(torch.nn.utils.get_total_norm([p.grad for p in grads]))
    if not math.isfinite(total):
        return total, False
    clipped = False
    if clip_norm is not None and total > clip_norm:
        torch.nn.utils.clip_grads_with_norm_(grads, clip_norm, torch.tensor(total))
        clipped = True
    if clip_value is not None:
        largest = max(float(p.grad.abs().max()) for p in grads)
        if largest > clip_value:
            torch.nn.utils.clip_grad_value_(grads, clip_value)
            clipped = True
    return total, clipped
