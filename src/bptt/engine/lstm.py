r"""Hand-written BPTT for torch.nn.LSTM's cell, gates in order i, f, g, o.

Forward (tensors time-major, (T, B, .)):

    [i, f, g, o] = [sigma, sigma, tanh, sigma](x_t W_ih^T + b_ih + b_hh + h_{t-1} W_hh^T)
    c_t = f * c_{t-1} + i * g,    h_t = o * tanh(c_t)

With a projection (torch.nn.LSTM's ``proj_size`` P), m_t = o * tanh(c_t) and
h_t = m_t W_hr^T (B, P); W_hh is (4H, P).

Stored for backward: the activated gates (T, B, 4H), c_t and tanh(c_t)
(T, B, H each), m_t with a projection, and the outputs h_t. Both tanh run as
2 sigmoid(2a) - 1: torch.tanh costs about five torch.sigmoid on a CPU.

Backward, from t = T down to 1, with dG_t the gradient of the gate
pre-activations and y_t the gradient of output t:

    dL/dh_t = y_t + dG_{t+1} W_hh                       (plus dL/dh_n at t = T)
    dL/dm_t = dL/dh_t W_hr                               (dL/dh_t itself without a projection)
    dL/dc_t = dL/dc_{t+1} * f_{t+1} + dL/dm_t * o * (1 - tanh^2 c_t)   (plus dL/dc_n at t = T)
    dG_t = [dc * g * i(1-i),  dc * c_{t-1} * f(1-f),  dc * i * (1-g^2),  dm * tanh c_t * o(1-o)]
    dL/dW_hr = sum_t dL/dh_t^T m_t

The factors that multiply dL/dc_t and dL/dh_t are computed for a whole chunk
at once, so a step costs one matrix product and four elementwise products.
"""

from __future__ import annotations

import torch

from bptt.engine import reference
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


