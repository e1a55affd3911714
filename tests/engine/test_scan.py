"""The diagonal linear recurrence h_t = a_t h_{t-1} + b_t: gradcheck, parity with the plain loop, the record."""

import pytest
import torch

from bptt.engine.scan import METHODS, diagonal_scan, log_space_scan, reference_scan

T, B, N = 7, 3, 4


def _inputs(complex_state: bool, constant: bool, requires_grad: bool = True):
    dtype = torch.complex128 if complex_state else torch.float64
    a = torch.randn(N if constant else (T, B, N), dtype=dtype) * 0.6
    b, h0 = torch.randn(T, B, N, dtype=dtype), torch.randn(B, N, dtype=dtype)
    return [t.requires_grad_(requires_grad) for t in (a, b, h0)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("complex_state", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("constant", [False, True], ids=["per-step-a", "constant-a"])
def test_gradcheck(method, complex_state, constant):
    inputs = _inputs(complex_state, constant)
    assert torch.autograd.gradcheck(lambda a, b, h0: diagonal_scan(a, b, h0, None, method), inputs)


@pytest.mark.parametrize("method", METHODS)
def test_double_backward(method):
    inputs = _inputs(False, False)
    assert torch.autograd.gradgradcheck(lambda a, b, h0: diagonal_scan(a, b, h0, None, method), inputs)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("complex_state", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("constant", [False, True], ids=["per-step-a", "constant-a"])
def test_matches_the_plain_loop(method, complex_state, constant):
    inputs = _inputs(complex_state, constant)
    weights = torch.randn(T, B, N, dtype=inputs[1].dtype)
    ours = diagonal_scan(*inputs, None, method)
    theirs = reference_scan(*inputs)
    torch.testing.assert_close(ours, theirs)
    grads = torch.autograd.grad((ours * weights).real.sum(), inputs)
    expected = torch.autograd.grad((theirs * weights).real.sum(), inputs)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


def test_the_plain_loop_is_the_recurrence():
    a, b, h0 = _inputs(True, False, requires_grad=False)
    h, expected = h0, []
    for t in range(T):
        h = a[t] * h + b[t]
        expected.append(h)
    torch.testing.assert_close(reference_scan(a, b, h0), torch.stack(expected))


@pytest.mark.parametrize("method", [*METHODS, "reference"])
@pytest.mark.parametrize("complex_state", [False, True], ids=["real", "complex"])
def test_the_record_is_the_total_gradient_of_every_state(method, complex_state, open_record, norms_of):
    """||dL/dh_t|| from the reverse pass equals the norm of autograd's gradient of each h_t."""
    a, b, h0 = _inputs(complex_state, False)
    weights = torch.randn(T, B, N, dtype=b.dtype)
    record, recorders = open_record(T)
    if method == "reference":
        out = reference_scan(a, b, h0, recorders.hidden)
    else:
        out = diagonal_scan(a, b, h0, recorders.hidden, method)
    ((out * weights).real.sum() + out[-1].abs().sum()).backward()
    states, h = [], h0.detach().requires_grad_()
    for t in range(T):
        h = a[t].detach() * h + b[t].detach()
        h.retain_grad()
        states.append(h)
    (torch.stack(states) * weights).real.sum().add(states[-1].abs().sum()).backward()
    torch.testing.assert_close(record.per_sample()[0], norms_of(states))


def test_log_space_form_is_the_same_recurrence_for_positive_values():
    a, b = torch.rand(T, B, N, dtype=torch.float64), torch.rand(T, B, N, dtype=torch.float64)
    zero = torch.zeros(B, N, dtype=torch.float64)
    torch.testing.assert_close(log_space_scan(a.log(), b.log()), reference_scan(a, b, zero))


def test_a_zero_factor_and_a_single_step():
    a, b, h0 = _inputs(False, False, requires_grad=False)
    a[3] = 0  # the state forgets everything at step 3: no log, no division anywhere
    for method in METHODS:
        torch.testing.assert_close(diagonal_scan(a, b, h0, None, method), reference_scan(a, b, h0))
        torch.testing.assert_close(diagonal_scan(a[:1], b[:1], h0, None, method), reference_scan(a[:1], b[:1], h0))


def test_unknown_method():
    with pytest.raises(ValueError, match="allowed: sequential, parallel"):
        diagonal_scan(*_inputs(False, False), method="log")
