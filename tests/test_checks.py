"""The shared argument checks: a count is an int >= 1, and a bad one names the argument."""

import numpy as np
import pytest

from bptt.checks import NotAnIntError, is_int, positive_int


def test_a_positive_int_comes_back_as_an_int():
    assert positive_int("window", 3) == 3
    value = positive_int("window", np.int64(4))
    assert value == 4 and type(value) is int


@pytest.mark.parametrize("bad", [2.5, "3", None, True, False])
def test_anything_but_an_int_is_a_type_error_and_a_value_error(bad):
    for error in (NotAnIntError, TypeError, ValueError):
        with pytest.raises(error, match=r"^window must be a positive int, got "):
            positive_int("window", bad)


@pytest.mark.parametrize("bad", [0, -3])
def test_zero_and_negative_ints_are_value_errors(bad):
    with pytest.raises(ValueError, match=rf"^steps must be a positive int, got {bad}$") as raised:
        positive_int("steps", bad)
    assert not isinstance(raised.value, TypeError)


def test_a_bool_is_not_an_int():
    assert is_int(3) and is_int(np.int32(3)) and not is_int(True) and not is_int(3.0)
