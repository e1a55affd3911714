r"""Fused kernels of our own for the simple RNN (Triton, an optional dependency): every activation,
the whole time loop in one kernel launch each way, dL/dh_t norms written from inside the backward.

What the vendor lacks: torch.nn's fused kernels run the tanh and ReLU RNN only, and hide every
step. Here one program holds ``BLOCK_B`` batch rows and W_hh (H <= ``MAX_HIDDEN``) on chip and
loops over T:

    forward:   a_t = p_t + h_{t-1} W_hh^T,  h_t = act(a_t)          (p_t = x_t W_ih^T + b: one GEMM before)
    backward:  g_t = y_t + delta_{t+1} W_hh  (plus dL/dh_n at t = T-1),  delta_t = g_t * act'(a_t),
               with ||g_t[b]||_2 written per sequence when a record is open (in float64)

and the weight gradients are large GEMMs over the stored deltas afterwards. Products are exact
fp32 by default (``input_precision="ieee"``); ``bptt.engine.triton_rnn.PRECISION = "tf32"`` opts in
to TF32. Without Triton (or on a device it does not serve) the engine falls back to "fast".
Activations are the table's (``bptt.engine.activations``) by name: sigmoid, tanh, relu,
leaky_relu (a fixed slope) and prelu (a learned slope per unit); leaky_relu and prelu keep their
pre-activations. ``TRITON_INTERPRET=1`` runs the kernels on a CPU (slowly), which the tests use.
"""

from __future__ import annotations

import os

import torch

from bptt.engine import reference
from bptt.engine import rnn as fast_rnn
from bptt.engine.activations import ACTIVATIONS, Slope
from bptt.engine.common import differentiable_backward, open_backward, split_bias_grad
from bptt.engine.recording import LayerRecorders
from bptt.engine.reference import StepWatch

try:  # optional: the triton extra, on a GPU (or its interpreter)
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where Triton is absent
    triton = None
    tl = None

#: The activations the kernels run, as the kernels' codes.
CODES = {"sigmoid": 0, "tanh": 1, "relu": 2, "leaky_relu": 3, "prelu": 4}
#: The largest hidden size whose W_hh a program holds on chip.
MAX_HIDDEN = 128
BLOCK_B = 16
#: "ieee" (exact fp32) or "tf32".
PRECISION = "ieee"


def available(x: torch.Tensor | None = None) -> bool:
    """Whether the kernels can run here: Triton importable, and a CUDA tensor (or Triton's interpreter,
    ``TRITON_INTERPRET=1``, which runs them on a CPU)."""
    if triton is None:
        return False
    return os.environ.get("TRITON_INTERPRET", "0") == "1" or (x is not None and x.is_cuda)


def supports(activation: str, hidden_size: int) -> bool:
    return activation in CODES and hidden_size <= MAX_HIDDEN


