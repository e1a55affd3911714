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
``PYTHON_LOOPS`` here, or the compiled ones of ``bptt.engine.compiled``.
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


class PythonLoops:
    """The loops in torch operations, one step at a time; tanh runs as 2 sigmoid(2a) - 1 (cheaper than
    torch.tanh on a CPU), and the backward's factors are computed for a whole chunk at once: a step costs
    one matrix product and three elementwise products."""

    @staticmethod
    def forward(gates, candidate, out, h0, weight_hh, bias_hn) -> None:
        H = out.shape[2]
        weight_rz_t = weight_hh[: 2 * H].t().contiguous()  # (H, 2H)
        weight_n_t = weight_hh[2 * H :].t().contiguous()  # (H, H)
        blocks = gates.view(*gates.shape[:2], 3, H)
        rz, r, z, n = (
            gates[:, :, : 2 * H].unbind(0),
            blocks[:, :, 0].unbind(0),
            blocks[:, :, 1].unbind(0),
            blocks[:, :, 2].unbind(0),
        )
        blocks[:, :, 2].mul_(2)  # n = tanh(a) = 2 sigmoid(2a) - 1
        # 0-d tensors: a Python number costs a conversion per op; filled on the device, so a CUDA graph can
        # capture the step (a copy from the host cannot be captured).
        one, two = gates.new_ones(()), gates.new_full((), 2.0)
        h = h0
        for t, (u_n, h_t) in enumerate(zip(candidate.unbind(0), out.unbind(0))):
            rz[t].addmm_(h, weight_rz_t)
            torch.sigmoid_(rz[t])
            if bias_hn is None:
                torch.mm(h, weight_n_t, out=u_n)
            else:
                torch.addmm(bias_hn, h, weight_n_t, out=u_n)
            n[t].addcmul_(r[t], u_n, value=2)
            torch.sigmoid_(n[t])
            n[t].mul_(two).sub_(one)
            torch.lerp(n[t], h, z[t], out=h_t)
            h = h_t

    @staticmethod
    def backward(
        gates, candidate, out, h_prev_first, grad_h, delta, delta_next, carry, has_next, weight_perm, norms
    ) -> None:
        m, B, H = out.shape
        h_prev = torch.cat([h_prev_first.unsqueeze(0), out[:-1]])
        blocks = gates.view(m, B, 3, H)
        r, z, n = blocks.unbind(2)
        f_zn = out.new_empty(m, B, 2, H)  # [(h_{t-1} - n) z(1-z), (1-z)(1-n^2)], multiply dh
        f_rr = out.new_empty(m, B, 2, H)  # [r, u_n r(1-r)], multiply dn~
        torch.sub(h_prev, n, out=f_zn[:, :, 0]).mul_(z).mul_(1 - z)
        torch.mul(n, n, out=f_zn[:, :, 1]).neg_().add_(1).mul_(1 - z)
        f_rr[:, :, 0].copy_(r)
        torch.mul(r, 1 - r, out=f_rr[:, :, 1]).mul_(candidate)
        delta4 = delta.view(m, B, 4, H)
        grad_h_2 = grad_h.view(m, B, 1, H).unbind(0)
        delta_zn, delta_n, delta_rr = (
            delta4[:, :, 2:4].unbind(0),
            delta4[:, :, 3:4].unbind(0),
            delta4[:, :, 0:2].unbind(0),
        )
        delta_hh_steps = delta.view(m, B, 4 * H)[:, :, : 3 * H].unbind(0)
        z_steps = z.unbind(0)
        later = delta_next[:, : 3 * H] if has_next else None
        for k in range(m - 1, -1, -1):
            dh = grad_h[k]
            if k < m - 1:
                dh.addcmul_(grad_h[k + 1], z_steps[k + 1])
            elif has_next:
                dh.add_(carry)
            if later is not None:
                dh.addmm_(later, weight_perm)
            torch.mul(grad_h_2[k], f_zn[k], out=delta_zn[k])
            torch.mul(delta_n[k], f_rr[k], out=delta_rr[k])
            later = delta_hh_steps[k]
        torch.mul(grad_h[0], z_steps[0], out=carry)
        if norms is not None:
            torch.linalg.vector_norm(grad_h, dim=-1, dtype=torch.float64, out=norms)


PYTHON_LOOPS = PythonLoops()


class GRUFunction(torch.autograd.Function):
    """(x, h0, W_ih, W_hh, b_ih, b_hh) -> (output (T, B, H), h_T), on ``loops``."""

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record: LayerRecorders | None, loops):
        ctx.set_materialize_grads(False)
        T, B, I = x.shape
        H = weight_hh.shape[1]
        bias = bias_ih
        if bias_hh is not None:
            # r and z take both biases in the input term; b_hn stays inside r * u_n.
            hh = torch.cat([bias_hh[: 2 * H], bias_hh.new_zeros(H)])
            bias = hh if bias is None else bias + hh
        gates = x.new_empty(T, B, 3 * H)
        project(x.reshape(T * B, I), weight_ih, bias, gates.view(T * B, 3 * H))
        candidate = x.new_empty(T, B, H)  # u_n = h_{t-1} W_hn^T + b_hn at every step
        out = x.new_empty(T, B, H)
        bias_hn = bias_hh[2 * H :].contiguous() if bias_hh is not None else None
        loops.forward(gates, candidate, out, h0.contiguous(), weight_hh.contiguous(), bias_hn)
        ctx.record, ctx.loops = record, loops
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, gates, candidate, out)
        return out, out[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h_last):
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, gates, candidate, out = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a backward that can itself be differentiated
            inputs = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
            recompute = lambda: reference.gru_layer(*inputs)  # noqa: E731
            return differentiable_backward(recompute, inputs, (grad_out, grad_h_last), 2)
        T, B, H = out.shape
        need_x, need_h0, need_w_ih, need_w_hh, need_b_ih, need_b_hh = ctx.needs_input_grad[:6]
        grads, record = open_backward(
            ctx.record, (need_x, need_w_ih, need_w_hh, need_b_ih or need_b_hh), x, h0, out, weight_ih, 3 * H
        )
        grad_b_n = out.new_zeros(H) if need_b_hh and ctx.has_bias[1] else None
        # W_hh with its blocks ordered (n, r, z), to match the layout [du_n, dr~, dz~, dn~] below.
        weight_perm = torch.cat([weight_hh[2 * H :], weight_hh[: 2 * H]])

        K = chunk_steps(T, B, H)
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
                gates[start:end],
                candidate[start:end],
                out[start:end],
                out[start - 1] if start > 0 else h0.contiguous(),
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
        return grads.grad_x, grad_h0, grads.grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, None, None


def run(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    record: LayerRecorders | None,
    loops: GRULoops,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``gru_layer`` on the given loops."""
    if x.shape[0] == 0:
        return reference.gru_layer(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record)
    return GRUFunction.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, record, loops)


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