class LSTMFunction(torch.autograd.Function):
    """(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr) -> (output (T, B, P or H), h_T, c_T)."""

    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, record: LayerRecorders | None):
        ctx.set_materialize_grads(False)
        T, B, I = x.shape
        H = weight_hh.shape[0] // 4
        x2d = x.reshape(T * B, I)
        gates = x.new_empty(T, B, 4 * H)
        project(x2d, weight_ih, add_bias(bias_ih, bias_hh), gates.view(T * B, 4 * H))
        cells = x.new_empty(T, B, H)
        tanh_cells = x.new_empty(T, B, H)
        out = x.new_empty(T, B, H if weight_hr is None else weight_hr.shape[0])
        cell_out = out if weight_hr is None else x.new_empty(T, B, H)  # m_t = o * tanh(c_t)
        weight_hr_t = None if weight_hr is None else weight_hr.t().contiguous()  # (H, P)
        # tanh(a) = 2 sigmoid(2a) - 1 (torch.tanh costs about five torch.sigmoid on a CPU):
        # the g block's pre-activation is doubled, then one sigmoid covers all four gates.
        blocks = gates.view(T, B, 4, H)
        blocks[:, :, 2].mul_(2)
        # A copy (not .contiguous(), which returns weight_hh itself when a side is 1): it is scaled in place below.
        weight_hh_t = weight_hh.new_empty(weight_hh.shape[1], weight_hh.shape[0]).copy_(weight_hh.t())  # (H or P, 4H)
        weight_hh_t[:, 2 * H : 3 * H].mul_(2)
        i, f, g, o = (blocks[:, :, k].unbind(0) for k in range(4))
        # 0-d tensors: a Python number costs a conversion per op; filled on the device, so a CUDA graph can
        # capture the step (a copy from the host cannot be captured).
        one, two = x.new_ones(()), x.new_full((), 2.0)
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
        ctx.record = record
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        ctx.save_for_backward(
            x,
            h0,
            c0,
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
            weight_hr,
            gates,
            cells,
            tanh_cells,
            None if weight_hr is None else cell_out,
            out,
        )
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

            return (*differentiable_grads(recompute, inputs, (grad_out, grad_h_last, grad_c_last)), None)
        T, B, P = out.shape  # P = H without a projection
        H = cells.shape[2]
        x2d = x.reshape(T * B, -1)
        need_x, need_h0, need_c0, need_w_ih, need_w_hh, need_b_ih, need_b_hh, need_w_hr = ctx.needs_input_grad[:8]
        grads = WeightGrads(
            (need_x, need_w_ih, need_w_hh, need_b_ih or need_b_hh),
            x2d,
            h0,
            out,
            weight_ih,
            4 * H,
            None if ctx.record is None else ctx.record.terms(),
        )
        grad_w_hr = out.new_zeros(P, H) if weight_hr is not None and need_w_hr else None
        record = ctx.record if ctx.record is not None and ctx.record.active() else None

        K = chunk_steps(T, B, H)
        factors_buf = out.new_empty(K, B, 4, H)  # multiply [dc, dc, dc, dm]
        cell_factor_buf = out.new_empty(K, B, H)  # o * (1 - tanh^2 c)
        grad_h_buf = out.new_empty(K, B, P)
        grad_m_buf = grad_h_buf if weight_hr is None else out.new_empty(K, B, H)  # dL/dm_t
        grad_c_buf = out.new_empty(K, B, 1, H)
        grad_gates_buf = out.new_empty(K, B, 4, H)
        c_prev_first = out.new_empty(min(K, T), B, H)
        carry = out.new_empty(B, H)  # dL/dc_{t+1} * f_{t+1}
        blocks = gates.view(T, B, 4, H)
        forget = blocks[:, :, 1].unbind(0)
        grad_gates_next = None
        for start, end in chunks_backward(T, K):
            n = end - start
            factors, cell_factor = factors_buf[:n], cell_factor_buf[:n]
            grad_h, grad_c, grad_gates = grad_h_buf[:n], grad_c_buf[:n], grad_gates_buf[:n]
            grad_m_steps = grad_m_buf[:n].unbind(0)
            if start > 0:
                c_prev = cells[start - 1 : end - 1]
            else:
                c_prev = c_prev_first[:n]
                c_prev[0] = c0
                c_prev[1:] = cells[0 : end - 1]
            _chunk_factors(blocks[start:end], tanh_cells[start:end], c_prev, factors, cell_factor)
            f_ifg, f_o = factors[:, :, 0:3].unbind(0), factors[:, :, 3].unbind(0)
            dG_ifg, dG_o = grad_gates[:, :, 0:3].unbind(0), grad_gates[:, :, 3].unbind(0)
            grad_gates_steps = grad_gates.view(n, B, 4 * H).unbind(0)
            if grad_out is not None:
                grad_h.copy_(grad_out[start:end])
            grad_h_steps, grad_c_steps = grad_h.unbind(0), grad_c.unbind(0)
            grad_c_flat = grad_c.view(n, B, H).unbind(0)
            cell_factor_steps = cell_factor.unbind(0)
            for k in range(n - 1, -1, -1):
                t = start + k
                dh, dc, dc_flat = grad_h_steps[k], grad_c_steps[k], grad_c_flat[k]  # dc: (B, 1, H)
                if grad_gates_next is None:  # t = T - 1
                    last_step_grad(dh, grad_out is not None, grad_h_last)
                    last_step_grad(carry, False, grad_c_last)
                elif grad_out is not None:
                    dh.addmm_(grad_gates_next, weight_hh)
                else:
                    torch.mm(grad_gates_next, weight_hh, out=dh)
                dm = dh if weight_hr is None else torch.mm(dh, weight_hr, out=grad_m_steps[k])
                torch.addcmul(carry, dm, cell_factor_steps[k], out=dc_flat)
                torch.mul(dc, f_ifg[k], out=dG_ifg[k])
                torch.mul(dm, f_o[k], out=dG_o[k])
                torch.mul(dc_flat, forget[t], out=carry)
                grad_gates_next = grad_gates_steps[k]
            flat = grad_gates.view(n * B, 4 * H)
            grads.chunk(start, end, flat, flat)
            if grad_w_hr is not None:
                grad_w_hr.addmm_(grad_h.view(n * B, P).t(), cell_out[start:end].reshape(n * B, H))
            if record is not None:
                record.hidden.put(start, grad_h)
                record.cell.put(start, grad_c.view(n, B, H))
        grad_h0 = torch.mm(grad_gates_next, weight_hh) if need_h0 else None
        grad_c0 = carry if need_c0 else None
        grad_b_ih = grad_b_hh = None
        if grads.grad_b is not None:
            grad_b_ih = grads.grad_b if ctx.has_bias[0] else None
            grad_b_hh = (grads.grad_b.clone() if grad_b_ih is not None else grads.grad_b) if ctx.has_bias[1] else None
        return grads.grad_x, grad_h0, grad_c0, grads.grad_w_ih, grads.grad_w_hh, grad_b_ih, grad_b_hh, grad_w_hr, None


def _chunk_factors(
    blocks: torch.Tensor, tanh_c: torch.Tensor, c_prev: torch.Tensor, factors: torch.Tensor, cell_factor: torch.Tensor
) -> None:
    """The per-step factors of a chunk: dG = factors * [dc, dc, dc, dh], dc += dh * cell_factor."""
    i, f, g, o = blocks.unbind(2)
    torch.mul(i, 1 - i, out=factors[:, :, 0]).mul_(g)
    torch.mul(f, 1 - f, out=factors[:, :, 1]).mul_(c_prev)
    torch.mul(g, g, out=factors[:, :, 2]).neg_().add_(1).mul_(i)
    torch.mul(o, 1 - o, out=factors[:, :, 3]).mul_(tanh_c)
    torch.mul(tanh_c, tanh_c, out=cell_factor).neg_().add_(1).mul_(o)


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
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """torch.nn.LSTM's cell over all steps, with the projection ``weight_hr`` when given; same signature
    and results as ``bptt.engine.reference.lstm_layer`` (without its ``watch``). ``record`` needs both
    recorders."""
    if record is not None and record.cell is None:
        raise ValueError("an LSTM's record needs a cell recorder as well as the hidden one")
    if x.shape[0] == 0:
        return reference.lstm_layer(x, state, weight_ih, weight_hh, bias_ih, bias_hh, record, weight_hr=weight_hr)
    out, h_n, c_n = LSTMFunction.apply(x, state[0], state[1], weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, record)
    return out, (h_n, c_n)