if triton is not None:

    @triton.jit
    def _activate(a, slope, ACT: tl.constexpr):
        if ACT == 0:
            h = 1.0 / (1.0 + tl.exp(-a))
        elif ACT == 1:
            h = 2.0 / (1.0 + tl.exp(-2.0 * a)) - 1.0
        elif ACT == 2:
            h = tl.maximum(a, 0.0)
        elif ACT == 3:
            h = tl.where(a > 0, a, a * slope)
        else:
            h = tl.where(a >= 0, a, a * slope)
        return h

    @triton.jit
    def _derivative(h, a, slope, ACT: tl.constexpr):
        if ACT == 0:
            d = h * (1.0 - h)
        elif ACT == 1:
            d = 1.0 - h * h
        elif ACT == 2:
            d = tl.where(h > 0, 1.0, 0.0)
        elif ACT == 3:
            d = tl.where(a > 0, 1.0, slope)
        else:
            d = tl.where(a >= 0, 1.0, slope)
        return d

    @triton.jit
    def _forward_kernel(
        proj_ptr,
        h0_ptr,
        w_ptr,
        slope_ptr,
        out_ptr,
        pre_ptr,
        T,
        B,
        H,
        fixed_slope,
        ACT: tl.constexpr,
        KEEP_PRE: tl.constexpr,
        PER_UNIT: tl.constexpr,
        IEEE: tl.constexpr,
        BLOCK_ROWS: tl.constexpr,
        BLOCK_H: tl.constexpr,
    ):
        rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        cols = tl.arange(0, BLOCK_H)
        cmask = cols < H
        m2 = (rows < B)[:, None] & cmask[None, :]
        offsets = rows[:, None] * H + cols[None, :]
        # wt[k, j] = W_hh[j, k], so that h @ wt = h W_hh^T
        wt = tl.load(w_ptr + cols[None, :] * H + cols[:, None], mask=cmask[:, None] & cmask[None, :], other=0.0)
        if PER_UNIT:
            slope = tl.load(slope_ptr + cols, mask=cmask, other=0.0)[None, :]
        else:
            slope = fixed_slope
        h = tl.load(h0_ptr + offsets, mask=m2, other=0.0)
        for t in range(T):
            step = t * B * H
            a = tl.load(proj_ptr + step + offsets, mask=m2, other=0.0)
            if IEEE:
                a += tl.dot(h, wt, input_precision="ieee")
            else:
                a += tl.dot(h, wt, input_precision="tf32")
            if KEEP_PRE:
                tl.store(pre_ptr + step + offsets, a, mask=m2)
            h = tl.where(m2, _activate(a, slope, ACT), 0.0)
            tl.store(out_ptr + step + offsets, h, mask=m2)

    @triton.jit
    def _backward_kernel(
        out_ptr,
        pre_ptr,
        w_ptr,
        slope_ptr,
        grad_out_ptr,
        grad_last_ptr,
        delta_ptr,
        grad_h_ptr,
        grad_h0_ptr,
        norms_ptr,
        T,
        B,
        H,
        fixed_slope,
        ACT: tl.constexpr,
        KEEP_PRE: tl.constexpr,
        PER_UNIT: tl.constexpr,
        HAS_GRAD_OUT: tl.constexpr,
        HAS_GRAD_LAST: tl.constexpr,
        RECORD: tl.constexpr,
        STORE_GRAD_H: tl.constexpr,
        IEEE: tl.constexpr,
        BLOCK_ROWS: tl.constexpr,
        BLOCK_H: tl.constexpr,
    ):
        rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        cols = tl.arange(0, BLOCK_H)
        rmask, cmask = rows < B, cols < H
        m2 = rmask[:, None] & cmask[None, :]
        offsets = rows[:, None] * H + cols[None, :]
        w = tl.load(w_ptr + cols[:, None] * H + cols[None, :], mask=cmask[:, None] & cmask[None, :], other=0.0)
        if PER_UNIT:
            slope = tl.load(slope_ptr + cols, mask=cmask, other=0.0)[None, :]
        else:
            slope = fixed_slope
        if HAS_GRAD_LAST:
            carry = tl.load(grad_last_ptr + offsets, mask=m2, other=0.0)
        else:
            carry = tl.zeros((BLOCK_ROWS, BLOCK_H), dtype=tl.float32)
        for i in range(T):
            t = T - 1 - i
            step = t * B * H
            g = carry
            if HAS_GRAD_OUT:
                g += tl.load(grad_out_ptr + step + offsets, mask=m2, other=0.0)
            if RECORD:
                g64 = g.to(tl.float64)
                tl.store(norms_ptr + t * B + rows, tl.sqrt(tl.sum(g64 * g64, axis=1)), mask=rmask)
            if STORE_GRAD_H:
                tl.store(grad_h_ptr + step + offsets, g, mask=m2)
            h = tl.load(out_ptr + step + offsets, mask=m2, other=0.0)
            if KEEP_PRE:
                a = tl.load(pre_ptr + step + offsets, mask=m2, other=0.0)
            else:
                a = h
            delta = tl.where(m2, g * _derivative(h, a, slope, ACT), 0.0)
            tl.store(delta_ptr + step + offsets, delta, mask=m2)
            if IEEE:
                carry = tl.dot(delta, w, input_precision="ieee")
            else:
                carry = tl.dot(delta, w, input_precision="tf32")
        tl.store(grad_h0_ptr + offsets, carry, mask=m2)


def _launch_shape(batch: int, hidden: int) -> tuple[tuple[int], int]:
    return (triton.cdiv(batch, BLOCK_B),), max(16, triton.next_power_of_2(hidden))


