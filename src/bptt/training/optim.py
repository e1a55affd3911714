"""Optimizers by name, and gradient clipping that reports what it did."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from bptt.config import RunConfig


def build_optimizer(config: RunConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, momentum=config.momentum)
    return torch.optim.Adam(params, lr=config.lr)


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
