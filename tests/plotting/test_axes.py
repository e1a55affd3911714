"""Every figure's log axis leaves exact zeros and non-finite values off."""

import math

import torch

from bptt.plotting.axes import log_axis_values


def test_zeros_negatives_and_non_finite_values_are_left_off_a_log_axis():
    values = log_axis_values([1e-300, 0.0, -1.0, float("inf"), float("nan"), 2.5])
    assert values[0] == 1e-300 and values[-1] == 2.5
    assert all(math.isnan(v) for v in values[1:5])


def test_a_tensor_gives_plain_floats():
    values = log_axis_values(torch.tensor([0.5, 0.0], dtype=torch.float64))
    assert values[0] == 0.5 and math.isnan(values[1]) and all(type(v) is float for v in values)
