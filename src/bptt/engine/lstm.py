r"""Hand-written BPTT for torch.nn.LSTM's cell, gates in order i, f, g, o.

Forward (tensors time-major, (T, B, .)):

    [i, f, g, o] = [sigma, sigma, tanh, sigma](x_t W_ih^T + b_ih + b_hh + h_{t-1} W_hh^T)
    c_t = f * c_{t-1} + i * g,    h_t = o * tanh(c_t)

With a projection (torch.nn.LSTM's ``proj_size`` P), m_t = o * tanh(c_t) and
h_t = m_t W_hr^T (B, P); W_hh is (4H, P).

Stored for backward: the activated gates (T, B, 4H), c_t and tanh(c_t)
(T, B, H each), m_t with a projection, and the outputs h_t.

Backward, from t = T down to 1, with dG_t the gradient of the gate
pre-activations and y_t the gradient of output t:

    dL/dh_t = y_t + dG_{t+1} W_hh                       (plus dL/dh_n at t = T)
    dL/dm_t = dL/dh_t W_hr                               (dL/dh_t itself without a projection)
    dL/dc_t = dL/dc_{t+1} * f_{t+1} + dL/dm_t * o * (1 - tanh^2 c_t)   (plus dL/dc_n at t = T)
    dG_t = [dc * g * i(1-i),  dc * c_{t-1} * f(1-f),  dc * i * (1-g^2),  dm * tanh c_t * o(1-o)]
    dL/dW_hr = sum_t dL/dh_t^T m_t

``LSTMFunction`` holds what every way of running these loops shares (buffers, chunks, weight
gradients, records); the loops themselves are ``LSTMLoops``: those of ``bptt.engine.python_loops``, or
the compiled ones of ``bptt.engine.compiled``.
"""

from __future__ import annotations

from typing import Protocol

import torch

from bptt.engine import reference
from bptt.engine.common import (
    add_bias,
    chunk_steps,
    chunks_backward,
    differentiable_backward,
    open_backward,
    project,
    split_bias_grad,
)
from bptt.engine.python_loops import LSTM_LOOPS as PYTHON_LOOPS
from bptt.engine.recording import LayerRecorders
from bptt.engine.reference import StepWatch


class LSTMLoops(Protocol):
    """The two time loops of the LSTM, over buffers the caller made (contiguous, time-major)."""

    def forward(
        self,
        gates: torch.Tensor,
        cells: torch.Tensor,
        tanh_cells: torch.Tensor,
        cell_out: torch.Tensor,
        out: torch.Tensor,
        h0: torch.Tensor,
        c0: torch.Tensor,
        weight_hh: torch.Tensor,
        weight_hr: torch.Tensor | None,
    ) -> None:
        """Over all steps: ``gates`` hold the input terms on entry and the activated gates on return."""

    def backward(
        self,
        gates: torch.Tensor,
        cells: torch.Tensor,
        tanh_cells: torch.Tensor,
        c_prev_first: torch.Tensor,
        grad_h: torch.Tensor,
        grad_gates: torch.Tensor,
        grad_gates_next: torch.Tensor | None,
        carry: torch.Tensor,
        weight_hh: torch.Tensor,
        weight_hr: torch.Tensor | None,
        grad_m: torch.Tensor | None,
        norms_h: torch.Tensor | None,
        norms_c: torch.Tensor | None,
    ) -> None:
        """One chunk, last step first (the arguments are described in ``csrc/loops.cpp``)."""


def _forward_chunk(loops, x, weights, bias, start, end, h_prev, c_prev, buffers, out) -> None:
    """Steps start..end-1 from (h_prev, c_prev): the input projection into ``buffers``' gates, then the loop.
    ``buffers`` = (gates, cells, tanh_cells, cell_out), each with end - start steps; ``out`` gets h_t."""
    weight_ih, weight_hh, weight_hr = weights
    gates = buffers[0]
    n, B, G = gates.shape
    project(x[start:end].reshape(n * B, -1), weight_ih, bias, gates.view(n * B, G))
    loops.forward(*buffers, out, h_prev, c_prev, weight_hh, weight_hr)


