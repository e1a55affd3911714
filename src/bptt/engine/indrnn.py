r"""IndRNN (Li et al. 2018): each unit carries its own state through one recurrent weight.

Tensors are time-major, (T, B, H). With u the (H,) recurrent weight,

    a_t = x_t W_ih^T + b + u * h_{t-1},    h_t = act(a_t),

so the step Jacobian dh_t/dh_{t-1} = diag(act'(a_t) * u) is diagonal: unit i's gradient
over k steps is the product of its own k factors act'(a_{t,i}) u_i, nothing mixes units.

``reference_layer`` is the plain autograd loop (it shows every step to a ``watch`` as the
reference engine's loops do, with ``recurrent`` = u * h_{t-1}); ``indrnn_layer`` is the
hand-written BPTT: the input projection of all steps is one matrix product, each step is
one fused multiply-add and the activation in place, and the backward runs

    dL/dh_t = g_t + delta_{t+1} * u,    delta_t = dL/dh_t * act'(a_t)

(g_t the gradient of output t), act' read off h_t. The weight gradients are whole-chunk
reductions: dL/du = sum_{t,b} delta_t * h_{t-1}, dL/dW_ih = delta^T x, dL/db = sum delta.
Autograd over the loop records about five nodes per step and runs them one by one; this
backward does two elementwise operations per step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bptt.engine.activations import ACTIVATIONS
from bptt.engine.common import chunk_steps, chunks_backward, differentiable_grads, last_step_grad
from bptt.engine.recording import LayerRecorders, RecordingWatch

#: The activations IndRNN runs: each has act' readable off its output.
INDRNN_ACTIVATIONS = ("relu", "tanh", "sigmoid")


def indrnn_cell(p: torch.Tensor, h: torch.Tensor, weight_hh: torch.Tensor, activation: str) -> torch.Tensor:
    """One step from the input projection p_t = x_t W_ih^T + b: h_t = act(p_t + u * h_{t-1})."""
    return ACTIVATIONS.get(activation).apply(torch.addcmul(p, weight_hh, h), None)


def reference_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias: torch.Tensor | None,
    activation: str = "relu",
    record: LayerRecorders | None = None,
    *,
    watch=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain autograd loop. Returns (output (T, B, H), h_T)."""
    if record is not None:
        recording = RecordingWatch(record)
        watch = recording if watch is None else _Both(recording, watch)
    projected = F.linear(x, weight_ih, bias)  # (T, B, H)
    if watch is not None:
        watch.input(x, projected)
    act = ACTIVATIONS.get(activation)
    h, outputs = h0, []
    for t, p_t in enumerate(projected.unbind(0)):
        recurrent = weight_hh * h
        h_t = act.apply(p_t + recurrent, None)
        if watch is not None:
            watch.step(t, h, recurrent, h_t)
        outputs.append(h_t)
        h = h_t
    return torch.stack(outputs) if outputs else x.new_empty(0, *h0.shape), h


class _Both:
    def __init__(self, *watches) -> None:
        self.watches = watches

    def input(self, x: torch.Tensor, projected: torch.Tensor) -> None:
        for watch in self.watches:
            watch.input(x, projected)

    def step(self, t, h_prev, recurrent, h, c=None) -> None:
        for watch in self.watches:
            watch.step(t, h_prev, recurrent, h, c)


