"""The explorable's numbers as bptt computes them: the test vectors the page is checked against.

The network of ``ExploreSettings`` (``weights.make_network``) is loaded into a
bptt ``RNN``/``LSTM``/``GRU`` in float64, run over its input, and the loss
L = v . h_{T-1} is backpropagated inside ``bptt.record_gradients``; every
number is then read the way ``bptt diagnose`` reads it:

- ``profile``: ||dL/dh_t|| by lag k = T - 1 - t (``cell``: ||dL/dc_t|| for an LSTM);
- ``bound``: Pascanu's g[0] (gamma sigma_max(W_hh))^k, plain RNNs only;
- ``factor_max``, ``factor_mean``: the running product over the last k steps of
  max_i and mean_i |act'(a_t,i)| (plain RNNs); for an LSTM the forget gate f_t and
  for a GRU the update gate z_t (the share of the old state kept), as the mean over
  units of each unit's product ("mean") and its largest unit ("max");
- ``singular_values``: (T, S) of each step Jacobian ds_t/ds_{t-1} (``jacobian_chain``);
- ``spectral_norms``: sigma_max of each W_hh gate block;
- ``horizon`` (first lag below epsilon g[0]) and ``reach`` (last lag at or above it);
- ``grad_norm``: ||dL/dtheta||_2 over the layer's parameters, and ``clip_factor``
  min(1, clip / grad_norm), the factor clipping multiplies the whole gradient by.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from bptt.diagnostics.jacobian import jacobian_chain
from bptt.diagnostics.profile import memory_horizon, memory_reach
from bptt.engine import ACTIVATIONS
from bptt.explore.weights import EPSILON, INPUT_SIZE, NEGATIVE_SLOPE, ExploreSettings, Network, make_network
from bptt.modules import GRU, LSTM, RNN, record_gradients


def bptt_layer(network: Network) -> RNN | LSTM | GRU:
    """A bptt layer in float64 holding ``network``'s weights."""
    s = network.settings
    layer: RNN | LSTM | GRU
    if s.cell == "lstm":
        layer = LSTM(INPUT_SIZE, s.hidden_size)
    elif s.cell == "gru":
        layer = GRU(INPUT_SIZE, s.hidden_size)
    else:
        layer = RNN(INPUT_SIZE, s.hidden_size, activation=s.cell, negative_slope=NEGATIVE_SLOPE)
    layer = layer.double()
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))  # noqa: E731
    layer.load_state_dict(
        {
            "weight_ih_l0": as_tensor(network.weight_ih),
            "weight_hh_l0": as_tensor(network.weight_hh),
            "bias_ih_l0": as_tensor(network.bias_ih),
            "bias_hh_l0": as_tensor(network.bias_hh),
        }
    )
    return layer


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def _factors(network: Network, hidden: np.ndarray) -> np.ndarray:
    """(T, H) each step's factor: |act'(a_t)| for a plain RNN, f_t for an LSTM, z_t for a GRU."""
    s, H = network.settings, network.settings.hidden_size
    previous = np.vstack([np.zeros((1, H)), hidden[:-1]])
    pre = network.inputs @ network.weight_ih.T + network.bias_ih + previous @ network.weight_hh.T + network.bias_hh
    if s.cell == "lstm":
        return _sigmoid(pre[:, H : 2 * H])
    if s.cell == "gru":
        return _sigmoid(pre[:, H : 2 * H])
    activation = ACTIVATIONS.get(s.cell)
    a = torch.from_numpy(pre)
    derivative = torch.empty_like(a)
    h = activation.apply(a, NEGATIVE_SLOPE if activation.has_slope else None)
    assert activation.derivative is not None  # every plain activation has one
    activation.derivative(h, a, NEGATIVE_SLOPE if activation.has_slope else None, derivative)
    return derivative.abs().numpy()


def _running(per_step: np.ndarray) -> np.ndarray:
    """By lag k = 0 .. T-1: the product of the factors of the last k steps (1 at k = 0)."""
    by_lag = per_step[::-1]
    return np.concatenate([[1.0], np.cumprod(by_lag)[:-1]])