class TritonRNNFunction(torch.autograd.Function):
    """(x, h0, W_ih, W_hh, b_ih, b_hh, learned slope) -> (output (T, B, H), h_T), on the kernels."""

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
        activation,
        fixed_slope,
        record: LayerRecorders | None,
    ):
        ctx.set_materialize_grads(False)
        T, B, _ = x.shape
        H = weight_hh.shape[0]
        code = CODES[activation]
        keep = activation in ("leaky_relu", "prelu")
        bias = (
            None
            if bias_ih is None and bias_hh is None
            else (bias_ih if bias_hh is None else (bias_hh if bias_ih is None else bias_ih + bias_hh))
        )
        projected = torch.nn.functional.linear(x, weight_ih, bias).contiguous()  # (T, B, H)
        out = torch.empty_like(projected)
        pre = torch.empty_like(projected) if keep else out
        slope = learned_slope.contiguous() if learned_slope is not None else out
        grid, block_h = _launch_shape(B, H)
        _forward_kernel[grid](
            projected,
            h0.contiguous(),
            weight_hh.contiguous(),
            slope,
            out,
            pre,
            T,
            B,
            H,
            float(fixed_slope or 0.0),
            ACT=code,
            KEEP_PRE=keep,
            PER_UNIT=learned_slope is not None,
            IEEE=PRECISION == "ieee",
            BLOCK_ROWS=BLOCK_B,
            BLOCK_H=block_h,
        )
        ctx.activation, ctx.fixed_slope, ctx.record, ctx.keep = activation, fixed_slope, record, keep
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned_slope, out, pre if keep else None)
        return out, out[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h_last):
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned_slope, out, pre = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a backward that can itself be differentiated
            inputs = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned_slope)
            slope = learned_slope if learned_slope is not None else ctx.fixed_slope

            def recompute():
                return reference.rnn_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, ctx.activation, slope)

            return differentiable_backward(recompute, inputs, (grad_out, grad_h_last), 3)
        T, B, H = out.shape
        need_x, need_h0, need_w_ih, need_w_hh, need_b_ih, need_b_hh, need_slope = ctx.needs_input_grad[:7]
        grads, record = open_backward(
            ctx.record, (need_x, need_w_ih, need_w_hh, need_b_ih or need_b_hh), x, h0, out, weight_ih, H
        )
        delta = torch.empty_like(out)
        grad_h = torch.empty_like(out) if learned_slope is not None and need_slope else delta
        grad_h0 = torch.empty_like(h0)
        norms = torch.empty(T, B, dtype=torch.float64, device=out.device) if record is not None else delta
        slope = learned_slope.detach().contiguous() if learned_slope is not None else out
        grid, block_h = _launch_shape(B, H)
        _backward_kernel[grid](
            out,
            pre if pre is not None else out,
            weight_hh.contiguous(),
            slope,
            grad_out.contiguous() if grad_out is not None else out,
            grad_h_last.contiguous() if grad_h_last is not None else out,
            delta,
            grad_h,
            grad_h0,
            norms,
            T,
            B,
            H,
            float(ctx.fixed_slope or 0.0),
            ACT=CODES[ctx.activation],
            KEEP_PRE=pre is not None,
            PER_UNIT=learned_slope is not None,
            HAS_GRAD_OUT=grad_out is not None,
            HAS_GRAD_LAST=grad_h_last is not None,
            RECORD=record is not None,
            STORE_GRAD_H=grad_h is not delta,
            IEEE=PRECISION == "ieee",
            BLOCK_ROWS=BLOCK_B,
            BLOCK_H=block_h,
        )
        if record is not None:
            record.hidden.put_norms(0, norms)
        grads.chunk(0, T, delta.view(T * B, H), delta.view(T * B, H))
        grad_slope = None
        if grad_h is not delta:  # dL/dw_j = sum_{t,b} dL/dh_t[b,j] * min(a_t[b,j], 0)
            grad_slope = (grad_h * pre.clamp(max=0)).sum((0, 1))
        grad_b_ih, grad_b_hh = split_bias_grad(grads.grad_b, ctx.has_bias)
        return (
            grads.grad_x,
            grad_h0 if need_h0 else None,
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
    *,
    watch: StepWatch | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The simple RNN on the kernels (float32); the fast engine where they cannot run (see the module
    docstring), the reference loop while a ``watch`` is given."""
    if watch is not None:
        return reference.rnn_layer(
            x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation, slope, record, watch=watch
        )
    if x.shape[0] == 0 or not available(x) or not supports(activation, weight_hh.shape[0]) or x.dtype != torch.float32:
        return fast_rnn.rnn_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation, slope, record)
    act = ACTIVATIONS.get(activation)
    learned = slope if act.learned_slope else None
    fixed = (act.default_slope if slope is None else slope) if act.has_slope and not act.learned_slope else None
    return TritonRNNFunction.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, learned, activation, fixed, record)
