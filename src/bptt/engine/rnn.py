r"""Hand-written BPTT for the simple RNN cell, every activation.

Forward, with a_t the pre-activation (tensors time-major, (T, B, H)):

    a_t = x_t W_ih^T + b_ih + b_hh + h_{t-1} W_hh^T,   h_t = act(a_t).

The input term of all T steps is one matrix product written straight into the
output buffer; each step then adds its recurrent product in place and applies
the activation in place, so the forward keeps one (T, B, H) tensor: the
outputs themselves. tanh runs as 2 sigmoid(2a) - 1 (see ``_tanh_loop``).

Backward, from t = T down to 1, with g_t the gradient of output t:

    dL/dh_t = g_t + delta_{t+1} W_hh    (plus dL/dh_T from h_n at t = T)
    delta_t = dL/dh_t * act'(a_t)

act'(a_t) is read off h_t for sigmoid (h(1-h)), tanh (1-h^2), relu
([h > 0]), leaky_relu with slope >= 0 and prelu with every slope > 0 (h and a
share their sign). A leaky_relu slope < 0, or a prelu slope <= 0, keeps the
pre-activations as well. The prelu slope gradient is
dL/dw_j = sum_{t,b} dL/dh_t[b,j] * min(a_t[b,j], 0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from bptt.engine.common import WeightGrads, add_bias, chunk_steps, chunks_backward, first_grad, project
from bptt.engine.recording import StepRecorder

#: Activations with a hand-written backward here; any other registered activation
#: (``bptt.modules.ACTIVATIONS``) runs on the reference loop, correct but slower.
FAST_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu")


def _keeps_preactivation(activation: str, slope: torch.Tensor | float) -> bool:
    if activation == "leaky_relu":
        return float(slope) < 0
    if activation == "prelu":
        return not bool((slope > 0).all())
    return False


def _activate_(a: torch.Tensor, activation: str, slope: torch.Tensor | float) -> None:
    """h = act(a), in place (tanh has its own loop, ``_tanh_loop``)."""
    if activation == "sigmoid":
        torch.sigmoid_(a)
    elif activation == "relu":
        torch.relu_(a)
    elif activation == "leaky_relu":
        F.leaky_relu_(a, slope)
    else:
        a.copy_(F.prelu(a, slope))


def _activate(a: torch.Tensor, activation: str, slope: torch.Tensor | float, out: torch.Tensor) -> None:
    """out = act(a), for the path that keeps a."""
    if activation == "leaky_relu":
        torch.where(a > 0, a, a * slope, out=out)
    else:
        torch.where(a >= 0, a, a * slope, out=out)


def _derivative(h: torch.Tensor, pre: torch.Tensor | None, activation: str, slope: torch.Tensor | float,
                out: torch.Tensor) -> None:
    """out = act'(a) for a chunk, from h (or from a where it was kept)."""
    if activation == "tanh":
        torch.mul(h, h, out=out).neg_().add_(1)
    elif activation == "sigmoid":
        torch.mul(h, h, out=out).neg_().add_(h)  # h - h^2
    elif activation == "relu":
        torch.gt(h, 0, out=out)
    else:  # slope + (1 - slope) [a > 0]  (leaky_relu) or [a >= 0] (prelu)
        source = h if pre is None else pre
        (torch.gt if activation == "leaky_relu" else torch.ge)(source, 0, out=out)
        out.mul_(1 - slope).add_(slope)


def _tanh_loop(out: torch.Tensor, h0: torch.Tensor, weight_hh_t: torch.Tensor) -> None:
    """h_t = tanh(a_t) in place over ``out`` (which holds the input terms p_t on entry).

    torch.tanh costs about five torch.sigmoid on a CPU, so the loop runs on
    s_t = sigmoid(2 a_t), with tanh(a) = 2 sigmoid(2a) - 1. Substituting
    h_{t-1} = 2 s_{t-1} - 1 into 2 a_t = 2 p_t + 2 h_{t-1} W_hh^T gives

        2 a_t = (2 p_t - 2 * 1 W_hh^T) + s_{t-1} (4 W_hh^T)   (every step after the first),

    one product and one sigmoid per step; h = 2 s - 1 is formed once at the end.
    """
    out.mul_(2)
    if out.shape[0] > 1:
        out[1:].sub_(weight_hh_t.sum(0), alpha=2)
    first = out[0]
    first.addmm_(h0, weight_hh_t, alpha=2)
    torch.sigmoid_(first)
    weight_4 = weight_hh_t * 4
    s = first
    for a in out[1:].unbind(0):
        a.addmm_(s, weight_4)
        torch.sigmoid_(a)
        s = a
    out.mul_(2).sub_(1)


