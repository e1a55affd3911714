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

The factors are computed for a whole chunk at once; a step costs one matrix
product and three elementwise products.
"""

from __future__ import annotations

import torch

from bptt.engine import reference
from bptt.engine.common import WeightGrads, chunk_steps, chunks_backward, differentiable_grads, last_step_grad, project
from bptt.engine.recording import LayerRecorders


class GRUFunction(torch.autograd.Function):
    """(x, h0, W_ih, W_hh, b_ih, b_hh) -> (output (T, B, H), h_T)."""

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record: LayerRecorders | None):
        ctx.set_materialize_grads(False)
        T, B, I = x.shape
        H = weight_hh.shape[1]
        x2d = x.reshape(T * B, I)
        bias = bias_ih
        if bias_hh is not None:
            # r and z take both biases in the input term; b_hn stays inside r * u_n.
            hh = torch.cat([bias_hh[: 2 * H], bias_hh.new_zeros(H)])
            bias = hh if bias is None else bias + hh
        gates = x.new_empty(T, B, 3 * H)
        project(x2d, weight_ih, bias, gates.view(T * B, 3 * H))
        candidate = x.new_empty(T, B, H)  # u_n = h_{t-1} W_hn^T + b_hn at every step
        out = x.new_empty(T, B, H)
        weight_rz_t = weight_hh[: 2 * H].t().contiguous()  # (H, 2H)
        weight_n_t = weight_hh[2 * H :].t().contiguous()  # (H, H)
        bias_n = bias_hh[2 * H :] if bias_hh is not None else None
        blocks = gates.view(T, B, 3, H)
        rz, r, z, n = (
            gates[:, :, : 2 * H].unbind(0),
            blocks[:, :, 0].unbind(0),
            blocks[:, :, 1].unbind(0),
            blocks[:, :, 2].unbind(0),
        )
        blocks[:, :, 2].mul_(2)  # n = tanh(a) = 2 sigmoid(2a) - 1, cheaper than torch.tanh on a CPU
        # 0-d tensors: a Python number costs a conversion per op; filled on the device, so a CUDA graph can
        # capture the step (a copy from the host cannot be captured).
        one, two = x.new_ones(()), x.new_full((), 2.0)
        h = h0
        for t, (u_n, h_t) in enumerate(zip(candidate.unbind(0), out.unbind(0))):
            rz[t].addmm_(h, weight_rz_t)
            torch.sigmoid_(rz[t])
            if bias_n is None:
                torch.mm(h, weight_n_t, out=u_n)
            else:
                torch.addmm(bias_n, h, weight_n_t, out=u_n)
            n[t].addcmul_(r[t], u_n, value=2)
            torch.sigmoid_(n[t])
            n[t].mul_(two).sub_(one)
            torch.lerp(n[t], h, z[t], out=h_t)
            h = h_t
        ctx.record = record
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, gates, candidate, out)
        return out, out[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h_last):
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, gates, candidate, out = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a backward that can itself be differentiated
            inputs = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
            recompute = lambda: reference.gru_layer(*inputs)  # noqa: E731
            return (*differentiable_grads(recompute, inputs, (grad_out, grad_h_last)), None)
        T, B, H = out.shape
        x2d = x.reshape(T * B, -1)
        need_x, need_h0, need_w_ih, need_w_hh, need_b_ih, need_b_hh = ctx.needs_input_grad[:6]
        grads = WeightGrads(
            (need_x, need_w_ih, need_w_hh, need_b_ih or need_b_hh),
            x2d,
            h0,
            out,
            weight_ih,
            3 * H,
            None if ctx.record is None else ctx.record.terms(),
        )
        grad_b_n = out.new_zeros(H) if need_b_hh and ctx.has_bias[1] else None
        record = ctx.record if ctx.record is not None and ctx.record.active() else None
        # W_hh with its blocks ordered (n, r, z), to match the layout [du_n, dr~, dz~, dn~] below.
        weight_perm = torch.cat([weight_hh[2 * H :], weight_hh[: 2 * H]])

        K = chunk_steps(T, B, H)
        zn_buf = out.new_empty(K, B, 2, H)  # [(h_{t-1} - n) z(1-z), (1-z)(1-n^2)], multiply dh
        rr_buf = out.new_empty(K, B, 2, H)  # [r, u_n r(1-r)], multiply dn~
        grad_h_buf = out.new_empty(K, B, 1, H)
        delta_buf = out.new_empty(K, B, 4, H)  # [du_n, dr~, dz~, dn~]
        h_prev_first = out.new_empty(min(K, T), B, H)
        carry = out.new_empty(B, H)
        blocks = gates.view(T, B, 3, H)
        z_steps = blocks[:, :, 1].unbind(0)
        grad_h_next = delta_next = None
        for start, end in chunks_backward(T, K):
            m = end - start
            f_zn, f_rr, grad_h, delta = zn_buf[:m], rr_buf[:m], grad_h_buf[:m], delta_buf[:m]
            if start > 0:
                h_prev = out[start - 1 : end - 1]
            else:
                h_prev = h_prev_first[:m]
                h_prev[0] = h0
                h_prev[1:] = out[0 : end - 1]
            _chunk_factors(blocks[start:end], candidate[start:end], h_prev, f_zn, f_rr)
            if grad_out is not None:
                grad_h.view(m, B, H).copy_(grad_out[start:end])
            grad_h_steps, grad_h_flat = grad_h.unbind(0), grad_h.view(m, B, H).unbind(0)
            f_zn_steps, f_rr_steps = f_zn.unbind(0), f_rr.unbind(0)
            delta_zn, delta_n, delta_rr = (
                delta[:, :, 2:4].unbind(0),
                delta[:, :, 3:4].unbind(0),
                delta[:, :, 0:2].unbind(0),
            )
            delta_hh_steps = delta.view(m, B, 4 * H)[:, :, : 3 * H].unbind(0)
            for k in range(m - 1, -1, -1):
                t = start + k
                dh = grad_h_flat[k]
                if grad_h_next is None:  # t = T - 1
                    last_step_grad(dh, grad_out is not None, grad_h_last)
                else:
                    if grad_out is not None:
                        dh.addcmul_(grad_h_next, z_steps[t + 1])
                    else:
                        torch.mul(grad_h_next, z_steps[t + 1], out=dh)
                    dh.addmm_(delta_next, weight_perm)
                torch.mul(grad_h_steps[k], f_zn_steps[k], out=delta_zn[k])
                torch.mul(delta_n[k], f_rr_steps[k], out=delta_rr[k])
                grad_h_next, delta_next = dh, delta_hh_steps[k]
            if start > 0 and grad_out is not None:  # the next chunk's copy of g would overwrite it
                grad_h_next = carry.copy_(grad_h_next)
            flat = delta.view(m * B, 4 * H)
            grads.chunk(start, end, flat[:, H:], flat[:, : 3 * H])
            if grad_b_n is not None:
                grad_b_n += flat[:, :H].sum(0)
            if record is not None:
                record.hidden.put(start, grad_h.view(m, B, H))
        grad_h0 = None
        if need_h0:
            grad_h0 = torch.mul(grad_h_next, z_steps[0]).addmm_(delta_next, weight_perm)
        grad_w_hh = None
        if grads.grad_w_hh is not None:
            g = grads.grad_w_hh  # blocks (n, r, z)
            grad_w_hh = torch.cat([g[H:], g[:H]])
        grad_b_ih = grad_b_hh = None
        if grads.grad_b is not None:  # [dr~, dz~, dn~] summed
            grad_b_ih = grads.grad_b if ctx.has_bias[0] else None
            if grad_b_n is not None:
                grad_b_hh = torch.cat([grads.grad_b[: 2 * H], grad_b_n])
        return grads.grad_x, grad_h0, grads.grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, None


def _chunk_factors(
    blocks: torch.Tensor, candidate: torch.Tensor, h_prev: torch.Tensor, f_zn: torch.Tensor, f_rr: torch.Tensor
) -> None:
    """The per-step factors of a chunk (see the module docstring); ``candidate`` holds u_n."""
    r, z, n = blocks.unbind(2)
    torch.sub(h_prev, n, out=f_zn[:, :, 0]).mul_(z).mul_(1 - z)
    torch.mul(n, n, out=f_zn[:, :, 1]).neg_().add_(1).mul_(1 - z)
    f_rr[:, :, 0].copy_(r)
    torch.mul(r, 1 - r, out=f_rr[:, :, 1]).mul_(candidate)


def gru_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    record: LayerRecorders | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.nn.GRU's cell over all steps; same signature and results as
    ``bptt.engine.reference.gru_layer`` (without its ``watch``)."""
    if x.shape[0] == 0:
        return reference.gru_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record)
    return GRUFunction.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record)
