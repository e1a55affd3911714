"""Instability, measured: how far the output moves under a small perturbation of the input.

One of the six impacts of the vanishing gradient (``bptt.diagnostics.impacts``), measured on a
model and a batch: it reads no database and trains nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


@torch.no_grad()
def perturbation_sensitivity(
    module: nn.Module,
    inputs: torch.Tensor,
    *,
    scale: float = 1e-3,
    at: nn.Module | None = None,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
) -> float:
    """S = mean_b (||f(x_b + d_b) - f(x_b)||_2 / ||f(x_b)||_2) / scale.

    d_b is Gaussian noise rescaled so that ||d_b||_F = scale ||x_b||_F over the
    whole sequence of example b (time-major inputs, batch on axis 1). S = 1:
    the output moves in proportion to the input; S >> 1: tiny input changes
    swing the prediction. ``at`` perturbs the output of that submodule (the
    embedded tokens) instead of ``inputs``.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    run = forward if forward is not None else module
    gen = torch.Generator().manual_seed(seed)

    def perturbed(x: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        dims = [d for d in range(x.dim()) if d != 1]
        size = torch.linalg.vector_norm(x, dim=dims, keepdim=True)
        return x + noise * scale * size / torch.linalg.vector_norm(noise, dim=dims, keepdim=True).clamp_min(1e-300)

    clean = run(inputs)
    if at is None:
        if not inputs.is_floating_point():
            raise TypeError("inputs must be floating point to perturb them; for token ids pass the embedding as at=")
        noisy = run(perturbed(inputs))
    else:
        handle = at.register_forward_hook(lambda _m, _a, out: perturbed(out))
        try:
            noisy = run(inputs)
        finally:
            handle.remove()
    flat = lambda t: t.reshape(-1, t.shape[-1]) if t.dim() == 2 else t.transpose(0, 1).reshape(t.shape[1], -1)  # noqa: E731
    change = torch.linalg.vector_norm(flat(noisy - clean).double(), dim=-1)
    size = torch.linalg.vector_norm(flat(clean).double(), dim=-1).clamp_min(1e-300)
    return float((change / size).mean()) / scale
