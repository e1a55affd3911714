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
gradients, records); the loops themselves are ``LSTMLoops``: ``PYTHON_LOOPS`` here, or the
compiled ones of ``bptt.engine.compiled``.
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


class PythonLoops:
    """The loops in torch operations, one step at a time. Both tanh run as 2 sigmoid(2a) - 1 (torch.tanh
    costs about five torch.sigmoid on a CPU), and the backward's per-step factors are computed for a whole
    chunk at once, so a step costs one matrix product and four elementwise products."""

    @staticmethod
    def forward(gates, cells, tanh_cells, cell_out, out, h0, c0, weight_hh, weight_hr) -> None:
        H = cells.shape[2]
        weight_hr_t = None if weight_hr is None else weight_hr.t().contiguous()  # (H, P)
        # The g block's pre-activation is doubled, then one sigmoid covers all four gates.
        blocks = gates.view(*gates.shape[:2], 4, H)
        blocks[:, :, 2].mul_(2)
        # A copy (not .contiguous(), which returns weight_hh itself when a side is 1): it is scaled in place below.
        weight_hh_t = weight_hh.new_empty(weight_hh.shape[1], weight_hh.shape[0]).copy_(weight_hh.t())  # (P, 4H)
        weight_hh_t[:, 2 * H : 3 * H].mul_(2)
        i, f, g, o = (blocks[:, :, k].unbind(0) for k in range(4))
        # 0-d tensors: a Python number costs a conversion per op; filled on the device, so a CUDA graph can
        # capture the step (a copy from the host cannot be captured).
        one, two = gates.new_ones(()), gates.new_full((), 2.0)
        h, c = h0, c0
        for t, (gates_t, c_t, tanh_c, m_t, h_t) in enumerate(
            zip(gates.unbind(0), cells.unbind(0), tanh_cells.unbind(0), cell_out.unbind(0), out.unbind(0))
        ):
            gates_t.addmm_(h, weight_hh_t)
            torch.sigmoid_(gates_t)
            g[t].mul_(two).sub_(one)
            torch.mul(f[t], c, out=c_t)
            c_t.addcmul_(i[t], g[t])
            torch.mul(c_t, two, out=tanh_c)
            torch.sigmoid_(tanh_c)
            tanh_c.mul_(two).sub_(one)
            torch.mul(o[t], tanh_c, out=m_t)
            if weight_hr_t is not None:
                torch.mm(m_t, weight_hr_t, out=h_t)
            h, c = h_t, c_t

    @staticmethod
    def backward(
        gates, cells, tanh_cells, c_prev_first, grad_h, grad_gates, grad_gates_next, carry, weight_hh, weight_hr,
        grad_m, norms_h, norms_c,
    ) -> None:  # fmt: skip
        n, B, H = cells.shape
        c_prev = torch.cat([c_prev_first.unsqueeze(0), cells[:-1]])
        factors = cells.new_empty(n, B, 4, H)  # multiply [dc, dc, dc, dm]
        cell_factor = cells.new_empty(n, B, H)  # o * (1 - tanh^2 c)
        grad_c = cells.new_empty(n, B, 1, H)
        blocks = gates.view(n, B, 4, H)
        i, f, g, o = blocks.unbind(2)
        torch.mul(i, 1 - i, out=factors[:, :, 0]).mul_(g)
        torch.mul(f, 1 - f, out=factors[:, :, 1]).mul_(c_prev)
        torch.mul(g, g, out=factors[:, :, 2]).neg_().add_(1).mul_(i)
        torch.mul(o, 1 - o, out=factors[:, :, 3]).mul_(tanh_cells)
        torch.mul(tanh_cells, tanh_cells, out=cell_factor).neg_().add_(1).mul_(o)
        grad_gates4 = grad_gates.view(n, B, 4, H)
        f_ifg, f_o = factors[:, :, 0:3].unbind(0), factors[:, :, 3].unbind(0)
        dG_ifg, dG_o = grad_gates4[:, :, 0:3].unbind(0), grad_gates4[:, :, 3].unbind(0)
        forget = f.unbind(0)
        later = grad_gates_next
        for k in range(n - 1, -1, -1):
            dh, dc, dc_flat = grad_h[k], grad_c[k], grad_c[k].view(B, H)
            if later is not None:
                dh.addmm_(later, weight_hh)
            dm = dh if weight_hr is None else torch.mm(dh, weight_hr, out=grad_m[k])
            torch.addcmul(carry, dm, cell_factor[k], out=dc_flat)
            torch.mul(dc, f_ifg[k], out=dG_ifg[k])
            torch.mul(dm, f_o[k], out=dG_o[k])
            torch.mul(dc_flat, forget[k], out=carry)
            later = grad_gates[k]
        if norms_h is not None:
            torch.linalg.vector_norm(grad_h, dim=-1, dtype=torch.float64, out=norms_h)
        if norms_c is not None:
            torch.linalg.vector_norm(grad_c.view(n, B, H), dim=-1, dtype=torch.float64, out=norms_c)


