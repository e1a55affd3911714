r"""The activation table of the simple RNN cell, h_t = act(a_t) with
a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh.

One entry per activation holds everything an engine needs:

- ``apply(a, slope)``: h = act(a), out of place (the reference loop, the cells);
- ``apply_(a, slope)``: the same in place (the fast forward);
- ``derivative(h, a, slope, out)``: out = act'(a), read off the output h where the
  activation allows it, else off the kept pre-activation a (``keeps_preactivation``
  says when a is needed, and only then is it passed);
- ``gamma``: the bound on |act'| that enters the vanishing-gradient argument
  (Pascanu et al. 2013: if the largest singular value of W_hh is below 1/gamma,
  the gradient must vanish with lag); ``derivative_bound(slope)`` evaluates it;
- ``default_slope``: the negative-side slope of leaky_relu and the initial one of
  prelu (None for activations without one); ``learned_slope``: prelu's slope is a
  per-unit parameter, whose gradient needs ``slope_factor(h, a, slope, out)`` =
  d act / d slope = min(a, 0).

``slope`` is a float for leaky_relu, a (H,) tensor for prelu, None otherwise.
An entry registered without ``derivative`` still runs, on the reference loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bptt.registry import Registry

Slope = torch.Tensor | float | None

#: The negative-side slope of leaky_relu, and prelu's initial slope, unless given.
DEFAULT_SLOPE = 0.01


def _never(slope: Slope) -> bool:
    return False


@dataclass(frozen=True)
class Activation:
    """One elementwise nonlinearity of the RNN cell (see the module docstring for each field)."""

    name: str
    apply: Callable[[torch.Tensor, Slope], torch.Tensor]
    gamma: float
    derivative: Callable[[torch.Tensor, torch.Tensor | None, Slope, torch.Tensor], None] | None = None
    apply_: Callable[[torch.Tensor, Slope], None] | None = None
    keeps_preactivation: Callable[[Slope], bool] = _never
    default_slope: float | None = None
    learned_slope: bool = False
    slope_factor: Callable[[torch.Tensor, torch.Tensor | None, Slope, torch.Tensor], None] | None = None
    #: The name stem of the learned per-unit parameter (``learned_slope``): ``prelu_weight_l{k}``, ...
    parameter: str = "prelu_weight"

    @property
    def has_slope(self) -> bool:
        return self.default_slope is not None

    def forward_(self, a: torch.Tensor, slope: Slope) -> None:
        """h = act(a) in place over ``a``."""
        if self.apply_ is not None:
            self.apply_(a, slope)
        else:
            a.copy_(self.apply(a, slope))

    def derivative_bound(self, slope: Slope = None) -> float:
        """gamma = max_a |act'(a)|: the table's value, or max(1, |slope|) for a sloped activation."""
        if not self.has_slope or slope is None:
            return self.gamma
        return max(1.0, float(torch.as_tensor(slope).abs().max()))


ACTIVATIONS: Registry[Activation] = Registry("activation")


# -- sigmoid, tanh, relu: act' from the output ------------------------------------------------
def _sigmoid_derivative(h: torch.Tensor, a: torch.Tensor | None, slope: Slope, out: torch.Tensor) -> None:
    torch.mul(h, h, out=out).neg_().add_(h)  # sigma'(a) = h (1 - h)


def _tanh_derivative(h: torch.Tensor, a: torch.Tensor | None, slope: Slope, out: torch.Tensor) -> None:
    torch.mul(h, h, out=out).neg_().add_(1)  # 1 - h^2


def _relu_derivative(h: torch.Tensor, a: torch.Tensor | None, slope: Slope, out: torch.Tensor) -> None:
    torch.gt(h, 0, out=out)  # [a > 0] = [h > 0]


# -- leaky ReLU (fixed slope) and PReLU (learned per-unit slope) -------------------------------
# act'(a) = slope + (1 - slope) [a > 0]. h and a share their sign while every slope is positive,
# so act' is read off h; a slope <= 0 (prelu) or < 0 (leaky) keeps a as well.
def _leaky(a: torch.Tensor, slope: Slope) -> torch.Tensor:
    return F.leaky_relu(a, float(DEFAULT_SLOPE if slope is None else slope))


def _leaky_(a: torch.Tensor, slope: Slope) -> None:
    F.leaky_relu_(a, float(DEFAULT_SLOPE if slope is None else slope))


def _leaky_derivative(h: torch.Tensor, a: torch.Tensor | None, slope: Slope, out: torch.Tensor) -> None:
    torch.gt(h if a is None else a, 0, out=out)
    out.mul_(1 - slope).add_(slope)


def _prelu(a: torch.Tensor, slope: Slope) -> torch.Tensor:
    if not isinstance(slope, torch.Tensor):
        raise TypeError("prelu needs its per-unit slope tensor as slope")
    return F.prelu(a, slope)


def _prelu_(a: torch.Tensor, slope: Slope) -> None:
    a.copy_(_prelu(a, slope))


def _prelu_derivative(h: torch.Tensor, a: torch.Tensor | None, slope: Slope, out: torch.Tensor) -> None:
    torch.ge(h if a is None else a, 0, out=out)
    out.mul_(1 - slope).add_(slope)


def _prelu_slope_factor(h: torch.Tensor, a: torch.Tensor | None, slope: Slope, out: torch.Tensor) -> None:
    """out = min(a, 0), from a, or from h as min(h, 0) / w when every slope w is positive."""
    if a is not None:
        torch.clamp(a, max=0, out=out)
    else:
        torch.clamp(h, max=0, out=out).div_(slope)


# gamma = max |act'|: sigma'(0) = sigma(0)(1 - sigma(0)) = 1/4 for sigmoid, 1 for the others.
ACTIVATIONS.add(
    "sigmoid",
    Activation("sigmoid", lambda a, s: torch.sigmoid(a), 0.25, _sigmoid_derivative, lambda a, s: torch.sigmoid_(a)),
)
ACTIVATIONS.add(
    "tanh", Activation("tanh", lambda a, s: torch.tanh(a), 1.0, _tanh_derivative, lambda a, s: torch.tanh_(a))
)
ACTIVATIONS.add(
    "relu", Activation("relu", lambda a, s: torch.relu(a), 1.0, _relu_derivative, lambda a, s: torch.relu_(a))
)
ACTIVATIONS.add(
    "leaky_relu",
    Activation(
        "leaky_relu",
        _leaky,
        1.0,
        _leaky_derivative,
        _leaky_,
        keeps_preactivation=lambda s: float(s) < 0,
        default_slope=DEFAULT_SLOPE,
    ),
)


def _prelu_keeps(slope: Slope) -> bool:
    # On a GPU, always: reading the slopes' signs back to the host would stall the stream (and
    # break a CUDA graph's capture); the pre-activations cost one more (T, B, H) buffer.
    return slope.is_cuda or not bool((slope > 0).all())


ACTIVATIONS.add(
    "prelu",
    Activation(
        "prelu",
        _prelu,
        1.0,
        _prelu_derivative,
        _prelu_,
        keeps_preactivation=_prelu_keeps,
        default_slope=DEFAULT_SLOPE,
        learned_slope=True,
        slope_factor=_prelu_slope_factor,
    ),
)


# -- modReLU (Arjovsky et al. 2016), real-valued: a learned per-unit bias b ----------------------
# modrelu(a) = sign(a) relu(|a| + b). h = 0 exactly where |a| + b <= 0, and h has a's sign
# elsewhere, so act' = [h != 0] and d act / d b = sign(a) [|a| + b > 0] = sign(h) are read off h.
def _modrelu(a: torch.Tensor, bias: Slope) -> torch.Tensor:
    if not isinstance(bias, torch.Tensor):
        raise TypeError("modrelu needs its per-unit bias tensor as slope")
    return torch.sign(a) * torch.relu(a.abs() + bias)


def _modrelu_derivative(h: torch.Tensor, a: torch.Tensor | None, slope: Slope, out: torch.Tensor) -> None:
    torch.ne(h, 0, out=out)


def _modrelu_bias_factor(h: torch.Tensor, a: torch.Tensor | None, slope: Slope, out: torch.Tensor) -> None:
    torch.sign(h, out=out)


ACTIVATIONS.add(
    "modrelu",
    Activation(
        "modrelu",
        _modrelu,
        1.0,
        _modrelu_derivative,
        lambda a, s: a.copy_(_modrelu(a, s)),
        learned_slope=True,
        slope_factor=_modrelu_bias_factor,
        parameter="modrelu_bias",
    ),
)
