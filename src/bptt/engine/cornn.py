r"""coRNN (Rusch & Mishra 2021): a network of coupled, damped, driven oscillators, discretised in time.

Tensors are time-major, (T, B, H). The state is a position y and a velocity z per unit; with
p_t = x_t W_ih^T + b, the explicit scheme of the paper's code is

    a_t = p_t + z_{t-1} W_z^T + y_{t-1} W_y^T,    s_t = tanh(a_t),
    z_t = z_{t-1} + dt (s_t - gamma y_{t-1} - epsilon z_{t-1}),
    y_t = y_{t-1} + dt z_t,

and the layer outputs y_t. ``reference_layer`` is the plain autograd loop (a ``watch`` sees
``recurrent`` = z W_z^T + y W_y^T, h_prev = [y_{t-1}, z_{t-1}], h = y_t and c = z_t);
``cornn_layer`` the hand-written BPTT. Its backward, with Gy_t = dL/dy_t and Z_t = dL/dz_t the
total gradients (Z_t includes dt Gy_t, since y_t reads z_t), and g_t the output's gradient:

    Gy_t = g_t + Gy'_{t+1},     Z_t = Z'_{t+1} + dt Gy_t,     delta_t = dt Z_t (1 - s_t^2),
    Z'_t  = (1 - dt epsilon) Z_t + delta_t W_z,
    Gy'_t = Gy_t - dt gamma Z_t + delta_t W_y,

two small matrix products per step; the weight gradients are whole-chunk products
(dW_z = delta^T z_prev, dW_y = delta^T y_prev, dW_ih = delta^T x, db = sum delta). The record
gets Gy_t as ``hidden`` and Z_t as ``cell``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bptt.engine.common import chunk_steps, chunks_backward, differentiable_grads
from bptt.engine.recording import LayerRecorders, RecordingWatch

State = tuple[torch.Tensor, torch.Tensor]


def cornn_cell(
    p: torch.Tensor,
    state: State,
    weight_hz: torch.Tensor,
    weight_hy: torch.Tensor,
    dt: float,
    gamma: float,
    epsilon: float,
) -> tuple[State, torch.Tensor]:
    """One step from p_t = x_t W_ih^T + b and (y_{t-1}, z_{t-1}): ((y_t, z_t), the recurrent term)."""
    y, z = state
    recurrent = F.linear(z, weight_hz) + F.linear(y, weight_hy)
    z_new = z + dt * (torch.tanh(p + recurrent) - gamma * y - epsilon * z)
    return (y + dt * z_new, z_new), recurrent


def reference_layer(
    x: torch.Tensor,
    state: State,
    weight_ih: torch.Tensor,
    weight_hz: torch.Tensor,
    weight_hy: torch.Tensor,
    bias: torch.Tensor | None,
    dt: float,
    gamma: float,
    epsilon: float,
    record: LayerRecorders | None = None,
    *,
    watch=None,
) -> tuple[torch.Tensor, State]:
    """The plain autograd loop. Returns (output y (T, B, H), (y_T, z_T))."""
    if record is not None:
        recording = RecordingWatch(record)
        watch = recording if watch is None else _Both(recording, watch)
    projected = F.linear(x, weight_ih, bias)
    if watch is not None:
        watch.input(x, projected)
    outputs = []
    for t, p_t in enumerate(projected.unbind(0)):
        previous = torch.cat(state, dim=-1)
        state, recurrent = cornn_cell(p_t, state, weight_hz, weight_hy, dt, gamma, epsilon)
        if watch is not None:
            watch.step(t, previous, recurrent, state[0], state[1])
        outputs.append(state[0])
    return (torch.stack(outputs) if outputs else x.new_empty(0, *state[0].shape)), state


class _Both:
    def __init__(self, *watches) -> None:
        self.watches = watches

    def input(self, x: torch.Tensor, projected: torch.Tensor) -> None:
        for watch in self.watches:
            watch.input(x, projected)

    def step(self, t, h_prev, recurrent, h, c=None) -> None:
        for watch in self.watches:
            watch.step(t, h_prev, recurrent, h, c)


class CoRNNFunction(torch.autograd.Function):
    """(x, y0, z0, W_ih, W_z, W_y, b) -> (ys (T, B, H), y_T, z_T); dt, gamma, epsilon fixed."""

    @staticmethod
    def forward(ctx, x, y0, z0, weight_ih, weight_hz, weight_hy, bias, dt, gamma, epsilon, record):
        ctx.set_materialize_grads(False)
        T, B, I = x.shape
        H = weight_hz.shape[0]
        ys, zs, s = x.new_empty(T, B, H), x.new_empty(T, B, H), x.new_empty(T, B, H)
        x2d = x.reshape(T * B, I)
        if bias is None:
            torch.mm(x2d, weight_ih.t(), out=s.view(T * B, H))
        else:
            torch.addmm(bias, x2d, weight_ih.t(), out=s.view(T * B, H))
        w_z, w_y = weight_hz.t().contiguous(), weight_hy.t().contiguous()
        y, z = y0, z0
        for a, y_t, z_t in zip(s.unbind(0), ys.unbind(0), zs.unbind(0)):
            a.addmm_(z, w_z).addmm_(y, w_y)
            torch.tanh_(a)  # s_t
            torch.mul(z, 1 - dt * epsilon, out=z_t).add_(y, alpha=-dt * gamma).add_(a, alpha=dt)
            torch.add(y, z_t, alpha=dt, out=y_t)
            y, z = y_t, z_t
        ctx.constants, ctx.record = (dt, gamma, epsilon), record
        ctx.save_for_backward(x, y0, z0, weight_ih, weight_hz, weight_hy, bias, ys, zs, s)
        return ys, ys[-1].clone(), zs[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_y_last, grad_z_last):
        x, y0, z0, weight_ih, weight_hz, weight_hy, bias, ys, zs, s = ctx.saved_tensors
        dt, gamma, epsilon = ctx.constants
        if torch.is_grad_enabled():  # create_graph=True: differentiate the reference loop instead
            inputs = (x, y0, z0, weight_ih, weight_hz, weight_hy, bias)

            def recompute():
                out, (y_n, z_n) = reference_layer(
                    x, (y0, z0), weight_ih, weight_hz, weight_hy, bias, dt, gamma, epsilon
                )
                return out, y_n, z_n

            grads = differentiable_grads(recompute, inputs, (grad_out, grad_y_last, grad_z_last))
            return (*grads, None, None, None, None)
        record = ctx.record if ctx.record is not None and ctx.record.active() else None
        need_x, need_y0, need_z0, need_w_ih, need_w_z, need_w_y, need_b = ctx.needs_input_grad[:7]
        T, B, H = ys.shape
        I = x.shape[-1]
        x2d = x.reshape(T * B, I)
        grad_x = ys.new_empty(T, B, I) if need_x else None
        grad_w_ih = ys.new_zeros(H, I) if need_w_ih else None
        grad_w_z = ys.new_zeros(H, H) if need_w_z else None
        grad_w_y = ys.new_zeros(H, H) if need_w_y else None
        grad_b = ys.new_zeros(H) if need_b else None
        K = chunk_steps(T, B, H)
        gy_buf, gz_buf, delta_buf = (ys.new_empty(K, B, H) for _ in range(3))
        carry_y = ys.new_zeros(B, H) if grad_y_last is None else grad_y_last.clone()
        carry_z = ys.new_zeros(B, H) if grad_z_last is None else grad_z_last.clone()
        for start, end in chunks_backward(T, K):
            n = end - start
            gy, gz, delta = gy_buf[:n], gz_buf[:n], delta_buf[:n]
            torch.mul(s[start:end], s[start:end], out=delta).neg_().add_(1).mul_(dt)  # dt (1 - s_t^2)
            for i in range(n - 1, -1, -1):
                g_y, g_z, d = gy[i], gz[i], delta[i]
                if grad_out is not None:
                    torch.add(carry_y, grad_out[start + i], out=g_y)
                else:
                    g_y.copy_(carry_y)
                torch.add(carry_z, g_y, alpha=dt, out=g_z)  # Z_t
                d.mul_(g_z)  # delta_t
                carry_z = torch.mul(g_z, 1 - dt * epsilon).addmm_(d, weight_hz)
                carry_y = torch.add(g_y, g_z, alpha=-dt * gamma).addmm_(d, weight_hy)
            flat = delta.view(n * B, H)
            y_prev = ys[start - 1 : end - 1] if start > 0 else torch.cat([y0.unsqueeze(0), ys[: end - 1]])
            z_prev = zs[start - 1 : end - 1] if start > 0 else torch.cat([z0.unsqueeze(0), zs[: end - 1]])
            if grad_w_z is not None:
                grad_w_z.addmm_(flat.t(), z_prev.reshape(n * B, H))
            if grad_w_y is not None:
                grad_w_y.addmm_(flat.t(), y_prev.reshape(n * B, H))
            if need_x:
                torch.mm(flat, weight_ih, out=grad_x[start:end].view(n * B, I))
            if grad_w_ih is not None:
                grad_w_ih.addmm_(flat.t(), x2d[start * B : end * B])
            if grad_b is not None:
                grad_b += flat.sum(0)
            if record is not None:
                record.hidden.put(start, gy)
                if record.cell is not None:
                    record.cell.put(start, gz)
        grad_y0 = carry_y if need_y0 else None
        grad_z0 = carry_z if need_z0 else None
        return grad_x, grad_y0, grad_z0, grad_w_ih, grad_w_z, grad_w_y, grad_b, None, None, None, None


def cornn_layer(
    x: torch.Tensor,
    state: State,
    weight_ih: torch.Tensor,
    weight_hz: torch.Tensor,
    weight_hy: torch.Tensor,
    bias: torch.Tensor | None,
    dt: float,
    gamma: float,
    epsilon: float,
    record: LayerRecorders | None = None,
) -> tuple[torch.Tensor, State]:
    """The hand-written BPTT; same signature and results as ``reference_layer`` (without ``watch``)."""
    if x.shape[0] == 0:
        return reference_layer(x, state, weight_ih, weight_hz, weight_hy, bias, dt, gamma, epsilon, record)
    ys, y_n, z_n = CoRNNFunction.apply(x, *state, weight_ih, weight_hz, weight_hy, bias, dt, gamma, epsilon, record)
    return ys, (y_n, z_n)
