r"""The diagonal linear recurrence of the scan cells (LRU, minGRU, minLSTM), forward and backward.

Tensors are time-major, (T, B, N). The recurrence, real or complex, elementwise:

    h_t = a_t * h_{t-1} + b_t,        t = 0 .. T-1, from h_{-1} = h0,

with a either (T, B, N) (minGRU's 1 - z_t) or one (N,) vector for every step (the LRU's
lambda). Its backward is the same recurrence run in reverse, on the total gradient
g_t = dL/dh_t (from the output at step t and from step t + 1):

    g_t = e_t + conj(a_{t+1}) * g_{t+1},  dL/db_t = g_t,  dL/da_t = g_t * conj(h_{t-1}),
    dL/dh0 = conj(a_0) * g_0

(conj: torch's convention for complex gradients; a no-op for real tensors). g_t is what
``record_gradients`` records, so the record costs only its norms: ||g_t|| over N (for a
complex state, over its real and imaginary parts).

Two ways of running it, forward and backward alike:

- "sequential": one fused elementwise product per step. On a CPU a step costs a few
  microseconds, and this beats every parallel form (``bptt bench`` measures it);
- "parallel": Hillis-Steele doubling, ceil(log2 T) rounds over the whole (T, B, N) tensor,
  h[t] += A[t] * h[t - d], A[t] *= A[t - d], d = 1, 2, 4, ...: O(T log T) work in
  log2 T kernel launches rather than T, for a GPU. No logarithm and no division, so it
  takes signed and complex values and a_t = 0.

``log_space_scan`` is the minGRU paper's form (Heinsen's), for positive values only:
h_t = exp(A_t + logcumsumexp(log b - A)_t), A = cumsum(log a); autograd differentiates
it. It is what the paper and ``minGRU-pytorch`` run; ``bptt bench --cells`` times it
against the loops above.
"""

from __future__ import annotations

import torch

from bptt.engine.common import differentiable_grads
from bptt.engine.recording import StepRecorder

METHODS = ("sequential", "parallel")


def put_state_grads(recorder: StepRecorder | None, start: int, grads: torch.Tensor) -> None:
    """Record (K, B, N) state gradients from step ``start``; a complex state's norm runs over its real
    and imaginary parts."""
    if recorder is None or recorder.active() is None:
        return
    recorder.put(start, torch.view_as_real(grads).flatten(-2) if grads.is_complex() else grads)


def _conj(a: torch.Tensor) -> torch.Tensor:
    return a.conj() if a.is_complex() else a


def _sequential(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, out: torch.Tensor) -> None:
    """out[t] = a[t] * out[t-1] + b[t] (a: (T, B, N) or (N,)), from h0."""
    steps = None if a.dim() == 1 else a.unbind(0)
    h = h0
    for t, (b_t, h_t) in enumerate(zip(b.unbind(0), out.unbind(0))):
        torch.addcmul(b_t, a if steps is None else steps[t], h, out=h_t)
        h = h_t


