"""Weight initialisation schemes for recurrent layers.

Recurrent weights are stored fused, ``weight_hh`` of shape (G*H, H) with G gate
blocks (1 for RNN, 4 for LSTM in order i, f, g, o; 3 for GRU in order r, z, n).
Every scheme except ``pytorch`` is applied to each (H, .) gate block on its own,
so an orthogonal init gives G orthogonal blocks rather than one tall
semi-orthogonal matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from bptt.checks import is_int
from bptt.registry import Registry

#: (weight, kind) -> None, in place; kind is "ih" or "hh"; ``scale`` is a gain.
InitFn = Callable[[torch.Tensor, str, float, torch.Generator | None], None]
INITS: Registry[InitFn] = Registry("init")


def _blocks(weight: torch.Tensor, gates: int) -> list[torch.Tensor]:
    return list(weight.data.chunk(gates, dim=0))


@torch.no_grad()
def _xavier(block: torch.Tensor, kind: str, scale: float, gen: torch.Generator | None) -> None:
    fan_out, fan_in = block.shape
    bound = scale * math.sqrt(6.0 / (fan_in + fan_out))
    block.uniform_(-bound, bound, generator=gen)


@torch.no_grad()
def _orthogonal(block: torch.Tensor, kind: str, scale: float, gen: torch.Generator | None) -> None:
    nn.init.orthogonal_(block, gain=scale, generator=gen)


@torch.no_grad()
def _identity(block: torch.Tensor, kind: str, scale: float, gen: torch.Generator | None) -> None:
    # IRNN (Le, Jaitly, Hinton 2015): W_hh = scale * I, input weights N(0, 0.001^2).
    if kind == "hh":
        block.copy_(scale * torch.eye(*block.shape, dtype=block.dtype, device=block.device))
    else:
        block.normal_(0.0, 1e-3, generator=gen)


@torch.no_grad()
def _kaiming(block: torch.Tensor, kind: str, scale: float, gen: torch.Generator | None) -> None:
    fan_in = block.shape[1]
    bound = scale * math.sqrt(6.0 / fan_in)  # He uniform, gain sqrt(2)
    block.uniform_(-bound, bound, generator=gen)


INITS.add("xavier", _xavier)
INITS.add("orthogonal", _orthogonal)
INITS.add("identity", _identity)
INITS.add("kaiming", _kaiming)
#: Schemes of the gate biases alone, for the gated cells (the weights keep torch's init).
GATE_INITS = ("chrono",)
INIT_NAMES = ["pytorch", *GATE_INITS, *INITS.names()]


def chrono_bias(hidden_size: int, t_max: int, gen: torch.Generator | None) -> torch.Tensor:
    """Chrono initialisation (Tallec & Ollivier 2018): b = log(u), u ~ U[1, t_max - 1], one per unit.

    A gate that keeps the state with probability sigmoid(b) forgets with a time
    constant of about exp(b) steps, so these biases spread the units' memory
    over time scales from 1 to ``t_max`` steps, the longest dependency expected.
    """
    if not is_int(t_max) or t_max < 2:
        raise ValueError(f"t_max must be an int >= 2 for init 'chrono', got {t_max!r}")
    return torch.empty(hidden_size).uniform_(1.0, float(t_max - 1), generator=gen).log_()


@torch.no_grad()
def pytorch_uniform(params: list[torch.Tensor], hidden_size: int, gen: torch.Generator | None) -> None:
    """torch.nn.RNNBase.reset_parameters: every tensor ~ U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in params:
        p.uniform_(-bound, bound, generator=gen)


@torch.no_grad()
def init_layer(
    scheme: str,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    biases: list[torch.Tensor],
    gates: int,
    scale: float,
    gen: torch.Generator | None,
) -> None:
    """Apply a non-PyTorch scheme per gate block; biases are set to zero."""
    fn = INITS.get(scheme)
    for block in _blocks(weight_ih, gates):
        fn(block, "ih", scale, gen)
    for block in _blocks(weight_hh, gates):
        fn(block, "hh", scale, gen)
    for b in biases:
        b.zero_()


def linear(
    in_features: int, out_features: int, bias: bool = True, generator: torch.Generator | None = None
) -> nn.Linear:
    """An ``nn.Linear`` with torch's default init (weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    as ``kaiming_uniform_(a=sqrt(5))`` gives), drawn from ``generator``."""
    layer = nn.utils.skip_init(nn.Linear, in_features, out_features, bias=bias)
    bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        if layer.bias is not None:
            layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def embedding(num_embeddings: int, embedding_dim: int, generator: torch.Generator | None = None) -> nn.Embedding:
    """An ``nn.Embedding`` with torch's default init (N(0, 1)), drawn from ``generator``."""
    layer = nn.utils.skip_init(nn.Embedding, num_embeddings, embedding_dim)
    with torch.no_grad():
        layer.weight.normal_(0.0, 1.0, generator=generator)
    return layer
