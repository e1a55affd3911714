r"""Hand-written BPTT for torch.nn.GRU's cell, gates in order r, z, n.

Forward (tensors time-major, (T, B, .)), with u_n = h_{t-1} W_hn^T + b_hn the
recurrent part of the candidate:

    r = sigma(x W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr),  z likewise,
    n = tanh(x W_in^T + b_in + r * u_n),   h_t = (1 - z) * n + z * h_{t-1}

Stored for backward: r, z, n (T, B, 3H), u_n (T, B, H) and the outputs.

Backward, from t = T down to 1, with y_t the gradient of output t:

    dn~ = dh_t (1 - z)(1 - n^2)           (gradient of n's pre-activation)
    dz~ = dh_t (h_{t-1} - n) z(1 - z)
    dr~ = dn~ u_n r(1 - r),   du_n = dn~ r
    dL/dh_{t-1} = y_{t-1} + dh_t z + [dr~, dz~, du_n] W_hh

``GRUFunction`` holds what every way of running the loops shares; the loops are ``GRULoops``:
``bptt.engine.python_loops``, or the compiled ones of ``bptt.engine.compiled``.
"""

from __future__ import annotations

from typing import Protocol

import torch

from bptt.engine import reference
from bptt.engine.common import (
    chunk_steps,
    chunks_backward,
    differentiable_backward,
    open_backward,
    project,
    split_bias_grad,
)
from bptt.engine.python_loops import GRU_LOOPS as PYTHON_LOOPS
from bptt.engine.recording import LayerRecorders
from bptt.engine.reference import StepWatch


class GRULoops(Protocol):
    """The two time loops of the GRU, over buffers the caller made (contiguous, time-major)."""

    def forward(
        self,
        gates: torch.Tensor,
        candidate: torch.Tensor,
        out: torch.Tensor,
        h0: torch.Tensor,
        weight_hh: torch.Tensor,
        bias_hn: torch.Tensor | None,
    ) -> None:
        """Over all steps: ``gates`` hold the input terms (b_hr and b_hz included) on entry and the
        activated [r, z, n] on return; ``candidate`` gets u_n, ``out`` h_t."""

    def backward(
        self,
        gates: torch.Tensor,
        candidate: torch.Tensor,
        out: torch.Tensor,
        h_prev_first: torch.Tensor,
        grad_h: torch.Tensor,
        delta: torch.Tensor,
        delta_next: torch.Tensor | None,
        carry: torch.Tensor,
        has_next: bool,
        weight_perm: torch.Tensor,
        norms: torch.Tensor | None,
    ) -> None:
        """One chunk, last step first (the arguments are described in ``csrc/loops.cpp``)."""


def _input_bias(bias_ih: torch.Tensor | None, bias_hh: torch.Tensor | None, H: int) -> torch.Tensor | None:
    """The bias of the input term: b_ir + b_hr and b_iz + b_hz for r and z; b_in alone (b_hn stays inside
    r * u_n)."""
    if bias_hh is None:
        return bias_ih
    hh = torch.cat([bias_hh[: 2 * H], bias_hh.new_zeros(H)])
    return hh if bias_ih is None else bias_ih + hh


def _forward_chunk(loops, x, weight_ih, weight_hh, bias, bias_hn, start, end, h_prev, gates, candidate, out) -> None:
    """Steps start..end-1 from h_prev: the input projection into ``gates``, then the loop (``out`` gets h_t)."""
    n, B, G = gates.shape
    project(x[start:end].reshape(n * B, -1), weight_ih, bias, gates.view(n * B, G))
    loops.forward(gates, candidate, out, h_prev, weight_hh, bias_hn)


