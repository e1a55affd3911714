"""The explorable's network: its settings, and weights from a small generator written twice (here and in JS).

The page computes its numbers in the browser, so the weights must come from a
generator that both sides implement bit for bit on every draw. It is a
counter-based hash, not torch's generator:

    fmix32(z):  z ^= z >> 16;  z *= 0x85EBCA6B;  z ^= z >> 13;  z *= 0xC2B2AE35;  z ^= z >> 16
    key(seed, stream)  = fmix32(seed + 0x9E3779B9 * stream)
    draw(seed, stream, n) = fmix32(key(seed, stream) + 0x9E3779B9 * (n + 1))
    uniform = draw / 2^32 in [0, 1);   symmetric = 2 * uniform - 1 in [-1, 1)

(every product and sum modulo 2^32, ``>>`` a logical shift). Each tensor reads
its own stream (``STREAMS``), entry n in row-major order of the fused matrix,
so changing T leaves the weights alone. The inits, per gate block (H rows):

- ``random``: every weight and bias U(-1/sqrt(H), 1/sqrt(H)), torch.nn's default;
- ``xavier``: weights U(-a, a), a = sqrt(6 / (fan_in + fan_out)); biases 0;
- ``orthogonal``: each W_hh block the rows of a symmetric draw orthonormalised by
  modified Gram-Schmidt; W_ih Xavier; biases 0;
- ``identity``: each W_hh block the identity (IRNN); W_ih as ``random``; biases 0.

Then every W_hh block is scaled so that its largest singular value is
``spectral_norm``. An LSTM's forget-gate block of b_ih gets +1 (bptt's default
forget bias). The input is x[t, i] = input_scale * symmetric(seed, inputs, t * I + i),
the state starts at 0, and the loss reads the last step only: L = v . h_{T-1},
v[i] = symmetric(seed, readout, i).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

CELLS = ("sigmoid", "tanh", "relu", "leaky_relu", "lstm", "gru")
INITS = ("random", "xavier", "orthogonal", "identity")
GATES = {"lstm": 4, "gru": 3}
STREAMS = {"weight_ih": 1, "weight_hh": 2, "bias_ih": 3, "bias_hh": 4, "readout": 5, "inputs": 6}
INPUT_SIZE = 4
NEGATIVE_SLOPE = 0.01
FORGET_BIAS = 1.0
EPSILON = 1e-3
MAX_HIDDEN, MAX_STEPS, MAX_NORM, MAX_INPUT_SCALE = 64, 200, 10.0, 10.0
_GOLDEN, _MASK = 0x9E3779B9, 0xFFFFFFFF


@dataclass(frozen=True)
class ExploreSettings:
    """Every control of the explorable. ``clip``: the gradient-norm threshold (None: no clipping);
    ``lag``: the lag the sentence reads (at most T - 1)."""

    cell: str = "sigmoid"
    hidden_size: int = 32
    seq_len: int = 100
    spectral_norm: float = 1.0
    init: str = "random"
    input_scale: float = 1.0
    clip: float | None = None
    seed: int = 0
    lag: int = 50

    def __post_init__(self) -> None:
        _choice("cell", self.cell, CELLS)
        _choice("init", self.init, INITS)
        _whole("hidden_size", self.hidden_size, 1, MAX_HIDDEN)
        _whole("seq_len", self.seq_len, 2, MAX_STEPS)
        _whole("seed", self.seed, 0, _MASK)
        _whole("lag", self.lag, 1, MAX_STEPS - 1)
        _number("spectral_norm", self.spectral_norm, 0.0, MAX_NORM, low_open=True)
        _number("input_scale", self.input_scale, 0.0, MAX_INPUT_SCALE)
        if self.clip is not None:
            _number("clip", self.clip, 0.0, math.inf, low_open=True)

    @property
    def gates(self) -> int:
        return GATES.get(self.cell, 1)

    @property
    def gated(self) -> bool:
        return self.cell in GATES

    @property
    def lag_used(self) -> int:
        return min(self.lag, self.seq_len - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExploreSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown explore setting {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        return cls(**values)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _whole(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")


def _number(name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value > high or value < low or (low_open and value == low):
        side = f"above {low:g}" if low_open else f"from {low:g}"
        top = "" if math.isinf(high) else f" to {high:g}"
        raise ValueError(f"{name} must be a finite number {side}{top}, got {value!r}")


# -- the generator ---------------------------------------------------------------------------
def _fmix32(z: np.ndarray) -> np.ndarray:
    """murmur3's 32-bit finaliser, elementwise on uint64 arrays holding 32-bit values."""
    z = z ^ (z >> 16)
    z = (z * 0x85EBCA6B) & _MASK
    z = z ^ (z >> 13)
    z = (z * 0xC2B2AE35) & _MASK
    return z ^ (z >> 16)


