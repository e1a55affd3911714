r"""The Linear Recurrent Unit's recurrence (Orvieto et al. 2023): a complex diagonal state.

Tensors are time-major, (T, B, .). From the input u_t (B, H), with a state x_t of N complex
values per sequence:

    lambda = exp(-exp(nu_log) + i exp(theta_log))      (|lambda| = exp(-exp(nu_log)) < 1 always)
    x_t = lambda * x_{t-1} + gamma * (B u_t),  gamma = exp(gamma_log),  B = B_re + i B_im (N, H)
    y_t = Re(C x_t) + D * u_t,                 C = C_re + i C_im (H, N), D (H,)

gamma starts at sqrt(1 - |lambda|^2), the normalisation that keeps E|x_t|^2 equal to
E|B u_t|^2 for white input however close |lambda| comes to 1. B u_t and Re(C x_t) are
each one real matrix product over all steps (B's and C's real and imaginary parts
interleaved), and only the diagonal recurrence runs step by step, in
``scan.diagonal_scan``: its backward is the reverse recurrence
g_t = dL/dx_t = e_t + conj(lambda) g_{t+1}, whose complex norm ||g_t|| (over the real and
imaginary parts of all N values) is what ``record_gradients`` records.

``method``: "sequential" (one complex multiply-add per step, the CPU's), "parallel"
(ceil(log2 T) doubling rounds, a GPU's) or "reference" (the plain autograd loop).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bptt.engine.recording import LayerRecorders
from bptt.engine.scan import diagonal_scan, reference_scan

METHODS = ("sequential", "parallel", "reference")


def eigenvalues(nu_log: torch.Tensor, theta_log: torch.Tensor) -> torch.Tensor:
    """lambda = exp(-exp(nu_log) + i exp(theta_log)), (N,) complex: the step Jacobian's diagonal."""
    return torch.exp(torch.complex(-torch.exp(nu_log), torch.exp(theta_log)))


def input_weight(weight_b_re: torch.Tensor, weight_b_im: torch.Tensor, gamma_log: torch.Tensor) -> torch.Tensor:
    """gamma * B as a real (2N, H) matrix, rows n's real and imaginary parts interleaved, so that
    u @ W^T viewed as complex is gamma * (B u)."""
    gamma = torch.exp(gamma_log).unsqueeze(-1)
    return torch.stack([weight_b_re * gamma, weight_b_im * gamma], dim=1).flatten(0, 1)


def output_weight(weight_c_re: torch.Tensor, weight_c_im: torch.Tensor) -> torch.Tensor:
    """C as a real (H, 2N) matrix acting on the state's interleaved (re, im) parts: Re(C x)."""
    return torch.stack([weight_c_re, -weight_c_im], dim=2).flatten(1, 2)


def lru_layer(
    u: torch.Tensor,
    x0: torch.Tensor,
    nu_log: torch.Tensor,
    theta_log: torch.Tensor,
    gamma_log: torch.Tensor,
    weight_b_re: torch.Tensor,
    weight_b_im: torch.Tensor,
    weight_c_re: torch.Tensor,
    weight_c_im: torch.Tensor,
    weight_d: torch.Tensor,
    record: LayerRecorders | None = None,
    method: str = "sequential",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The LRU over all steps: u (T, B, H) and x0 (B, N) complex to (y (T, B, H), x_T (B, N))."""
    if method not in METHODS:
        raise ValueError(f"unknown LRU method {method!r}; allowed: {', '.join(METHODS)}")
    T, B = u.shape[:2]
    N = nu_log.shape[0]
    driven = F.linear(u, input_weight(weight_b_re, weight_b_im, gamma_log))  # (T, B, 2N)
    driven = torch.view_as_complex(driven.view(T, B, N, 2))
    lam = eigenvalues(nu_log, theta_log)
    recorder = None if record is None else record.hidden
    if method == "reference":
        states = reference_scan(lam, driven, x0, recorder)
    else:
        states = diagonal_scan(lam, driven, x0, recorder, method)
    y = F.linear(torch.view_as_real(states).view(T, B, 2 * N), output_weight(weight_c_re, weight_c_im))
    y = y + weight_d * u
    x_last = states[-1] if T else x0
    return y, x_last
