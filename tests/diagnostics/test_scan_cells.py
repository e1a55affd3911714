"""The diagnostics on the scan cells: the exact diagonal spectrum beside the measured profile, the LRU's
complex state in the Jacobian chain and the update terms, and the verdict's words for each mechanism."""

import pytest
import torch
from torch import nn

import bptt
from bptt.build import make_model, make_task
from bptt.config import build_config
from bptt.diagnostics import jacobian_chain
from bptt.diagnostics.common import fixed_batch
from bptt.diagnostics.jacobian import layer_inputs
from bptt.diagnostics.updates import update_terms
from bptt.engine.lru import eigenvalues
from bptt.modules.cells import CELLS
from bptt.modules.lru import LRU

T, B, I, H = 10, 4, 2, 5


@pytest.mark.parametrize("cell", ["lru", "mingru", "minlstm"])
def test_the_verdict_names_the_mechanism_and_the_exact_spectrum(cell):
    config = build_config({"task": "adding", "seq_len": 24, "cell": cell, "hidden_size": 6})
    task = make_task(config)
    model = make_model(config, task)
    diagnosis = bptt.diagnose(model, task, examples=6)
    verdict = diagnosis.verdict()
    assert CELLS.get(cell).mechanism in verdict and "the step Jacobian is diagonal" in verdict
    top = model.recurrent.num_layers - 1
    batch = fixed_batch(task, 6)
    model.double()
    inputs = layer_inputs(model, lambda: model(batch.inputs.double()))[top]
    expected = model.recurrent.diagonal_jacobian(top, inputs)[:, 0].detach()
    torch.testing.assert_close(diagnosis.spectrum.diagonal.to(expected.dtype), expected)
    if cell == "lru":  # lambda is fixed: the weights bound the horizon, named as the paper names them
        lam = eigenvalues(model.recurrent.nu_log_l1, model.recurrent.theta_log_l1).detach()
        torch.testing.assert_close(diagnosis.spectrum.weights, lam.abs())
        assert "max |lambda|" in verdict and "every state value keeps |lambda|^k" in verdict
    else:
        assert diagnosis.spectrum.weights is None


def test_the_lru_chain_sees_a_rotation_and_scaling_per_state_value():
    """Over (re, im) pairs the step Jacobian is block-diagonal with 2x2 blocks |lambda| R(theta): every
    singular value is some |lambda_n|, each twice, and the product over k steps has norm max |lambda|^k."""
    layer = LRU(I, H, num_layers=1, state_size=3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(T, B, I)
    chain = jacobian_chain(layer, x)
    lam = eigenvalues(layer.nu_log_l0, layer.theta_log_l0).detach().to(torch.complex128)
    magnitudes = lam.abs().repeat_interleave(2).sort(descending=True).values
    for step in chain.singular_values:
        torch.testing.assert_close(step, magnitudes)
    lags = torch.arange(1, T + 1, dtype=torch.float64)
    torch.testing.assert_close(chain.product_norm, lam.abs().max() ** lags)


def test_the_lru_update_terms_sum_to_the_gradient_of_gamma_b():
    layer = LRU(I, H, num_layers=1, state_size=3, generator=torch.Generator().manual_seed(1)).double()
    head = nn.Linear(H, 1).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    terms = update_terms(layer, lambda: head(layer(x)[0][-1]).pow(2).sum())
    gamma = torch.exp(layer.gamma_log_l0).detach().unsqueeze(1)
    grad_b = torch.complex(layer.weight_b_re_l0.grad, layer.weight_b_im_l0.grad) / gamma  # dL/d(gamma B)
    assert terms.weight_ih[0].shape == (T, 3, H) and terms.weight_hh[0].shape == (T, 3)
    torch.testing.assert_close(terms.weight_ih[0].sum(0), grad_b)