def measure(settings: ExploreSettings) -> dict[str, Any]:
    """Every number the explorable shows, computed by bptt in float64 (see the module docstring)."""
    network = make_network(settings)
    layer = bptt_layer(network)
    x = torch.from_numpy(network.inputs).view(settings.seq_len, 1, INPUT_SIZE)
    readout = torch.from_numpy(network.readout)
    with record_gradients(layer) as record:
        out, _ = layer(x)
        loss = (out[-1, 0] * readout).sum()
        loss.backward()
    hidden_by_lag = record.by_lag("hidden")
    assert hidden_by_lag is not None  # the backward above reached every step
    profile = hidden_by_lag[0].double()
    cell = record.by_lag("cell")
    grad_norm = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in layer.parameters() if p.grad is not None))
    chain = jacobian_chain(layer, x)
    hidden = out[:, 0].detach().numpy()
    factors = _factors(network, hidden)
    gated = settings.gated
    if gated:  # each unit's product over the last k steps, then the mean and the largest over units
        per_unit = np.vstack([np.ones((1, settings.hidden_size)), np.cumprod(factors[::-1], axis=0)[:-1]])
        factor_mean, factor_max = per_unit.mean(axis=1), per_unit.max(axis=1)
    else:
        factor_mean, factor_max = _running(factors.mean(axis=1)), _running(factors.max(axis=1))
    H = settings.hidden_size
    spectral = [
        float(torch.linalg.matrix_norm(layer.get_parameter("weight_hh_l0")[g * H : (g + 1) * H].detach(), ord=2))
        for g in range(settings.gates)
    ]
    first = float(profile[0])
    bound = None
    if not gated:
        gamma = ACTIVATIONS.get(settings.cell).derivative_bound(
            NEGATIVE_SLOPE if settings.cell == "leaky_relu" else None
        )
        bound = [first * (gamma * spectral[0]) ** k for k in range(settings.seq_len)]
    clip_factor = 1.0 if settings.clip is None or grad_norm <= settings.clip else settings.clip / grad_norm
    return {
        "settings": settings.to_dict(),
        "profile": profile.tolist(),
        "cell": None if cell is None else cell[0].double().tolist(),
        "bound": bound,
        "factor_mean": factor_mean.tolist(),
        "factor_max": factor_max.tolist(),
        "singular_values": chain.singular_values.tolist(),
        "spectral_norms": spectral,
        "natural_norms": network.natural_norm,
        "horizon": memory_horizon(profile, EPSILON),
        "reach": memory_reach(profile, EPSILON),
        "ratio": float(profile[settings.lag_used]) / first if first > 0 else math.nan,
        "grad_norm": grad_norm,
        "clip_factor": clip_factor,
        "loss": float(loss.detach()),
    }


#: The settings the page is tested against: every cell at two seeds, and each init, clipping and input scale.
VECTOR_SETTINGS = (
    *(
        ExploreSettings(cell=cell, hidden_size=16, seq_len=60, spectral_norm=norm, init=init, seed=seed, lag=40)
        for cell in ("sigmoid", "tanh", "relu", "leaky_relu", "lstm", "gru")
        for seed, init, norm in ((0, "random", 1.0), (7, "orthogonal", 1.1))
    ),
    ExploreSettings(cell="tanh", init="xavier", spectral_norm=0.9, input_scale=3.0, clip=0.5, seed=3),
    ExploreSettings(cell="relu", init="identity", spectral_norm=1.0, hidden_size=8, seq_len=200, seed=11, lag=150),
    ExploreSettings(cell="lstm", init="orthogonal", hidden_size=64, seq_len=120, seed=5, clip=1.0),
)


def test_vectors(settings: tuple[ExploreSettings, ...] = VECTOR_SETTINGS) -> list[dict[str, Any]]:
    """``measure`` at every one of ``settings``: what ``bptt explore --vectors`` writes."""
    return [measure(s) for s in settings]
