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

act and act' come from the activation table (``bptt.engine.activations``):
act' is read off h_t where the activation allows it (sigmoid h(1-h), tanh
1-h^2, relu [h > 0], leaky_relu and prelu while their slopes keep h and a of
one sign), and the pre-activations are kept as well only where it does not.
A learned slope (prelu) gets dL/dw_j = sum_{t,b} dL/dh_t[b,j] * min(a_t[b,j], 0).
Any activation registered with a derivative runs here; one without runs on the
reference loop.
"""

from __future__ import annotations

import torch

from bptt.engine import reference
from bptt.engine.activations import ACTIVATIONS, Activation, Slope
from bptt.engine.common import (
    WeightGrads,
    add_bias,
    chunk_steps,
    chunks_backward,
    differentiable_grads,
    last_step_grad,
    project,
)
from bptt.engine.recording import LayerRecorders


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
    """(x, h0, W_ih, W_hh, b_ih, b_hh, learned slope) -> (output (T, B, H), h_T).

    ``act`` is the table entry; ``fixed_slope`` the slope of an activation whose slope is not learned.
    """

    @staticmethod
    def forward(
        ctx,
        x,
        h0,
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
        learned_slope,
        act: Activation,
        fixed_slope,
        record: LayerRecorders | None,
    ):
        ctx.set_materialize_grads(False)
        T, B, I = x.shape
        H = weight_hh.shape[0]
        slope = learned_slope if act.learned_slope else fixed_slope
        x2d = x.reshape(T * B, I)
        bias = add_bias(bias_ih, bias_hh)
        keep = act.keeps_preactivation(slope)
        out = x.new_empty(T, B, H)
        pre = x.new_empty(T, B, H) if keep else None
        project(x2d, weight_ih, bias, (out if pre is None else pre).view(T * B, H))
        weight_hh_t = weight_hh.t().contiguous()  # (H, H): h W_hh^T as h @ weight_hh_t
        h = h0
        if act.name == "tanh" and pre is None:  # the engine's own faster tanh loop
            _tanh_loop(out, h0, weight_hh_t)
        elif pre is None:
            for a in out.unbind(0):
                a.addmm_(h, weight_hh_t)
                act.forward_(a, slope)
                h = a
        else:
            for a, h_t in zip(pre.unbind(0), out.unbind(0)):
                a.addmm_(h, weight_hh_t)
                h_t.copy_(act.apply(a, slope))
                h = h_t
        ctx.act, ctx.fixed_slope, ctx.record = act, fixed_slope, record
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned_slope, out, pre)
        return out, out[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h_last):
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned_slope, out, pre = ctx.saved_tensors
        act, record = ctx.act, ctx.record
        if torch.is_grad_enabled():  # create_graph=True: a backward that can itself be differentiated
            inputs = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned_slope)
            slope = learned_slope if act.learned_slope else ctx.fixed_slope
            recompute = lambda: reference.rnn_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, act.name, slope)  # noqa: E731
            return (*differentiable_grads(recompute, inputs, (grad_out, grad_h_last)), None, None, None)
        slope = learned_slope.detach() if act.learned_slope else ctx.fixed_slope
        T, B, H = out.shape
        x2d = x.reshape(T * B, -1)
        need_x, need_h0, need_w_ih, need_w_hh, need_b_ih, need_b_hh, need_slope = ctx.needs_input_grad[:7]
        grads = WeightGrads(
            (need_x, need_w_ih, need_w_hh, need_b_ih or need_b_hh),
            x2d,
            h0,
            out,
            weight_ih,
            H,
            None if ctx.record is None else ctx.record.terms(),
        )
        grad_slope = out.new_zeros(H) if act.learned_slope and need_slope else None
        if record is not None and not record.active():
            record = None

        K = chunk_steps(T, B, H)
        deriv_buf = out.new_empty(K, B, H)
        grad_h_buf = out.new_empty(K, B, H)  # dL/dh_t, total
        delta_buf = out.new_empty(K, B, H)  # dL/da_t
        delta_next = None
        for start, end in chunks_backward(T, K):
            n = end - start
            deriv, grad_h, delta = deriv_buf[:n], grad_h_buf[:n], delta_buf[:n]
            pre_chunk = None if pre is None else pre[start:end]
            act.derivative(out[start:end], pre_chunk, slope, deriv)
            if grad_out is not None:
                grad_h.copy_(grad_out[start:end])
            grad_h_steps, delta_steps, deriv_steps = grad_h.unbind(0), delta.unbind(0), deriv.unbind(0)
            for i in range(n - 1, -1, -1):
                g = grad_h_steps[i]
                if delta_next is None:  # t = T - 1
                    last_step_grad(g, grad_out is not None, grad_h_last)
                elif grad_out is not None:
                    g.addmm_(delta_next, weight_hh)
                else:
                    torch.mm(delta_next, weight_hh, out=g)
                delta_next = torch.mul(g, deriv_steps[i], out=delta_steps[i])
            flat = delta.view(n * B, H)
            grads.chunk(start, end, flat, flat)
            if grad_slope is not None:  # sum_{t,b} dL/dh_t * min(a_t, 0); deriv is free again
                act.slope_factor(out[start:end], pre_chunk, slope, deriv)
                grad_slope += deriv.mul_(grad_h).sum((0, 1))
            if record is not None:
                record.hidden.put(start, grad_h)
        grad_h0 = torch.mm(delta_next, weight_hh) if need_h0 else None
        grad_b_ih = grad_b_hh = None
        if grads.grad_b is not None:
            grad_b_ih = grads.grad_b if ctx.has_bias[0] else None
            grad_b_hh = (grads.grad_b.clone() if grad_b_ih is not None else grads.grad_b) if ctx.has_bias[1] else None
        return (
            grads.grad_x,
            grad_h0,
            grads.grad_w_ih,
            grads.grad_w_hh,
            grad_b_ih,
            grad_b_hh,
            grad_slope,
            None,
            None,
            None,
        )


def rnn_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    activation: str = "tanh",
    slope: Slope = None,
    record: LayerRecorders | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh). Returns (output (T,B,H), h_T).

    Same signature and results as ``bptt.engine.reference.rnn_layer`` (without its
    ``watch``). An activation registered without a derivative runs on the reference loop.
    """
    act = ACTIVATIONS.get(activation)
    if act.derivative is None or x.shape[0] == 0:
        return reference.rnn_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation, slope, record)
    if act.learned_slope:
        if not isinstance(slope, torch.Tensor):
            raise TypeError(f"{activation} needs its per-unit slope tensor as slope")
        learned, fixed = slope, None
    else:
        learned = None
        fixed = float(act.default_slope if slope is None else slope) if act.has_slope else None
    return RNNFunction.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned, act, fixed, record)
