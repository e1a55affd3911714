r"""Hand-written BPTT for the simple RNN cell, every activation.

Forward, with a_t the pre-activation (tensors time-major, (T, B, H)):

    a_t = x_t W_ih^T + b_ih + b_hh + h_{t-1} W_hh^T,   h_t = act(a_t).

The input term of all T steps is one matrix product written straight into the
output buffer; each step then adds its recurrent product in place and applies
the activation in place, so the forward keeps one (T, B, H) tensor: the
outputs themselves. tanh runs as 2 sigmoid(2a) - 1 (``bptt.engine.python_loops``).

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

``RNNFunction`` holds what every way of running the loops shares; the loops are ``RNNLoops``:
``bptt.engine.python_loops``, or the compiled ones of ``bptt.engine.compiled``.
"""

from __future__ import annotations

from typing import Protocol

import torch

from bptt.engine import reference
from bptt.engine.activations import ACTIVATIONS, Activation, Slope
from bptt.engine.common import (
    add_bias,
    chunk_steps,
    chunks_backward,
    differentiable_backward,
    open_backward,
    project,
    split_bias_grad,
)
from bptt.engine.python_loops import RNN_LOOPS as PYTHON_LOOPS
from bptt.engine.recording import LayerRecorders
from bptt.engine.reference import StepWatch


class RNNLoops(Protocol):
    """The two time loops of the simple RNN, over buffers the caller made (contiguous, time-major)."""

    def forward(
        self,
        out: torch.Tensor,
        pre: torch.Tensor | None,
        h0: torch.Tensor,
        weight_hh: torch.Tensor,
        act: Activation,
        slope: Slope,
    ) -> None:
        """Over all steps: the input terms are in ``pre`` when it is given (the pre-activations are kept),
        else in ``out``; h_t ends in ``out``."""

    def backward(
        self,
        out: torch.Tensor,
        pre: torch.Tensor | None,
        grad_h: torch.Tensor,
        delta: torch.Tensor,
        delta_next: torch.Tensor | None,
        weight_hh: torch.Tensor,
        act: Activation,
        slope: Slope,
        norms: torch.Tensor | None,
    ) -> None:
        """One chunk, last step first: ``grad_h`` holds the outputs' gradients on entry and dL/dh_t on
        return, ``delta`` dL/da_t; ``delta_next`` is that of the step after the chunk (None at T - 1)."""


class RNNFunction(torch.autograd.Function):
    """(x, h0, W_ih, W_hh, b_ih, b_hh, learned slope) -> (output (T, B, H), h_T), on ``loops``.

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
        loops,
    ):
        ctx.set_materialize_grads(False)
        T, B, I = x.shape
        H = weight_hh.shape[0]
        slope = learned_slope if act.learned_slope else fixed_slope
        keep = act.keeps_preactivation(slope)
        out = x.new_empty(T, B, H)
        pre = x.new_empty(T, B, H) if keep else None
        project(
            x.reshape(T * B, I), weight_ih, add_bias(bias_ih, bias_hh), (out if pre is None else pre).view(T * B, H)
        )
        loops.forward(out, pre, h0.contiguous(), weight_hh.contiguous(), act, slope)
        ctx.act, ctx.fixed_slope, ctx.record, ctx.loops = act, fixed_slope, record, loops
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned_slope, out, pre)
        return out, out[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h_last):
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned_slope, out, pre = ctx.saved_tensors
        act = ctx.act
        if torch.is_grad_enabled():  # create_graph=True: a backward that can itself be differentiated
            inputs = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned_slope)
            slope = learned_slope if act.learned_slope else ctx.fixed_slope
            recompute = lambda: reference.rnn_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, act.name, slope)  # noqa: E731
            return differentiable_backward(recompute, inputs, (grad_out, grad_h_last), 4)
        slope = learned_slope.detach() if act.learned_slope else ctx.fixed_slope
        T, B, H = out.shape
        need_x, need_h0, need_w_ih, need_w_hh, need_b_ih, need_b_hh, need_slope = ctx.needs_input_grad[:7]
        grads, record = open_backward(
            ctx.record, (need_x, need_w_ih, need_w_hh, need_b_ih or need_b_hh), x, h0, out, weight_ih, H
        )
        grad_slope = out.new_zeros(H) if act.learned_slope and need_slope else None
        weight_hh = weight_hh.contiguous()

        K = chunk_steps(T, B, H)
        grad_h_buf = out.new_empty(K, B, H)  # dL/dh_t, total
        delta_buf = out.new_empty(K, B, H)  # dL/da_t
        norms_buf = out.new_empty(K, B, dtype=torch.float64) if record is not None else None
        delta_next = None
        for start, end in chunks_backward(T, K):
            n = end - start
            grad_h, delta = grad_h_buf[:n], delta_buf[:n]
            if grad_out is not None:
                grad_h.copy_(grad_out[start:end])
            else:
                grad_h.zero_()
            if end == T and grad_h_last is not None:
                grad_h[-1] += grad_h_last
            pre_chunk = None if pre is None else pre[start:end]
            norms = None if norms_buf is None else norms_buf[:n]
            ctx.loops.backward(out[start:end], pre_chunk, grad_h, delta, delta_next, weight_hh, act, slope, norms)
            flat = delta.view(n * B, H)
            grads.chunk(start, end, flat, flat)
            if grad_slope is not None:  # sum_{t,b} dL/dh_t * min(a_t, 0)
                factor = torch.empty_like(grad_h)
                act.slope_factor(out[start:end], pre_chunk, slope, factor)
                grad_slope += factor.mul_(grad_h).sum((0, 1))
            if record is not None:
                record.hidden.put_norms(start, norms, out.dtype)
            if delta_next is None:
                delta_next = out.new_empty(B, H)
            delta_next.copy_(delta[0])
        grad_h0 = torch.mm(delta_next, weight_hh) if need_h0 else None
        grad_b_ih, grad_b_hh = split_bias_grad(grads.grad_b, ctx.has_bias)
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
            None,
        )


def run(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    activation: str,
    slope: Slope,
    record: LayerRecorders | None,
    loops: RNNLoops,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``rnn_layer`` on the given loops."""
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
    return RNNFunction.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned, act, fixed, record, loops)


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
    *,
    watch: StepWatch | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh). Returns (output (T,B,H), h_T).

    Same signature and results as ``bptt.engine.reference.rnn_layer``, which runs instead while a
    ``watch`` is given. An activation registered without a derivative runs on the reference loop.
    """
    if watch is not None:
        return reference.rnn_layer(
            x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation, slope, record, watch=watch
        )
    return run(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation, slope, record, PYTHON_LOOPS)