class RNNFunction(torch.autograd.Function):
    """(x, h0, W_ih, W_hh, b_ih, b_hh, prelu weight) -> (output (T, B, H), h_T)."""

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias_ih, bias_hh, prelu_weight, activation, leaky_slope, recorder):
        ctx.set_materialize_grads(False)
        T, B, I = x.shape
        H = weight_hh.shape[0]
        slope = prelu_weight if activation == "prelu" else leaky_slope
        x2d = x.reshape(T * B, I)
        bias = add_bias(bias_ih, bias_hh)
        keep = _keeps_preactivation(activation, slope)
        out = x.new_empty(T, B, H)
        pre = x.new_empty(T, B, H) if keep else None
        project(x2d, weight_ih, bias, (out if pre is None else pre).view(T * B, H))
        weight_hh_t = weight_hh.t().contiguous()  # (H, H): h W_hh^T as h @ weight_hh_t
        h = h0
        if activation == "tanh":
            _tanh_loop(out, h0, weight_hh_t)
        elif pre is None:
            for a in out.unbind(0):
                a.addmm_(h, weight_hh_t)
                _activate_(a, activation, slope)
                h = a
        else:
            for a, h_t in zip(pre.unbind(0), out.unbind(0)):
                a.addmm_(h, weight_hh_t)
                _activate(a, activation, slope, h_t)
                h = h_t
        ctx.activation, ctx.leaky_slope, ctx.recorder = activation, leaky_slope, recorder
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        ctx.save_for_backward(x2d, h0, weight_ih, weight_hh, out, pre, prelu_weight)
        return out, out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_hn):
        x2d, h0, weight_ih, weight_hh, out, pre, prelu_weight = ctx.saved_tensors
        activation, recorder = ctx.activation, ctx.recorder
        slope = prelu_weight.detach() if activation == "prelu" else ctx.leaky_slope
        T, B, H = out.shape
        need = ctx.needs_input_grad
        grads = WeightGrads((need[0], need[2], need[3], need[4] or need[5]), x2d, h0, out, weight_ih, H)
        grad_slope = out.new_zeros(H) if activation == "prelu" and need[6] else None
        if recorder is not None and recorder.active() is None:
            recorder = None

        K = chunk_steps(T, B, H)
        deriv_buf = out.new_empty(K, B, H)
        grad_h_buf = out.new_empty(K, B, H)  # dL/dh_t, total
        delta_buf = out.new_empty(K, B, H)  # dL/da_t
        delta_next = None
        for start, end in chunks_backward(T, K):
            n = end - start
            deriv, grad_h, delta = deriv_buf[:n], grad_h_buf[:n], delta_buf[:n]
            _derivative(out[start:end], None if pre is None else pre[start:end], activation, slope, deriv)
            if grad_out is not None:
                grad_h.copy_(grad_out[start:end])
            grad_h_steps, delta_steps, deriv_steps = grad_h.unbind(0), delta.unbind(0), deriv.unbind(0)
            for i in range(n - 1, -1, -1):
                g = grad_h_steps[i]
                if delta_next is None:  # t = T - 1
                    first_grad(g, grad_out is not None, grad_hn)
                elif grad_out is not None:
                    g.addmm_(delta_next, weight_hh)
                else:
                    torch.mm(delta_next, weight_hh, out=g)
                delta_next = torch.mul(g, deriv_steps[i], out=delta_steps[i])
            flat = delta.view(n * B, H)
            grads.chunk(start, end, flat, flat)
            if grad_slope is not None:  # sum_{t,b} dL/dh_t * min(a_t, 0); deriv is free again
                source = out[start:end] if pre is None else pre[start:end]
                grad_slope += torch.clamp(source, max=0, out=deriv).mul_(grad_h).sum((0, 1))
            if recorder is not None:
                recorder.put(start, grad_h)
        if grad_slope is not None and pre is None:
            grad_slope /= slope  # min(a, 0) = min(h, 0) / w when every w > 0
        grad_h0 = torch.mm(delta_next, weight_hh) if need[1] else None
        grad_b_ih = grad_b_hh = None
        if grads.grad_b is not None:
            grad_b_ih = grads.grad_b if ctx.has_bias[0] else None
            grad_b_hh = (grads.grad_b.clone() if grad_b_ih is not None else grads.grad_b) if ctx.has_bias[1] else None
        return (grads.grad_x, grad_h0, grads.grad_w_ih, grads.grad_w_hh, grad_b_ih, grad_b_hh, grad_slope,
                None, None, None)


def rnn_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    activation: str = "tanh",
    slope: torch.Tensor | float | None = None,
    on_hidden=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh). Returns (output (T,B,H), h_T).

    Same signature and results as ``bptt.modules.reference.rnn_layer``.
    ``on_hidden`` may be a ``StepRecorder``; any other callback needs the
    per-step autograd graph, so the call then runs the reference loop, as does
    an activation without a backward here (see ``FAST_ACTIVATIONS``).
    """
    custom_callback = on_hidden is not None and not isinstance(on_hidden, StepRecorder)
    if activation not in FAST_ACTIVATIONS or custom_callback or x.shape[0] == 0:
        from bptt.modules import reference

        return reference.rnn_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation, slope, on_hidden)
    if activation == "prelu":
        if not isinstance(slope, torch.Tensor):
            raise TypeError("prelu needs its per-unit slope tensor as slope")
        prelu_weight, leaky_slope = slope, None
    else:
        prelu_weight = None
        leaky_slope = float(0.01 if slope is None else slope) if activation == "leaky_relu" else None
    return RNNFunction.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, prelu_weight, activation, leaky_slope,
                             on_hidden)
