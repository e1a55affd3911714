"""Helpers shared by the hand-written engines: time chunks, projections, the opening of every backward,
weight-gradient GEMMs and the split of the bias gradient.

Tensors are time-major, (T, B, features). The backward loops walk time in
chunks of K steps: the per-step work fills (K, B, .) buffers, then the weight
gradients of the whole chunk are one matrix product each,

    dW_hh += delta^T h_prev,   dW_ih += delta^T x,   db += sum_t,b delta,
    dx = delta W_ih,

with delta and h_prev flattened to (K*B, .). K is chosen so a chunk holds
about ``CHUNK_ELEMENTS`` state values: large enough for the GEMMs to run at
full speed, small enough that the backward buffers stay a small fraction of
the stored hidden states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from bptt.engine.recording import LayerRecorders

CHUNK_ELEMENTS = 1 << 18


def chunk_steps(seq_len: int, batch: int, width: int) -> int:
    """Steps per backward chunk for a state of ``batch * width`` values per step."""
    return max(1, min(seq_len, CHUNK_ELEMENTS // max(1, batch * width)))


def chunks_backward(seq_len: int, size: int) -> list[tuple[int, int]]:
    """[(start, end), ...] covering 0..seq_len-1 in chunks of ``size``, last chunk first."""
    return [(start, min(start + size, seq_len)) for start in range(0, seq_len, size)][::-1]


def project(x2d: torch.Tensor, weight_ih: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> None:
    """out (T*B, G*H) = x W_ih^T + bias, as one matrix product."""
    if bias is None:
        torch.mm(x2d, weight_ih.t(), out=out)
    else:
        torch.addmm(bias, x2d, weight_ih.t(), out=out)


def add_bias(*biases: torch.Tensor | None) -> torch.Tensor | None:
    present = [b for b in biases if b is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else sum(present[1:], present[0])


def last_step_grad(grad: torch.Tensor, has_output_grad: bool, extra: torch.Tensor | None) -> None:
    """Set ``grad`` to the total gradient at the last step T - 1, where the backward starts: it
    already holds the output's gradient there when ``has_output_grad``; add ``extra`` (dL/dh_n or
    dL/dc_n, the final state's gradient); with neither, zero."""
    if has_output_grad:
        if extra is not None:
            grad.add_(extra)
    elif extra is not None:
        grad.copy_(extra)
    else:
        grad.zero_()


class WeightGrads:
    """Accumulates dW_ih, dW_hh, db and writes dx, one chunk at a time.

    ``needs`` = (x, weight_ih, weight_hh, bias) flags; ``x2d`` is the (T*B, I)
    input, ``out`` the (T, B, H) hidden states, ``h0`` the initial state; ``terms``
    (a ``TermRecorder``) also receives each step's ||delta_t^T h_{t-1}||_F.
    """

    def __init__(
        self,
        needs: tuple[bool, bool, bool, bool],
        x2d: torch.Tensor,
        h0: torch.Tensor,
        out: torch.Tensor,
        weight_ih: torch.Tensor,
        gate_width: int,
        terms=None,
    ) -> None:
        self.need_x, self.need_w_ih, self.need_w_hh, self.need_b = needs
        self.x2d, self.h0, self.out, self.weight_ih = x2d, h0, out, weight_ih
        self.terms = terms  # a TermRecorder, when each step's term norm is asked for
        T, B, H = out.shape
        self.B, self.H = B, H
        like = out
        self.grad_x = like.new_empty(T, B, x2d.shape[1]) if self.need_x else None
        self.grad_w_ih = like.new_zeros(gate_width, x2d.shape[1]) if self.need_w_ih else None
        self.grad_w_hh = like.new_zeros(gate_width, H) if self.need_w_hh else None
        self.grad_b = like.new_zeros(gate_width) if self.need_b else None

    def chunk(self, start: int, end: int, delta_ih: torch.Tensor, delta_hh: torch.Tensor) -> None:
        """Add the chunk start..end-1; ``delta_ih`` multiplies x, ``delta_hh`` multiplies h_{t-1}.

        Both are (K*B, G*H) views (the same tensor except for the GRU).
        """
        B = self.B
        if self.terms is not None:
            K = end - start
            h_prev = (
                self.out[start - 1 : end - 1] if start > 0 else torch.cat([self.h0.unsqueeze(0), self.out[: end - 1]])
            )
            self.terms.put(start, delta_hh.reshape(K, B, -1), h_prev)
        if self.need_x:
            torch.mm(delta_ih, self.weight_ih, out=self.grad_x[start:end].view(-1, self.x2d.shape[1]))
        if self.need_w_ih:
            self.grad_w_ih.addmm_(delta_ih.t(), self.x2d[start * B : end * B])
        if self.need_b:
            self.grad_b += delta_ih.sum(0)
        if self.need_w_hh:
            if start > 0:
                self.grad_w_hh.addmm_(delta_hh.t(), self.out[start - 1 : end - 1].reshape(-1, self.H))
            else:
                self.grad_w_hh.addmm_(delta_hh[:B].t(), self.h0)
                if end > 1:
                    self.grad_w_hh.addmm_(delta_hh[B:].t(), self.out[0 : end - 1].reshape(-1, self.H))


