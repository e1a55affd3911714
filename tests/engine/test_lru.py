"""The LRU's recurrence: gradcheck on every method, parity with an explicit complex loop, the record."""

import math

import pytest
import torch

from bptt.engine.lru import METHODS, eigenvalues, lru_layer

T, B, H, N = 6, 3, 4, 5


def _params():
    d = torch.float64
    u = torch.randn(T, B, H, dtype=d)
    x0 = torch.randn(B, N, dtype=torch.complex128)
    nu_log = torch.randn(N, dtype=d) * 0.3 - 1
    theta_log = torch.randn(N, dtype=d)
    gamma_log = torch.randn(N, dtype=d) * 0.1
    b_re, b_im = torch.randn(N, H, dtype=d), torch.randn(N, H, dtype=d)
    c_re, c_im = torch.randn(H, N, dtype=d), torch.randn(H, N, dtype=d)
    weight_d = torch.randn(H, dtype=d)
    return [t.requires_grad_() for t in (u, x0, nu_log, theta_log, gamma_log, b_re, b_im, c_re, c_im, weight_d)]


@pytest.mark.parametrize("method", METHODS)
def test_gradcheck(method):
    assert torch.autograd.gradcheck(lambda *p: lru_layer(*p, method=method), _params())


def test_the_paper_s_equations_and_every_method_agree():
    params = _params()
    u, x0, nu_log, theta_log, gamma_log, b_re, b_im, c_re, c_im, weight_d = params
    lam = torch.exp(-torch.exp(nu_log) + 1j * torch.exp(theta_log))
    b_norm = torch.complex(b_re, b_im) * torch.exp(gamma_log).unsqueeze(-1)
    c = torch.complex(c_re, c_im)
    x, ys = x0, []
    for t in range(T):
        x = lam * x + u[t].to(torch.complex128) @ b_norm.T
        ys.append((x @ c.T).real + weight_d * u[t])
    expected = (torch.stack(ys), x)
    wanted = torch.autograd.grad(expected[0].sin().sum() + expected[1].abs().sum(), params)
    for method in METHODS:
        y, x_last = lru_layer(*params, method=method)
        torch.testing.assert_close((y, x_last), expected)
        grads = torch.autograd.grad(y.sin().sum() + x_last.abs().sum(), params)
        for got, want in zip(grads, wanted):
            torch.testing.assert_close(got, want)


def test_eigenvalues_lie_inside_the_unit_circle_for_any_parameters():
    nu_log = torch.tensor([-20.0, -5.0, 0.0, 3.0], dtype=torch.float64)
    theta_log = torch.tensor([-3.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    lam = eigenvalues(nu_log, theta_log)
    assert (lam.abs() < 1).all()
    torch.testing.assert_close(lam.abs(), torch.exp(-torch.exp(nu_log)))
    torch.testing.assert_close(lam.angle().remainder(2 * math.pi), torch.exp(theta_log).remainder(2 * math.pi))


@pytest.mark.parametrize("method", METHODS)
def test_the_record_is_the_norm_of_the_complex_state_gradient(method, open_record, norms_of):
    params = _params()
    record, recorders = open_record(T)
    y, x_last = lru_layer(*params, recorders, method=method)
    (y.sin().sum() + x_last.abs().sum()).backward()
    u, x0, nu_log, theta_log, gamma_log, b_re, b_im, c_re, c_im, weight_d = (p.detach() for p in params)
    lam = eigenvalues(nu_log, theta_log)
    b_norm = torch.complex(b_re, b_im) * torch.exp(gamma_log).unsqueeze(-1)
    c = torch.complex(c_re, c_im)
    x, states, ys = x0.requires_grad_(), [], []
    for t in range(T):
        x = lam * x + u[t].to(torch.complex128) @ b_norm.T
        x.retain_grad()
        states.append(x)
        ys.append((x @ c.T).real + weight_d * u[t])
    (torch.stack(ys).sin().sum() + x.abs().sum()).backward()
    torch.testing.assert_close(record.per_sample()[0], norms_of(states))


def test_unknown_method():
    with pytest.raises(ValueError, match="allowed: sequential, parallel, reference"):
        lru_layer(*_params(), method="scan")
