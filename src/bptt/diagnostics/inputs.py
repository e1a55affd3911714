"""Input contribution: how strongly the loss depends on the input at each position.

For inputs x (T, B, I) and a scalar loss L,

    u[t] = (1/B) sum_b || dL/dx_t[b, :] ||_2

the batch mean of the L2 norm of the loss's gradient with respect to the input
at step t. It needs nothing but the input's gradient, so it works for any
``torch.nn.Module`` (a user's own ``torch.nn.LSTM`` inside a small wrapper, a
transformer, ...). For token inputs it is measured at the embedded inputs: pass
the embedding module as ``at``.

A network whose gradient vanishes has u[t] falling fast as t moves away from
the loss: the overemphasis on recent data, measured. ``recent_share`` is the
fraction of the summed contribution that comes from the last k positions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bptt.checks import positive_int


def input_contribution(
    module: nn.Module,
    inputs: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    batch_first: bool = False,
    lengths: torch.Tensor | None = None,
    at: nn.Module | None = None,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """u[t] = (1/B) sum_b ||dL/dx_t[b]||_2 for t = 0 .. T-1, as a (T,) float64 tensor.

    Args:
        module: any module; called as ``module(inputs)`` unless ``forward`` is given.
        inputs: (T, B, I), or (B, T, I) with ``batch_first``; token ids when ``at`` is given.
        loss_fn: maps the module's output to the scalar loss.
        batch_first: whether ``inputs`` (and the tensor seen at ``at``) is (B, T, ...).
        lengths: (B,) true lengths: the mean at step t is over the sequences whose step t is real.
        at: a submodule whose *output* is the x to measure (e.g. an ``nn.Embedding``);
            default: ``inputs`` itself, which must then be floating point.
        forward: how to run the module on ``inputs`` (default ``module(inputs)``).

    Returns the measured contribution by position t (not by lag). Parameter
    ``.grad`` is left untouched (torch.autograd.grad takes the input's only). NaN/inf
    gradients give NaN/inf entries.
    """
    run = forward if forward is not None else module
    captured: list[torch.Tensor] = []
    if at is None:
        if not inputs.is_floating_point():
            raise TypeError(
                f"inputs must be floating point to take their gradient, got {inputs.dtype}; "
                "for token ids pass the embedding module as at="
            )
        x = inputs.detach().requires_grad_(True)
        captured.append(x)
        loss = loss_fn(run(x))
    else:

        def swap(_module: nn.Module, _args: tuple, output: torch.Tensor) -> torch.Tensor:
            leaf = output.detach().requires_grad_(True)
            captured.append(leaf)
            return leaf

        handle = at.register_forward_hook(swap)
        try:
            loss = loss_fn(run(inputs))
        finally:
            handle.remove()
        if not captured:
            raise ValueError(f"the module given as at= ({type(at).__name__}) did not run in the forward pass")
    if loss.dim() != 0:
        raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
    x = captured[0]
    (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(x)
    grad = grad.detach().double()
    if batch_first:
        grad = grad.transpose(0, 1)
    if grad.dim() == 2:  # (T, B): one feature per step
        grad = grad.unsqueeze(-1)
    norms = torch.linalg.vector_norm(grad, dim=-1)  # (T, B)
    if lengths is None:
        return norms.mean(dim=1).cpu()  # (T,)
    real = torch.arange(norms.shape[0], device=norms.device).unsqueeze(1) < lengths.to(norms.device).unsqueeze(0)
    return ((norms * real).sum(dim=1) / real.sum(dim=1).clamp(min=1)).cpu()


def recent_share(contribution: torch.Tensor, last: int) -> float:
    """sum_{t >= T - last} u[t] / sum_t u[t]: the share of the input contribution in the last ``last`` steps.

    1.0 means only the last ``last`` inputs move the loss; ``last / T`` is what
    a network that weighs every position equally would score. NaN when the
    contribution is zero everywhere.
    """
    last = positive_int("last", last)
    values = contribution.detach().double()
    total = float(values.sum())
    return float(values[-last:].sum()) / total if total > 0 else float("nan")