class GRUFunction(torch.autograd.Function):
    """(x, h0, W_ih, W_hh, b_ih, b_hh) -> (output (T, B, H), h_T), on ``loops``.

    ``keep_every`` None stores every step for the backward; an integer K keeps the outputs only and runs
    the forward again over each chunk of K steps in the backward (as ``bptt.engine.lstm.LSTMFunction``).
    """

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record: LayerRecorders | None, loops, keep_every):
        ctx.set_materialize_grads(False)
        T, B, _ = x.shape
        H = weight_hh.shape[1]
        weight_hh_c = weight_hh.contiguous()
        bias, bias_hn = _input_bias(bias_ih, bias_hh, H), (None if bias_hh is None else bias_hh[2 * H :].contiguous())
        out = x.new_empty(T, B, H)
        K = T if keep_every is None else keep_every
        gates = x.new_empty(K, B, 3 * H)
        candidate = x.new_empty(K, B, H)  # u_n = h_{t-1} W_hn^T + b_hn at every step
        h_prev = h0.contiguous()
        for start in range(0, T, K):
            end = min(start + K, T)
            n = end - start
            _forward_chunk(
                loops, x, weight_ih, weight_hh_c, bias, bias_hn, start, end, h_prev, gates[:n], candidate[:n],
                out[start:end],
            )  # fmt: skip
            h_prev = out[end - 1]
        ctx.record, ctx.loops, ctx.keep_every = record, loops, keep_every
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        stored = (gates, candidate) if keep_every is None else (None, None)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, out, *stored)
        return out, out[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h_last):
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, out, gates, candidate = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a backward that can itself be differentiated
            inputs = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
            recompute = lambda: reference.gru_layer(*inputs)  # noqa: E731
            return differentiable_backward(recompute, inputs, (grad_out, grad_h_last), 3)
        T, B, H = out.shape
        need_x, need_h0, need_w_ih, need_w_hh, need_b_ih, need_b_hh = ctx.needs_input_grad[:6]
        grads, record = open_backward(
            ctx.record, (need_x, need_w_ih, need_w_hh, need_b_ih or need_b_hh), x, h0, out, weight_ih, 3 * H
        )
        grad_b_n = out.new_zeros(H) if need_b_hh and ctx.has_bias[1] else None
        # W_hh with its blocks ordered (n, r, z), to match the layout [du_n, dr~, dz~, dn~] below.
        weight_perm = torch.cat([weight_hh[2 * H :], weight_hh[: 2 * H]])
        h0 = h0.contiguous()

        if ctx.keep_every is None:
            K = chunk_steps(T, B, H)

            def chunk_values(start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
                return gates[start:end], candidate[start:end]

        else:  # the forward once more, one chunk at a time, from the outputs
            K = ctx.keep_every
            gates_buf, candidate_buf, scratch = (
                out.new_empty(K, B, 3 * H),
                out.new_empty(K, B, H),
                out.new_empty(K, B, H),
            )
            weight_hh_c, bias = weight_hh.contiguous(), _input_bias(bias_ih, bias_hh, H)
            bias_hn = None if bias_hh is None else bias_hh[2 * H :].contiguous()

            def chunk_values(start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
                n = end - start
                h_prev = out[start - 1] if start > 0 else h0
                chunk = (gates_buf[:n], candidate_buf[:n])
                _forward_chunk(
                    ctx.loops, x, weight_ih, weight_hh_c, bias, bias_hn, start, end, h_prev, *chunk, scratch[:n]
                )
                return chunk

        grad_h_buf = out.new_empty(K, B, H)
        delta_buf = out.new_empty(K, B, 4 * H)  # [du_n, dr~, dz~, dn~]
        norms_buf = out.new_empty(K, B, dtype=torch.float64) if record is not None else None
        carry = out.new_zeros(B, H)  # dL/dh_{t+1} * z_{t+1}
        delta_next = None
        for start, end in chunks_backward(T, K):
            m = end - start
            grad_h, delta = grad_h_buf[:m], delta_buf[:m]
            if grad_out is not None:
                grad_h.copy_(grad_out[start:end])
            else:
                grad_h.zero_()
            if end == T and grad_h_last is not None:
                grad_h[-1] += grad_h_last
            norms = None if norms_buf is None else norms_buf[:m]
            ctx.loops.backward(
                *chunk_values(start, end),
                out[start:end],
                out[start - 1] if start > 0 else h0,
                grad_h,
                delta,
                delta_next,
                carry,
                delta_next is not None,
                weight_perm,
                norms,
            )
            flat = delta.view(m * B, 4 * H)
            grads.chunk(start, end, flat[:, H:], flat[:, : 3 * H])
            if grad_b_n is not None:
                grad_b_n += flat[:, :H].sum(0)
            if record is not None:
                record.hidden.put_norms(start, norms, out.dtype)
            if delta_next is None:
                delta_next = out.new_empty(B, 4 * H)
            delta_next.copy_(delta[0])
        grad_h0 = None
        if need_h0:  # carry = dL/dh_0 * z_0
            grad_h0 = carry.addmm_(delta_next[:, : 3 * H], weight_perm)
        grad_w_hh = None
        if grads.grad_w_hh is not None:
            g = grads.grad_w_hh  # blocks (n, r, z)
            grad_w_hh = torch.cat([g[H:], g[:H]])
        # [dr~, dz~, dn~] summed; b_hn's block is du_n's
        grad_b_ih, grad_b_hh = split_bias_grad(grads.grad_b, (ctx.has_bias[0], grad_b_n is not None), grad_b_n)
        return grads.grad_x, grad_h0, grads.grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, None, None, None


def run(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    record: LayerRecorders | None,
    loops: GRULoops,
    keep_every: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``gru_layer`` on the given loops, storing every step or (``keep_every``) recomputing."""
    if x.shape[0] == 0:
        return reference.gru_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record)
    return GRUFunction.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record, loops, keep_every)


def gru_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    record: LayerRecorders | None = None,
    *,
    watch: StepWatch | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.nn.GRU's cell over all steps; same signature and results as
    ``bptt.engine.reference.gru_layer``, which runs instead while a ``watch`` is given."""
    if watch is not None:
        return reference.gru_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record, watch=watch)
    return run(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record, PYTHON_LOOPS)
