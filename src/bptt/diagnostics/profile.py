"""The gradient profile: how much of the loss's gradient reaches each step, by lag.

For layer l and step t (lag k = T - 1 - t),

    g[l, k] = (1/B) sum_b || dL/dh_t^{(l)}[b, :] ||_2

the batch mean of the L2 norm of the *total* gradient reaching the hidden state
(from the output at step t and from step t+1 through W_hh). When the loss reads
only h_T (sequence-to-one, readout "last"), Pascanu et al. (2013) bound it by

    g[k] <= g[0] * (gamma * sigma_max(W_hh))^k

with gamma the bound on |act'| (1/4 sigmoid, 1 tanh). The memory horizon is
the lag at which g first falls below epsilon * g[0].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from bptt.diagnostics.common import Objective, lag_index, recurrent_of
from bptt.modules import record_gradients

DEFAULT_EPSILON = 1e-3


@dataclass(frozen=True, eq=False)
class GradientProfile:
    """Batch-mean ||dL/dh_t||_2 (and ||dL/dc_t||_2 for an LSTM) per layer, indexed by lag.

    hidden: (num_layers, T); ``hidden[l, k]`` is layer l at lag k (k = 0: last step). With
        sequences of different true lengths, each is aligned at its own last step, and the
        mean at lag k is over the sequences that are at least k + 1 steps long.
    cell: (num_layers, T) the same for the LSTM cell state c_t, else None.
    reverse: (num_layers, T) the reverse direction of a bidirectional layer, whose lag counts
        steps from its own end, the first step (so lag k is step t = k), else None.
    """

    hidden: torch.Tensor
    cell: torch.Tensor | None = None
    reverse: torch.Tensor | None = None

    @property
    def num_layers(self) -> int:
        return self.hidden.shape[0]

    @property
    def seq_len(self) -> int:
        return self.hidden.shape[1]

    def ratio(self, lag: int, layer: int = -1) -> float:
        """g[layer, k] / g[layer, 0] at k = min(lag, T - 1); NaN when g[layer, 0] is 0."""
        row = self.hidden[layer]
        first = float(row[0])
        return float(row[lag_index(self.seq_len, lag)]) / first if first > 0 else math.nan

    def to_dict(self) -> dict:
        listed = lambda t: None if t is None else t.tolist()  # noqa: E731
        return {"hidden": self.hidden.tolist(), "cell": listed(self.cell), "reverse": listed(self.reverse)}


def gradient_profile(model: nn.Module, objective: Objective) -> GradientProfile:
    """Run ``objective`` and its backward, and record the gradient reaching every h_t.

    ``model`` is a bptt RNN/LSTM/GRU or a module holding one (the first is
    measured). Parameter gradients accumulate in ``model`` as in any backward.
    Values are as computed: NaN/inf gradients give NaN/inf entries.
    """
    recurrent_of(model)
    with record_gradients(model) as record:
        objective().backward()
    if record.hidden is None:
        raise RuntimeError("the loss does not depend on the recurrent layer's hidden states")

    def lagged(name, direction=0):
        return None if record.per_sample(name, direction) is None else record.by_lag(name, direction).detach().cpu()

    reverse = lagged("hidden", 1) if record.num_directions == 2 else None
    return GradientProfile(lagged("hidden"), lagged("cell"), reverse)


def memory_horizon(profile: torch.Tensor, epsilon: float = DEFAULT_EPSILON) -> int:
    """The largest lag K such that g[k] >= epsilon * g[0] for every k <= K.

    ``profile`` is one layer's gradient profile by lag, shape (T,). The result
    is T - 1 when the profile never falls below the threshold (the horizon is
    then at least the sequence), and 0 when g[0] is 0 or not finite.
    """
    if not 0 < epsilon < 1:
        raise ValueError(f"epsilon must lie in (0, 1), got {epsilon!r}")
    values = profile.detach().double().cpu()
    first = float(values[0])
    if not math.isfinite(first) or first <= 0:
        return 0
    below = (~(values >= epsilon * first)).nonzero()  # NaN counts as below
    return int(below[0]) - 1 if len(below) else len(values) - 1


@dataclass(frozen=True, eq=False)
class LayerGradients:
    """Per-layer gradient sizes of a stacked recurrent network (layer 0 reads the input).

    weight_ih, weight_hh: (num_layers,) ||dL/dW_ih^{(l)}||_F and ||dL/dW_hh^{(l)}||_F.
    hidden: (num_layers,) (1/T) sum_t (1/B) sum_b ||dL/dh_t^{(l)}[b]||_2, the profile's mean over steps.
    """

    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    hidden: torch.Tensor

    def to_dict(self) -> dict:
        return {
            "weight_ih": self.weight_ih.tolist(),
            "weight_hh": self.weight_hh.tolist(),
            "hidden": self.hidden.tolist(),
        }


def profile_and_layers(model: nn.Module, objective: Objective) -> tuple[GradientProfile, LayerGradients]:
    """One backward of ``objective``: the gradient profile, and the gradient each layer of the
    recurrent stack receives (the forward direction's weights).

    Gradients already in ``model`` are cleared first, so the norms are of this
    objective alone; they stay in ``model`` afterwards.
    """
    recurrent = recurrent_of(model)
    model.zero_grad(set_to_none=True)
    profile = gradient_profile(model, objective)

    def frobenius(weight_of) -> torch.Tensor:
        """||dL/dW^{(l)}||_F of every layer l (0 for a layer the loss does not reach)."""
        norms = []
        for layer in range(recurrent.num_layers):
            grad = weight_of(layer).grad
            norms.append(0.0 if grad is None else float(torch.linalg.vector_norm(grad.detach().double())))
        return torch.tensor(norms, dtype=torch.float64)

    weights = (frobenius(recurrent.input_weight), frobenius(recurrent.recurrent_weight))
    return profile, LayerGradients(*weights, profile.hidden.mean(dim=1))


def layer_gradients(model: nn.Module, objective: Objective) -> LayerGradients:
    """The per-layer half of ``profile_and_layers``."""
    return profile_and_layers(model, objective)[1]