def differentiable_grads(
    recompute, inputs: tuple[torch.Tensor | None, ...], grad_outputs: tuple[torch.Tensor | None, ...]
) -> list[torch.Tensor | None]:
    """The input gradients of a layer as a differentiable function of its inputs: what a backward
    built with ``create_graph=True`` needs, since the hand-written loops are not themselves
    differentiable. ``recompute()`` runs the layer's forward again on the reference loop from the
    saved ``inputs`` (the original tensors, so the graph reaches the caller's leaves); autograd
    differentiates that. Entries that need no gradient are None.
    """
    with torch.enable_grad():
        outputs = recompute()
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if g is not None]
    wanted = [i for i, t in enumerate(inputs) if t is not None and t.requires_grad]
    result: list[torch.Tensor | None] = [None] * len(inputs)
    if not pairs or not wanted:
        return result
    got = torch.autograd.grad(
        [o for o, _ in pairs], [inputs[i] for i in wanted], [g for _, g in pairs], create_graph=True, allow_unused=True
    )
    for i, grad in zip(wanted, got):
        result[i] = grad
    return result


def open_backward(
    record: LayerRecorders | None,
    needs: tuple[bool, bool, bool, bool],
    x: torch.Tensor,
    h0: torch.Tensor,
    out: torch.Tensor,
    weight_ih: torch.Tensor,
    gate_width: int,
) -> tuple[WeightGrads, LayerRecorders | None]:
    """What every hand-written backward opens with: the weight-gradient accumulator for the inputs that
    need gradients (``needs`` = (x, W_ih, W_hh, b_ih or b_hh)), and the layer's recorders when a record
    is open now (else None: the norms are skipped)."""
    T, B = out.shape[:2]
    terms = None if record is None else record.terms()
    grads = WeightGrads(needs, x.reshape(T * B, -1), h0, out, weight_ih, gate_width, terms)
    return grads, (record if record is not None and record.active() else None)


def differentiable_backward(
    recompute: Callable[[], Sequence[torch.Tensor]],
    inputs: tuple[torch.Tensor | None, ...],
    grad_outputs: tuple[torch.Tensor | None, ...],
    extra: int,
) -> tuple[torch.Tensor | None, ...]:
    """A backward under ``create_graph=True`` (``differentiable_grads``), followed by ``extra`` Nones for
    the Function's arguments that are not tensors."""
    return (*differentiable_grads(recompute, inputs, grad_outputs), *([None] * extra))


def split_bias_grad(
    grad_b: torch.Tensor | None, has_bias: tuple[bool, bool], last_block: torch.Tensor | None = None
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(dL/db_ih, dL/db_hh) from dL/db, the bias gradient summed over steps and sequences: both biases
    enter every gate pre-activation once, so each gets the same values (None where absent). ``last_block``
    replaces dL/db_hh's last block: the GRU's b_hn, which enters through r * u_n."""
    if grad_b is None:
        return None, None
    grad_ih = grad_b if has_bias[0] else None
    if not has_bias[1]:
        return grad_ih, None
    if last_block is not None:
        return grad_ih, torch.cat([grad_b[: grad_b.shape[0] - last_block.shape[0]], last_block])
    return grad_ih, (grad_b.clone() if grad_ih is not None else grad_b)