PYTHON_LOOPS = PythonLoops()


class LSTMFunction(torch.autograd.Function):
    """(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr) -> (output (T, B, P or H), h_T, c_T), on ``loops``."""

    @staticmethod
    def forward(
        ctx, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, record: LayerRecorders | None, loops
    ):
        ctx.set_materialize_grads(False)
        T, B, I = x.shape
        H = weight_hh.shape[0] // 4
        gates = x.new_empty(T, B, 4 * H)
        project(x.reshape(T * B, I), weight_ih, add_bias(bias_ih, bias_hh), gates.view(T * B, 4 * H))
        cells = x.new_empty(T, B, H)
        tanh_cells = x.new_empty(T, B, H)
        out = x.new_empty(T, B, H if weight_hr is None else weight_hr.shape[0])
        cell_out = out if weight_hr is None else x.new_empty(T, B, H)  # m_t = o * tanh(c_t)
        weight_hr_c = None if weight_hr is None else weight_hr.contiguous()
        loops.forward(
            gates,
            cells,
            tanh_cells,
            cell_out,
            out,
            h0.contiguous(),
            c0.contiguous(),
            weight_hh.contiguous(),
            weight_hr_c,
        )
        ctx.record, ctx.loops = record, loops
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        stored = (gates, cells, tanh_cells, None if weight_hr is None else cell_out, out)
        ctx.save_for_backward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, *stored)
        return out, out[-1].clone(), cells[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h_last, grad_c_last):
        (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, gates, cells, tanh_cells, cell_out, out) = (
            ctx.saved_tensors
        )
        if torch.is_grad_enabled():  # create_graph=True: a backward that can itself be differentiated
            inputs = (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr)

            def recompute():
                output, (h_n, c_n) = reference.lstm_layer(
                    x, (h0, c0), weight_ih, weight_hh, bias_ih, bias_hh, weight_hr=weight_hr
                )
                return output, h_n, c_n

            return differentiable_backward(recompute, inputs, (grad_out, grad_h_last, grad_c_last), 2)
        T, B, P = out.shape  # P = H without a projection
        H = cells.shape[2]
        need_x, need_h0, need_c0, need_w_ih, need_w_hh, need_b_ih, need_b_hh, need_w_hr = ctx.needs_input_grad[:8]
        grads, record = open_backward(
            ctx.record, (need_x, need_w_ih, need_w_hh, need_b_ih or need_b_hh), x, h0, out, weight_ih, 4 * H
        )
        grad_w_hr = out.new_zeros(P, H) if weight_hr is not None and need_w_hr else None
        weight_hh = weight_hh.contiguous()
        weight_hr = None if weight_hr is None else weight_hr.contiguous()

        K = chunk_steps(T, B, H)
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
            ctx.loops.backward(
                gates[start:end],
                cells[start:end],
                tanh_cells[start:end],
                cells[start - 1] if start > 0 else c0.contiguous(),
                grad_h,
                grad_gates,
                grad_gates_next,
                carry,
                weight_hh,
                weight_hr,
                None if grad_m_buf is None else grad_m_buf[:n],
                norms_h,
                norms_c,
            )
            flat = grad_gates.view(n * B, 4 * H)
            grads.chunk(start, end, flat, flat)
            if grad_w_hr is not None:
                grad_w_hr.addmm_(grad_h.view(n * B, P).t(), cell_out[start:end].reshape(n * B, H))
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
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``lstm_layer`` on the given loops."""
    if record is not None and record.cell is None:
        raise ValueError("an LSTM's record needs a cell recorder as well as the hidden one")
    if x.shape[0] == 0:
        return reference.lstm_layer(x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr=weight_hr)
    out, h_n, c_n = LSTMFunction.apply(
        x, state[0], state[1], weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, record, loops
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
