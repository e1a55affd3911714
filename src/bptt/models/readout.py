"""Readouts: how a sequence of hidden states (T, B, H) becomes one vector per sequence.

``lengths`` (B,), when given, marks the real steps of each sequence; steps at
or after a sequence's length are padding and take no part.
"""

from __future__ import annotations

import torch
from torch import nn

from bptt.modules import init
from bptt.tasks.base import step_mask


def last_state(output: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """h at each sequence's last real step: (B, H)."""
    if lengths is None:
        return output[-1]
    index = (lengths - 1).clamp(min=0).view(1, -1, 1).expand(1, output.shape[1], output.shape[2])
    return output.gather(0, index).squeeze(0)


def mean_state(output: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Mean of h over each sequence's real steps: (B, H)."""
    if lengths is None:
        return output.mean(0)
    mask = step_mask(lengths, output.shape[0]).unsqueeze(-1).to(output.dtype)
    return (output * mask).sum(0) / lengths.clamp(min=1).unsqueeze(-1).to(output.dtype)


class AdditiveAttention(nn.Module):
    r"""Additive (Bahdanau) attention over all hidden states:

    .. math:: e_t = v^T \tanh(W h_t + b),\quad \alpha = \mathrm{softmax}_t(e),\quad
              \text{context} = \sum_t \alpha_t h_t

    Every h_t reaches the output through one step, whatever its lag, which is
    why attention sidesteps the product of Jacobians that makes gradients vanish.
    """

    def __init__(
        self, hidden_size: int, attention_size: int | None = None, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        attention_size = attention_size or hidden_size
        self.project = init.linear(hidden_size, attention_size, generator=generator)
        self.score = init.linear(attention_size, 1, bias=False, generator=generator)
        self.last_weights: torch.Tensor | None = None

    def forward(self, output: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.score(torch.tanh(self.project(output))).squeeze(-1)  # (T, B)
        if lengths is not None:
            scores = scores.masked_fill(~step_mask(lengths, output.shape[0]), float("-inf"))
        weights = torch.softmax(scores, dim=0)  # (T, B)
        self.last_weights = weights.detach()
        return (weights.unsqueeze(-1) * output).sum(0)