def _doubling(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h[t] = a[t] * h[t-1] + b[t] from h[-1] = 0, in ceil(log2 T) rounds (a: (T, B, N) or (N,))."""
    T = b.shape[0]
    h = b
    A = a
    d = 1
    while d < T:
        h_next = h.clone()
        h_next[d:].addcmul_(A if A.dim() == 1 else A[d:], h[:-d])
        if A.dim() == 1:
            A = A * A
        else:
            A_next = A.clone()
            A_next[d:].mul_(A[:-d])
            A = A_next
        h, d = h_next, 2 * d
    return h if h is not b else b.clone()


def _parallel(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    b = b.clone()
    b[0].addcmul_(a if a.dim() == 1 else a[0], h0)
    return _doubling(a, b)


def _reverse_gradients(
    a: torch.Tensor, grad_out: torch.Tensor | None, grad_last: torch.Tensor | None, like: torch.Tensor, method: str
) -> torch.Tensor:
    """g (T, B, N): g_t = e_t + conj(a_{t+1}) g_{t+1}, e the output's gradient (dL/dh_T added at T - 1)."""
    T = like.shape[0]
    g = like.new_zeros(like.shape) if grad_out is None else grad_out.clone(memory_format=torch.contiguous_format)
    if grad_last is not None:
        g[-1] += grad_last
    a_conj = _conj(a)
    if method == "sequential":
        steps = g.unbind(0)
        constant = a_conj.dim() == 1
        for t in range(T - 2, -1, -1):
            steps[t].addcmul_(a_conj if constant else a_conj[t + 1], steps[t + 1])
        return g
    # Reversed in time, the backward is the forward recurrence with a shifted by one step.
    shifted = a_conj if a_conj.dim() == 1 else torch.cat([a_conj[:1], a_conj[1:].flip(0)])
    return _doubling(shifted, g.flip(0)).flip(0)


class DiagonalScan(torch.autograd.Function):
    """(a, b, h0) -> h (T, B, N), h_t = a_t * h_{t-1} + b_t; the record gets ||dL/dh_t|| in the backward."""

    @staticmethod
    def forward(ctx, a, b, h0, recorder: StepRecorder | None, method: str):
        ctx.set_materialize_grads(False)
        if method == "sequential":
            out = torch.empty_like(b, memory_format=torch.contiguous_format)
            _sequential(a, b, h0, out)
        else:
            out = _parallel(a, b, h0)
        ctx.recorder, ctx.method = recorder, method
        ctx.save_for_backward(a, b, h0, out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        a, b, h0, out = ctx.saved_tensors
        if grad_out is None:
            return None, None, None, None, None
        if torch.is_grad_enabled():  # create_graph=True: differentiate the plain loop instead
            recompute = lambda: (reference_scan(a, b, h0),)  # noqa: E731
            return (*differentiable_grads(recompute, (a, b, h0), (grad_out,)), None, None)
        g = _reverse_gradients(a, grad_out, None, out, ctx.method)
        put_state_grads(ctx.recorder, 0, g)
        need_a, need_b, need_h0 = ctx.needs_input_grad[:3]
        grad_a = grad_h0 = None
        if need_a:
            h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])
            grad_a = g * _conj(h_prev)
            if a.dim() == 1:
                grad_a = grad_a.sum((0, 1))
        if need_h0:
            grad_h0 = g[0] * _conj(a if a.dim() == 1 else a[0])
        return grad_a, (g if need_b else None), grad_h0, None, None


def diagonal_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor,
    recorder: StepRecorder | None = None,
    method: str = "sequential",
) -> torch.Tensor:
    """h (T, B, N), h_t = a_t * h_{t-1} + b_t from h0 (B, N); a: (T, B, N) or (N,). The backward is
    hand-written (``method``: "sequential" or "parallel") and gives ``recorder`` ||dL/dh_t||."""
    if method not in METHODS:
        raise ValueError(f"unknown scan method {method!r}; allowed: {', '.join(METHODS)}")
    if b.shape[0] == 0:
        return b.new_empty(b.shape)
    return DiagonalScan.apply(a, b, h0, recorder, method)


def reference_scan(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, recorder: StepRecorder | None = None
) -> torch.Tensor:
    """The plain autograd loop of the same recurrence; ``recorder`` hooks every h_t."""
    constant = a.dim() == 1
    h = h0
    states = []
    for t, b_t in enumerate(b.unbind(0)):
        h = (a if constant else a[t]) * h + b_t
        if recorder is not None and h.requires_grad:
            h.register_hook(lambda grad, t=t: put_state_grads(recorder, t, grad.unsqueeze(0)))
        states.append(h)
    return torch.stack(states) if states else b.new_empty(b.shape)


def log_space_scan(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t from h_{-1} = 0 for positive a and b given as logarithms (T, B, N), the
    minGRU paper's parallel form (Heinsen 2023): log h_t = A_t + logcumsumexp(log b - A)_t with
    A = cumsum(log a) over time."""
    a_star = log_a.cumsum(0)
    return (a_star + (log_b - a_star).logcumsumexp(0)).exp()