def draws(seed: int, stream: str, count: int) -> np.ndarray:
    """The first ``count`` 32-bit draws of ``stream`` as uint64 (see the module docstring)."""
    key = _fmix32(np.array([(seed + _GOLDEN * STREAMS[stream]) & _MASK], dtype=np.uint64))[0]
    n = np.arange(1, count + 1, dtype=np.uint64)
    return _fmix32((key + np.uint64(_GOLDEN) * n) & np.uint64(_MASK))


def uniform(seed: int, stream: str, count: int) -> np.ndarray:
    return draws(seed, stream, count).astype(np.float64) / 2.0**32


def symmetric(seed: int, stream: str, count: int) -> np.ndarray:
    return 2.0 * uniform(seed, stream, count) - 1.0


# -- the inits -------------------------------------------------------------------------------
def gram_schmidt(block: np.ndarray) -> np.ndarray:
    """The rows of a square block made orthonormal, in order, by modified Gram-Schmidt."""
    rows = block.astype(np.float64).copy()
    for i in range(rows.shape[0]):
        for j in range(i):
            rows[i] -= float(rows[j] @ rows[i]) * rows[j]
        rows[i] /= math.sqrt(float(rows[i] @ rows[i]))
    return rows


def spectral_norm(block: np.ndarray) -> float:
    return float(np.linalg.norm(block, 2))


@dataclass(frozen=True, eq=False)
class Network:
    """The explorable's weights and data in float64, torch.nn's layout: ``weight_ih`` (G*H, I),
    ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh`` (G*H,), ``readout`` v (H,), ``inputs`` (T, I).
    ``natural_norm``: each W_hh block's largest singular value before scaling."""

    settings: ExploreSettings
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    readout: np.ndarray
    inputs: np.ndarray
    natural_norm: list[float]


def make_network(settings: ExploreSettings) -> Network:
    """The weights, input and readout of ``settings`` (see the module docstring)."""
    s, H, I = settings, settings.hidden_size, INPUT_SIZE
    G = s.gates
    raw_ih = symmetric(s.seed, "weight_ih", G * H * I).reshape(G * H, I)
    raw_hh = symmetric(s.seed, "weight_hh", G * H * H).reshape(G * H, H)
    default = 1 / math.sqrt(H)
    xavier_ih, xavier_hh = math.sqrt(6 / (I + H)), math.sqrt(6 / (2 * H))
    weight_ih = raw_ih * (xavier_ih if s.init in ("xavier", "orthogonal") else default)
    blocks = []
    for g in range(G):
        raw = raw_hh[g * H : (g + 1) * H]
        if s.init == "random":
            blocks.append(raw * default)
        elif s.init == "xavier":
            blocks.append(raw * xavier_hh)
        elif s.init == "orthogonal":
            blocks.append(gram_schmidt(raw))
        else:
            blocks.append(np.eye(H))
    natural = [spectral_norm(b) for b in blocks]
    weight_hh = np.concatenate([b * (s.spectral_norm / n) for b, n in zip(blocks, natural)])
    if s.init == "random":
        bias_ih = symmetric(s.seed, "bias_ih", G * H) * default
        bias_hh = symmetric(s.seed, "bias_hh", G * H) * default
    else:
        bias_ih, bias_hh = np.zeros(G * H), np.zeros(G * H)
    if s.cell == "lstm":
        bias_ih[H : 2 * H] += FORGET_BIAS
    readout = symmetric(s.seed, "readout", H)
    inputs = s.input_scale * symmetric(s.seed, "inputs", s.seq_len * I).reshape(s.seq_len, I)
    return Network(s, weight_ih, weight_hh, bias_ih, bias_hh, readout, inputs, natural)