class IndRNNFunction(torch.autograd.Function):
    """(x, h0, W_ih, u, b) -> (output (T, B, H), h_T); ``activation`` a name of ``INDRNN_ACTIVATIONS``."""

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias, activation: str, record: LayerRecorders | None):
        ctx.set_materialize_grads(False)
        T, B, I = x.shape
        H = weight_hh.shape[0]
        act = ACTIVATIONS.get(activation)
        out = x.new_empty(T, B, H)
        x2d = x.reshape(T * B, I)
        if bias is None:
            torch.mm(x2d, weight_ih.t(), out=out.view(T * B, H))
        else:
            torch.addmm(bias, x2d, weight_ih.t(), out=out.view(T * B, H))
        h = h0
        for a in out.unbind(0):
            a.addcmul_(weight_hh, h)
            act.forward_(a, None)
            h = a
        ctx.activation, ctx.record = activation, record
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, bias, out)
        return out, out[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h_last):
        x, h0, weight_ih, weight_hh, bias, out = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: differentiate the reference loop instead
            inputs = (x, h0, weight_ih, weight_hh, bias)
            recompute = lambda: reference_layer(x, h0, weight_ih, weight_hh, bias, ctx.activation)  # noqa: E731
            return (*differentiable_grads(recompute, inputs, (grad_out, grad_h_last)), None, None)
        derivative = ACTIVATIONS.get(ctx.activation).derivative
        assert derivative is not None, "every IndRNN activation reads act' off h_t"
        record = ctx.record if ctx.record is not None and ctx.record.active() else None
        terms = None if ctx.record is None else ctx.record.terms()
        need_x, need_h0, need_w_ih, need_u, need_b = ctx.needs_input_grad[:5]
        T, B, H = out.shape
        I = x.shape[-1]
        x2d = x.reshape(T * B, I)
        grad_x = out.new_empty(T, B, I) if need_x else None
        grad_w_ih = out.new_zeros(H, I) if need_w_ih else None
        grad_u = out.new_zeros(H) if need_u else None
        grad_b = out.new_zeros(H) if need_b else None
        K = chunk_steps(T, B, H)
        grad_h_buf, delta_buf, deriv_buf = (out.new_empty(K, B, H) for _ in range(3))
        delta_next = None
        for start, end in chunks_backward(T, K):
            n = end - start
            grad_h, delta, deriv = grad_h_buf[:n], delta_buf[:n], deriv_buf[:n]
            derivative(out[start:end], None, None, deriv)  # act'(a_t), read off h_t
            if grad_out is not None:
                grad_h.copy_(grad_out[start:end])
            for i in range(n - 1, -1, -1):
                g = grad_h[i]
                if delta_next is None:  # t = T - 1
                    last_step_grad(g, grad_out is not None, grad_h_last)
                elif grad_out is not None:
                    g.addcmul_(delta_next, weight_hh)
                else:
                    torch.mul(delta_next, weight_hh, out=g)
                delta_next = torch.mul(g, deriv[i], out=delta[i])
            h_prev = out[start - 1 : end - 1] if start > 0 else torch.cat([h0.unsqueeze(0), out[: end - 1]])
            if grad_u is not None or terms is not None:
                step_terms = delta * h_prev  # (n, B, H): each step's term of dL/du, per sequence
                if grad_u is not None:
                    grad_u += step_terms.sum((0, 1))
                if terms is not None:
                    terms.put_norms(start, torch.linalg.vector_norm(step_terms.sum(1), dim=-1, dtype=torch.float64))
            flat = delta.view(n * B, H)
            if need_x:
                torch.mm(flat, weight_ih, out=grad_x[start:end].view(n * B, I))
            if grad_w_ih is not None:
                grad_w_ih.addmm_(flat.t(), x2d[start * B : end * B])
            if grad_b is not None:
                grad_b += flat.sum(0)
            if record is not None:
                record.hidden.put(start, grad_h)
        grad_h0 = delta_next * weight_hh if need_h0 else None
        return grad_x, grad_h0, grad_w_ih, grad_u, grad_b, None, None


def indrnn_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias: torch.Tensor | None,
    activation: str = "relu",
    record: LayerRecorders | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The hand-written BPTT; same signature and results as ``reference_layer`` (without ``watch``)."""
    if activation not in INDRNN_ACTIVATIONS:
        raise ValueError(f"unknown IndRNN activation {activation!r}; allowed: {', '.join(INDRNN_ACTIVATIONS)}")
    if x.shape[0] == 0:
        return reference_layer(x, h0, weight_ih, weight_hh, bias, activation, record)
    return IndRNNFunction.apply(x, h0, weight_ih, weight_hh, bias, activation, record)
