r"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs all we needed?"), in the paper's log-space form.

Tensors are time-major, (T, B, .). Neither cell reads h_{t-1} in its gates, so a layer is
one input projection p_t = x_t W_ih^T + b_ih for all steps and then the diagonal recurrence

    h_t = (1 - z_t) * h_{t-1} + z_t * h~_t,    h~_t = g(p_h),  g(v) = v + 1/2 (v >= 0), sigmoid(v) (v < 0)

with the gates, blocks of p in order:

- minGRU, p = [p_h, p_z]:        z_t = sigmoid(p_z);
- minLSTM, p = [p_h, p_f, p_i]:  z_t = i'_t = sigmoid(i) / (sigmoid(f) + sigmoid(i))
  = sigmoid(d), d = softplus(-p_f) - softplus(-p_i), and 1 - z_t = f'_t.

g keeps h~ > 0 (so h_t > 0 from h_0 >= 0), which is what lets the paper run the recurrence as a
scan in log space; the block order and g are ``minGRU-pytorch``'s, so its weights load as
``weight_ih``. minLSTM's state is h alone: with the output gate dropped, c_t = h_t.

Engines:

- ``min_layer`` ("fast"): hand-written, fused. The forward walks time in chunks of K steps
  (``common.chunk_steps``): the chunk's projection, g and the gates in cache, each gate block
  a contiguous buffer, then one multiply-add per step, h_t = (1 - z_t) h_{t-1} + (z_t h~_t).
  With a narrow input (I <= ``RECOMPUTE_INPUT``) the projection is not stored but computed
  again from x in the backward, which then keeps nothing of size (T, B, G*H) but the
  outputs. The backward runs g_t = dL/dh_t = e_t + (1 - z_{t+1}) g_{t+1}, one multiply-add
  per step, and per chunk

      dL/dp_h = g_t z_t g'(p_h),   dL/dz_t = g_t (h~_t - h_{t-1}),
      minGRU: dL/dp_z = dL/dz_t z_t (1 - z_t);
      minLSTM: dL/dd = dL/dz_t z_t (1 - z_t), dL/dp_f = -dL/dd sigmoid(-p_f), dL/dp_i = dL/dd sigmoid(-p_i),

  with g'(v) = 1 for v >= 0 (0 included, as autograd takes ``g``'s branch there) and
  s(1 - s), s = sigmoid(v), below; then the weight gradients, one matrix product per chunk
  and gate (a narrow input carries a column of ones, so that product gives the bias's too).
  The record gets g_t.
- ``min_scan_layer`` ("scan"): the gates by autograd, the recurrence by ``scan.diagonal_scan``
  in ceil(log2 T) parallel rounds, for a GPU.
- ``min_reference_layer`` ("reference"): the plain autograd loop.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F

from bptt.engine.common import chunk_steps, chunks_backward, differentiable_grads, last_step_grad, project
from bptt.engine.recording import LayerRecorders
from bptt.engine.scan import diagonal_scan

#: Inputs at most this wide are projected again in the backward rather than stored.
RECOMPUTE_INPUT = 16
#: A chunk holds 1/CHUNK_SHARE of ``common.CHUNK_ELEMENTS`` gate values: the fused loops keep about
#: ten (K, B, H) buffers at once, and chunks half the RNN's size measured faster (``bptt bench --scan-cells``).
CHUNK_SHARE = 2
#: Gate blocks of each cell's projection.
GATES = {"mingru": 2, "minlstm": 3}


def g(v: torch.Tensor) -> torch.Tensor:
    """The paper's g: v + 1/2 for v >= 0, sigmoid(v) below; positive, continuous, increasing."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def gates(cell: str, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(h~_t, z_t) from the projection p (..., G*H) of ``cell`` ("mingru" or "minlstm")."""
    if cell == "mingru":
        p_h, p_z = p.chunk(2, dim=-1)
        return g(p_h), torch.sigmoid(p_z)
    p_h, p_f, p_i = p.chunk(3, dim=-1)
    return g(p_h), torch.sigmoid(F.softplus(-p_f) - F.softplus(-p_i))


def min_cell(cell: str, p: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """One step: h_t = (1 - z_t) h_{t-1} + z_t h~_t from p_t (B, G*H) and h_{t-1} (B, H)."""
    candidate, z = gates(cell, p)
    return (1 - z) * h + z * candidate


def _check(cell: str) -> int:
    if cell not in GATES:
        raise ValueError(f"unknown cell {cell!r}; allowed: {', '.join(GATES)}")
    return GATES[cell]


class _Chunk:
    """The Python loops' gates of one chunk of up to K steps, each its own contiguous (K, B, H) buffer."""

    def __init__(self, cell: str, like: torch.Tensor, K: int, B: int, H: int) -> None:
        self.cell, self.G = cell, GATES[cell]
        self.candidate, self.z, self.keep, self.slope, self.scratch, self.h_prev = (
            like.new_empty(K, B, H) for _ in range(6)
        )

    def activate(self, p: torch.Tensor, backward: bool) -> None:
        """From p (G, m, B, H): h~ into ``candidate``, z and 1 - z into ``z`` and ``keep``; for the
        backward also g'(p_h) into ``slope``.

        g(v) = max(sigmoid(v), v + 1/2) exactly (sigmoid(v) - 1/2 - v is positive below 0 and negative
        above), and g'(v) = max(s(1 - s), [v >= 0]) with s = sigmoid(v): 1 from 0 up, s(1 - s) below."""
        m = p.shape[1]
        candidate, z, scratch = self.candidate[:m], self.z[:m], self.scratch[:m]
        p_h = p[0]
        torch.sigmoid(p_h, out=candidate)
        if backward:
            slope = self.slope[:m]
            torch.ge(p_h, 0, out=slope)
            torch.addcmul(candidate, candidate, candidate, value=-1, out=scratch)  # s(1 - s)
            torch.maximum(slope, scratch, out=slope)
        torch.maximum(candidate, torch.add(p_h, 0.5, out=scratch), out=candidate)
        if self.cell == "mingru":
            torch.sigmoid(p[1], out=z)
        else:  # z = sigmoid(softplus(-p_f) - softplus(-p_i))
            _softplus(torch.neg(p[1], out=scratch), z)
            z.sub_(_softplus(torch.neg(p[2], out=scratch), scratch))
            torch.sigmoid_(z)
        torch.sub(1, z, out=self.keep[:m])

    def deltas(self, p: torch.Tensor, grad_h: torch.Tensor, h_prev: torch.Tensor, delta: torch.Tensor) -> None:
        """dL/dp of the chunk into ``delta`` (G, m, B, H) from its dL/dh_t (see the module docstring)."""
        m = p.shape[1]
        candidate, z, keep, slope = self.candidate[:m], self.z[:m], self.keep[:m], self.slope[:m]
        torch.mul(grad_h, z, out=delta[0]).mul_(slope)
        grad_z = delta[1] if self.cell == "mingru" else self.scratch[:m]  # dL/dp_z, or dL/dd for minLSTM
        torch.sub(candidate, h_prev, out=grad_z).mul_(grad_h).mul_(z).mul_(keep)
        if self.cell == "minlstm":
            torch.sigmoid(torch.neg(p[1], out=delta[1]), out=delta[1]).mul_(grad_z).neg_()
            torch.sigmoid(torch.neg(p[2], out=delta[2]), out=delta[2]).mul_(grad_z)


def _softplus(v: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # torch's stub for the binding lacks the out= overload (softplus.out) that it accepts.
    return torch._C._nn.softplus(v, 1, 20, out=out)  # type: ignore[call-arg]


def _operands(
    x2d: torch.Tensor, weight_ih: torch.Tensor, bias_ih: torch.Tensor | None, G: int
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor | None]]:
    """(inputs, the G weight blocks, their biases) of the projection p_g = inputs W_g^T + b_g. A narrow
    input carries a column of ones and each block its bias as a last column, so that one matrix
    product per chunk and gate gives both dL/dW and dL/db (rather than one more pass to sum delta)."""
    weights = list(weight_ih.chunk(G))
    if bias_ih is None:
        return x2d, weights, [None] * G
    if x2d.shape[1] > RECOMPUTE_INPUT:
        return x2d, weights, list(bias_ih.chunk(G))
    ones = x2d.new_ones(x2d.shape[0], 1)
    folded = [torch.cat([w, b.unsqueeze(1)], dim=1) for w, b in zip(weights, bias_ih.chunk(G))]
    return torch.cat([x2d, ones], dim=1), folded, [None] * G


class MinLoops(Protocol):
    """The two time loops of minGRU and minLSTM over one chunk, on buffers the caller made (time-major)."""

    def workspace(self, cell: str, like: torch.Tensor, K: int, B: int, H: int) -> Any:
        """What the loops keep between chunks of up to K steps (the Python loops' gate buffers)."""

    def forward(self, work: Any, cell: str, p: torch.Tensor, h_prev: torch.Tensor, out: torch.Tensor) -> None:
        """h_t into ``out`` (m, B, H) from the chunk's projection p (G, m, B, H) and h_{t-1} of its first step."""

    def backward(
        self,
        work: Any,
        cell: str,
        p: torch.Tensor,
        out: torch.Tensor,
        h_prev_first: torch.Tensor,
        grad_h: torch.Tensor,
        delta: torch.Tensor,
        carry: torch.Tensor,
        norms: torch.Tensor | None,
    ) -> None:
        """One chunk, last step first. ``out``: its h_t (m, B, H); ``grad_h``: the outputs' gradients on
        entry, dL/dh_t on return; ``delta`` (G, m, B, H) gets dL/dp; ``carry`` (B, H): (1 - z_{t+1}) dL/dh_{t+1}
        of the step after the chunk on entry (zeros at T - 1), of the chunk's first step on return;
        ``norms`` (m, B), float64, where given, gets ||dL/dh_t[b]||_2."""


class PythonLoops:
    """The loops in torch operations: the chunk's gates in a few whole-chunk operations (``_Chunk``), then
    one multiply-add per step."""

    def workspace(self, cell: str, like: torch.Tensor, K: int, B: int, H: int) -> _Chunk:
        return _Chunk(cell, like, K, B, H)

    def forward(self, work: _Chunk, cell: str, p: torch.Tensor, h_prev: torch.Tensor, out: torch.Tensor) -> None:
        m = p.shape[1]
        work.activate(p, backward=False)
        added = work.candidate[:m].mul_(work.z[:m])  # z h~
        h = h_prev
        for added_t, keep_t, h_t in zip(added.unbind(0), work.keep[:m].unbind(0), out.unbind(0)):
            torch.addcmul(added_t, keep_t, h, out=h_t)
            h = h_t

    def backward(self, work, cell, p, out, h_prev_first, grad_h, delta, carry, norms) -> None:
        m = p.shape[1]
        work.activate(p, backward=True)
        steps, keeps = grad_h.unbind(0), work.keep[:m].unbind(0)
        steps[m - 1].add_(carry)
        for k in range(m - 2, -1, -1):
            steps[k].addcmul_(keeps[k + 1], steps[k + 1])
        torch.mul(keeps[0], steps[0], out=carry)
        if norms is not None:
            torch.linalg.vector_norm(grad_h, dim=-1, dtype=torch.float64, out=norms)
        h_prev = work.h_prev[:m]
        h_prev[0] = h_prev_first
        h_prev[1:] = out[: m - 1]
        work.deltas(p, grad_h, h_prev, delta)


PYTHON_LOOPS = PythonLoops()


class MinRNNFunction(torch.autograd.Function):
    """(x, h0, W_ih, b_ih) -> (output (T, B, H), h_T) of minGRU or minLSTM (see the module docstring), on
    ``loops``."""

    @staticmethod
    def forward(ctx, x, h0, weight_ih, bias_ih, record: LayerRecorders | None, cell: str, loops: MinLoops):
        ctx.set_materialize_grads(False)
        T, B, I = x.shape
        G = GATES[cell]
        H = weight_ih.shape[0] // G
        inputs, weights, biases = _operands(x.reshape(T * B, I), weight_ih, bias_ih, G)
        stored = None
        if I > RECOMPUTE_INPUT:
            stored = x.new_empty(G, T, B, H)
            for block, weight, bias in zip(stored, weights, biases):
                project(inputs, weight, bias, block.view(T * B, H))
        K = chunk_steps(T, B, CHUNK_SHARE * G * H)
        work = loops.workspace(cell, x, K, B, H)
        projected = x.new_empty(G, K, B, H) if stored is None else None
        out = x.new_empty(T, B, H)
        h = h0.to(x.dtype).contiguous()  # a state of another dtype runs in the input's, as torch.lerp would
        for start in range(0, T, K):
            end = min(start + K, T)
            p = _chunk_projection(inputs, weights, biases, projected, stored, start, end, B)
            loops.forward(work, cell, p, h, out[start:end])
            h = out[end - 1]
        ctx.record, ctx.cell, ctx.loops = record, cell, loops
        ctx.save_for_backward(x, h0, weight_ih, bias_ih, out, stored)
        return out, out[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h_last):
        x, h0, weight_ih, bias_ih, out, stored = ctx.saved_tensors
        cell, loops = ctx.cell, ctx.loops
        if torch.is_grad_enabled():  # create_graph=True: differentiate the plain loop instead
            saved = (x, h0, weight_ih, bias_ih)
            recompute = lambda: min_reference_layer(cell, *saved)  # noqa: E731
            return (*differentiable_grads(recompute, saved, (grad_out, grad_h_last)), None, None, None)
        T, B, I = x.shape
        H = out.shape[2]
        G = GATES[cell]
        need_x, need_h0, need_w, need_b = ctx.needs_input_grad[:4]
        inputs, weights, biases = _operands(x.reshape(T * B, I), weight_ih, bias_ih, G)
        folded = bias_ih is not None and biases[0] is None  # the biases ride in the weights' last column
        plain = weight_ih.chunk(G)
        grad_x = x.new_empty(T, B, I) if need_x else None
        grad_w = weight_ih.new_zeros(G, inputs.shape[1], H) if need_w or (need_b and folded) else None
        grad_b = weight_ih.new_zeros(G, H) if need_b and not folded else None
        record = ctx.record.hidden if ctx.record is not None and ctx.record.active() else None
        K = chunk_steps(T, B, CHUNK_SHARE * G * H)
        work = loops.workspace(cell, x, K, B, H)
        projected = x.new_empty(G, K, B, H) if stored is None else None
        grad_h_buf, delta_buf = out.new_empty(K, B, H), out.new_empty(G, K, B, H)
        norms_buf = out.new_empty(K, B, dtype=torch.float64) if record is not None else None
        carry = out.new_zeros(B, H)  # (1 - z_{t+1}) dL/dh_{t+1}
        h0 = h0.to(out.dtype).contiguous()
        for start, end in chunks_backward(T, K):
            m = end - start
            rows = slice(start * B, end * B)
            p = _chunk_projection(inputs, weights, biases, projected, stored, start, end, B)
            grad_h = grad_h_buf[:m]
            if grad_out is not None:
                grad_h.copy_(grad_out[start:end])
            else:
                grad_h.zero_()
            if end == T:
                last_step_grad(grad_h[-1], True, grad_h_last)
            delta = delta_buf[:, :m]
            norms = None if norms_buf is None else norms_buf[:m]
            h_prev_first = out[start - 1] if start > 0 else h0
            loops.backward(work, cell, p, out[start:end], h_prev_first, grad_h, delta, carry, norms)
            if record is not None:
                record.put_norms(start, norms, out.dtype)
            flat = delta.reshape(G, m * B, H)
            for g in range(G):
                if need_x:
                    target = grad_x[start:end].view(m * B, I)
                    if g == 0:
                        torch.mm(flat[g], plain[g], out=target)
                    else:
                        target.addmm_(flat[g], plain[g])
                if grad_w is not None:
                    grad_w[g].addmm_(inputs[rows].t(), flat[g])
                if grad_b is not None:
                    grad_b[g] += flat[g].sum(0)
        grad_h0 = carry if need_h0 else None
        if folded and grad_w is not None:
            grad_b = grad_w[:, I] if need_b else None
            grad_w = grad_w[:, :I]
        if grad_w is not None:
            grad_w = grad_w.transpose(1, 2).reshape(G * H, I) if need_w else None
        if grad_b is not None:
            grad_b = grad_b.reshape(G * H)
        return grad_x, grad_h0, grad_w, grad_b, None, None, None


def _chunk_projection(inputs, weights, biases, projected, stored, start: int, end: int, B: int) -> torch.Tensor:
    """The projection p (G, m, B, H) of steps start .. end - 1: the stored one's slice, or computed into
    ``projected`` from the inputs."""
    if stored is not None:
        return stored[:, start:end]
    p = projected[:, : end - start]
    for block, weight, bias in zip(p, weights, biases):
        project(inputs[start * B : end * B], weight, bias, block.view(-1, weight.shape[0]))
    return p


def min_layer(
    cell: str,
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    bias_ih: torch.Tensor | None,
    record: LayerRecorders | None = None,
    loops: MinLoops = PYTHON_LOOPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """minGRU or minLSTM (``cell``) over all steps on the fused hand-written loops (``loops``: the Python
    ones, or the compiled ones of ``bptt.engine.compiled``). Returns (output (T, B, H), h_T); same
    results as ``min_reference_layer``."""
    G = _check(cell)
    if x.shape[0] == 0:
        return min_reference_layer(cell, x, h0, weight_ih, bias_ih, record)
    h0 = h0.expand(x.shape[1], weight_ih.shape[0] // G)  # (B, H): a broadcast state as the plain loop takes it
    return MinRNNFunction.apply(x, h0, weight_ih, bias_ih, record, cell, loops)


def min_scan_layer(
    cell: str,
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    bias_ih: torch.Tensor | None,
    record: LayerRecorders | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same, the recurrence run as a parallel scan (``scan.diagonal_scan``, "parallel")."""
    _check(cell)
    if x.shape[0] == 0:
        return min_reference_layer(cell, x, h0, weight_ih, bias_ih, record)
    candidate, z = gates(cell, F.linear(x, weight_ih, bias_ih))
    out = diagonal_scan(1 - z, z * candidate, h0, None if record is None else record.hidden, "parallel")
    return out, out[-1]


def min_reference_layer(
    cell: str,
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    bias_ih: torch.Tensor | None,
    record: LayerRecorders | None = None,
    *,
    watch=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain autograd loop of ``min_cell``; ``record`` hooks every h_t. A ``watch`` sees the loop as
    the reference engine shows it (``bptt.engine.reference``), with ``recurrent`` = (1 - z_t) h_{t-1},
    the part of h_t carried from h_{t-1}."""
    _check(cell)
    projected = F.linear(x, weight_ih, bias_ih)
    if watch is not None:
        watch.input(x, projected)
    candidate, z = gates(cell, projected)
    h = h0
    outputs = []
    for t, (candidate_t, z_t) in enumerate(zip(candidate.unbind(0), z.unbind(0))):
        carried = (1 - z_t) * h
        h_t = carried + z_t * candidate_t
        if record is not None:
            record.hidden.hook(t, h_t)
        if watch is not None:
            watch.step(t, h, carried, h_t)
        outputs.append(h_t)
        h = h_t
    if not outputs:
        return x.new_empty(0, x.shape[1], h0.shape[-1]), h0
    return torch.stack(outputs), h