def _buffers(like: torch.Tensor, steps: int, batch: int, hidden: int, projected: bool) -> tuple:
    """(gates, cells, tanh_cells, cell_out) for ``steps`` steps; cell_out only with a projection (else out)."""
    make = lambda width: like.new_empty(steps, batch, width)  # noqa: E731
    return make(4 * hidden), make(hidden), make(hidden), make(hidden) if projected else None


class LSTMFunction(torch.autograd.Function):
    """(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr) -> (output (T, B, P or H), h_T, c_T), on ``loops``.

    ``keep_every`` None stores every step for the backward. An integer K recomputes instead: the forward
    keeps the outputs and c_t at the end of every chunk of K steps only, and the backward runs the forward
    again over each chunk, from its kept state, just before it needs it (the "recompute" engine: about one
    (T, B, P) tensor rather than seven, for one more forward).
    """

    @staticmethod
    def forward(
        ctx,
        x,
        h0,
        c0,
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
        weight_hr,
        record: LayerRecorders | None,
        loops,
        keep_every: int | None,
    ):
        ctx.set_materialize_grads(False)
        T, B, _ = x.shape
        H = weight_hh.shape[0] // 4
        weights = (weight_ih, weight_hh.contiguous(), None if weight_hr is None else weight_hr.contiguous())
        bias = add_bias(bias_ih, bias_hh)
        out = x.new_empty(T, B, H if weight_hr is None else weight_hr.shape[0])
        K = T if keep_every is None else keep_every
        gates, cells, tanh_cells, cell_out = _buffers(x, K, B, H, weight_hr is not None)
        kept = x.new_empty((T + K - 1) // K, B, H)  # c_t at the last step of every chunk
        h_prev, c_prev = h0.contiguous(), c0.contiguous()
        for index, start in enumerate(range(0, T, K)):
            end = min(start + K, T)
            n = end - start
            m = out[start:end] if cell_out is None else cell_out[:n]  # m_t = o * tanh(c_t)
            chunk = (gates[:n], cells[:n], tanh_cells[:n], m)
            _forward_chunk(loops, x, weights, bias, start, end, h_prev, c_prev, chunk, out[start:end])
            h_prev, c_prev = out[end - 1], kept[index].copy_(cells[n - 1])
        ctx.record, ctx.loops, ctx.keep_every = record, loops, keep_every
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        stored = (None,) * 4 if keep_every is not None else (gates, cells, tanh_cells, cell_out)
        ctx.save_for_backward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, out, kept, *stored)
        return out, out[-1].clone(), kept[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h_last, grad_c_last):
        (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, out, kept, *stored) = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a backward that can itself be differentiated
            inputs = (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr)

            def recompute():
                output, (h_n, c_n) = reference.lstm_layer(
                    x, (h0, c0), weight_ih, weight_hh, bias_ih, bias_hh, weight_hr=weight_hr
                )
                return output, h_n, c_n

            return differentiable_backward(recompute, inputs, (grad_out, grad_h_last, grad_c_last), 3)
        T, B, P = out.shape  # P = H without a projection
        H = weight_hh.shape[0] // 4
        need_x, need_h0, need_c0, need_w_ih, need_w_hh, need_b_ih, need_b_hh, need_w_hr = ctx.needs_input_grad[:8]
        grads, record = open_backward(
            ctx.record, (need_x, need_w_ih, need_w_hh, need_b_ih or need_b_hh), x, h0, out, weight_ih, 4 * H
        )
        grad_w_hr = out.new_zeros(P, H) if weight_hr is not None and need_w_hr else None
        weights = (weight_ih, weight_hh.contiguous(), None if weight_hr is None else weight_hr.contiguous())
        weight_hh, weight_hr = weights[1:]
        h0, c0 = h0.contiguous(), c0.contiguous()

        if ctx.keep_every is None:
            K = chunk_steps(T, B, H)
            gates, cells, tanh_cells, cell_out = stored

            def chunk_values(start: int, end: int) -> tuple:
                m = out[start:end] if cell_out is None else cell_out[start:end]
                c_prev = cells[start - 1] if start > 0 else c0
                return gates[start:end], cells[start:end], tanh_cells[start:end], m, c_prev

        else:  # the forward once more, one chunk at a time, from the kept states
            K = ctx.keep_every
            buffers, scratch = _buffers(out, K, B, H, weight_hr is not None), out.new_empty(K, B, P)
            bias = add_bias(bias_ih, bias_hh)

            def chunk_values(start: int, end: int) -> tuple:
                n = end - start
                m = scratch[:n] if buffers[3] is None else buffers[3][:n]
                chunk = (buffers[0][:n], buffers[1][:n], buffers[2][:n], m)
                h_prev = out[start - 1] if start > 0 else h0
                c_prev = kept[start // K - 1] if start > 0 else c0
                _forward_chunk(ctx.loops, x, weights, bias, start, end, h_prev, c_prev, chunk, scratch[:n])
                return (*chunk, c_prev)

        grad_h_buf = out.new_empty(K, B, P)
        grad_m_buf = None if weight_hr is None else out.new_empty(K, B, H)  # dL/dm_t
        grad_gates_buf = out.new_empty(K, B, 4 * H)
        grad_gates_next = None
        norms = [out.new_empty(K, B, dtype=torch.float64) for _ in range(2)] if record is not None else [None] * 2
        carry = out.new_zeros(B, H) if grad_c_last is None else grad_c_last.contiguous().clone()  # dc_{t+1} f_{t+1}
        for start, end in chunks_backward(T, K):
            n = end - start
            grad_h, grad_gates = grad_h_buf[:n], grad_gates_buf[:n]
            if grad_out is not None:
                grad_h.copy_(grad_out[start:end])
            else:
                grad_h.zero_()
            if end == T and grad_h_last is not None:
                grad_h[-1] += grad_h_last
            norms_h, norms_c = (None, None) if record is None else (norms[0][:n], norms[1][:n])
            gates_k, cells_k, tanh_k, cell_out_k, c_prev = chunk_values(start, end)
            grad_m = None if grad_m_buf is None else grad_m_buf[:n]
            ctx.loops.backward(
                gates_k, cells_k, tanh_k, c_prev, grad_h, grad_gates, grad_gates_next, carry, weight_hh, weight_hr,
                grad_m, norms_h, norms_c,
            )  # fmt: skip
            flat = grad_gates.view(n * B, 4 * H)
            grads.chunk(start, end, flat, flat)
            if grad_w_hr is not None:
                grad_w_hr.addmm_(grad_h.view(n * B, P).t(), cell_out_k.reshape(n * B, H))
            if record is not None:
                record.hidden.put_norms(start, norms_h, out.dtype)
                if record.cell is not None:
                    record.cell.put_norms(start, norms_c, out.dtype)
            if grad_gates_next is None:
                grad_gates_next = out.new_empty(B, 4 * H)
            grad_gates_next.copy_(grad_gates[0])
        grad_h0 = torch.mm(grad_gates_next, weight_hh) if need_h0 else None
        grad_c0 = carry if need_c0 else None
        grad_b_ih, grad_b_hh = split_bias_grad(grads.grad_b, ctx.has_bias)
        return (
            grads.grad_x,
            grad_h0,
            grad_c0,
            grads.grad_w_ih,
            grads.grad_w_hh,
            grad_b_ih,
            grad_b_hh,
            grad_w_hr,
            None,
            None,
            None,
        )


def run(
    x: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    record: LayerRecorders | None,
    weight_hr: torch.Tensor | None,
    loops: LSTMLoops,
    keep_every: int | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``lstm_layer`` on the given loops, storing every step or (``keep_every``) recomputing."""
    if record is not None and record.cell is None:
        raise ValueError("an LSTM's record needs a cell recorder as well as the hidden one")
    if x.shape[0] == 0:
        return reference.lstm_layer(x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr=weight_hr)
    out, h_n, c_n = LSTMFunction.apply(
        x, state[0], state[1], weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, record, loops, keep_every
    )
    return out, (h_n, c_n)


def lstm_layer(
    x: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    record: LayerRecorders | None = None,
    *,
    weight_hr: torch.Tensor | None = None,
    watch: StepWatch | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """torch.nn.LSTM's cell over all steps, with the projection ``weight_hr`` when given; same signature
    and results as ``bptt.engine.reference.lstm_layer``, which runs instead while a ``watch`` is given.
    ``record`` needs both recorders."""
    if watch is not None:
        return reference.lstm_layer(
            x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr=weight_hr, watch=watch
        )
    return run(x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr, PYTHON_LOOPS)
