"""The Python time loops of the hand-written engines ("fast"): each step in torch operations, one at a time,
on the buffers of ``bptt.engine.rnn``, ``lstm`` and ``gru`` (whose ``RNNLoops``, ``LSTMLoops`` and
``GRULoops`` say what each argument holds). ``bptt.engine.compiled`` runs the same loops compiled.

Tensors are time-major, (T, B, features). tanh runs as 2 sigmoid(2a) - 1 throughout: torch.tanh costs
about five torch.sigmoid on a CPU. The backward loops compute each chunk's per-step factors in a few
whole-chunk operations first, so a step costs one matrix product and a few elementwise products.
"""

from __future__ import annotations

import torch


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


class RNNLoops:
    """The loops in torch operations, one step at a time."""

    @staticmethod
    def forward(out, pre, h0, weight_hh, act, slope) -> None:
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

    @staticmethod
    def backward(out, pre, grad_h, delta, delta_next, weight_hh, act, slope, norms) -> None:
        deriv = torch.empty_like(out)
        act.derivative(out, pre, slope, deriv)
        grad_h_steps, delta_steps, deriv_steps = grad_h.unbind(0), delta.unbind(0), deriv.unbind(0)
        later = delta_next
        for i in range(out.shape[0] - 1, -1, -1):
            g = grad_h_steps[i]
            if later is not None:
                g.addmm_(later, weight_hh)
            later = torch.mul(g, deriv_steps[i], out=delta_steps[i])
        if norms is not None:
            torch.linalg.vector_norm(grad_h, dim=-1, dtype=torch.float64, out=norms)


class LSTMLoops:
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


class GRULoops:
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


RNN_LOOPS, LSTM_LOOPS, GRU_LOOPS = RNNLoops(), LSTMLoops(), GRULoops()
