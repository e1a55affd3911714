"""The LRU as a layer: its blocks, engines that agree, the record of the complex state, the ring init."""

import math

import pytest
import torch
import torch.nn.functional as F

import bptt
from bptt.config import build_config
from bptt.engine.lru import eigenvalues, lru_layer
from bptt.models import SequenceModel
from bptt.modules.lru import LRU
from bptt.tasks import TaskSettings, build_task
from bptt.training.optim import build_optimizer

T, B, I, H, N = 8, 3, 2, 6, 5


def _layer(**kwargs):
    return LRU(I, H, state_size=N, generator=torch.Generator().manual_seed(0), **kwargs)


def _run(layer, x):
    for p in layer.parameters():
        p.grad = None
    with bptt.record_gradients(layer) as record:
        out, x_n = layer(x)
        (out.sin().sum() + x_n.abs().sum()).backward()
    return out.detach(), x_n.detach(), [p.grad.clone() for p in layer.parameters()], record


def test_a_block_is_norm_lru_gelu_glu_and_skip():
    layer = _layer(num_layers=2)
    x = torch.randn(T, B, I)
    out, x_n = layer(x)
    stream, finals = F.linear(x, layer.weight_in_l0, layer.bias_in_l0), []
    for k in range(2):
        u = F.layer_norm(stream, (H,), getattr(layer, f"norm_weight_l{k}"), getattr(layer, f"norm_bias_l{k}"))
        y, final = lru_layer(u, torch.zeros(B, N, dtype=torch.complex64), *layer.recurrence_parameters(k))
        value, gate = F.linear(F.gelu(y), getattr(layer, f"weight_glu_l{k}"), getattr(layer, f"bias_glu_l{k}")).chunk(
            2, -1
        )
        stream = stream + value * torch.sigmoid(gate)
        finals.append(final)
    torch.testing.assert_close(out, stream)
    torch.testing.assert_close(x_n, torch.stack(finals))
    assert x_n.dtype == torch.complex64 and x_n.shape == (2, B, N)


def test_every_engine_gives_the_same_outputs_gradients_and_record():
    layer = _layer(num_layers=2)
    x = torch.randn(T, B, I)
    results = {}
    for engine in ("fast", "scan", "reference"):
        layer.engine = engine
        results[engine] = _run(layer, x)
    for engine in ("fast", "scan"):
        for got, want in zip(results[engine][:2], results["reference"][:2]):
            torch.testing.assert_close(got, want)
        for got, want in zip(results[engine][2], results["reference"][2]):
            torch.testing.assert_close(got, want)
        torch.testing.assert_close(results[engine][3].hidden, results["reference"][3].hidden)
    record = results["fast"][3]
    assert record.hidden.shape == (2, T) and record.names == ("x",)
    torch.testing.assert_close(record.series("x"), record.hidden)


def test_the_record_is_the_norm_of_dl_dx_over_real_and_imaginary_parts():
    layer = _layer(num_layers=1).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    with bptt.record_gradients(layer) as record:
        out, _ = layer(x)
        out.sin().sum().backward()
    stream = F.linear(x, layer.weight_in_l0, layer.bias_in_l0).detach()
    u = F.layer_norm(stream, (H,), layer.norm_weight_l0.detach(), layer.norm_bias_l0.detach())
    nu_log, theta_log, gamma_log, b_re, b_im, c_re, c_im, d = (p.detach() for p in layer.recurrence_parameters(0))
    lam = eigenvalues(nu_log, theta_log)
    driven = torch.complex(F.linear(u, b_re), F.linear(u, b_im)) * torch.exp(gamma_log)
    state, states, ys = torch.zeros(B, N, dtype=torch.complex128, requires_grad=True), [], []
    for t in range(T):
        state = lam * state + driven[t]
        state.retain_grad()
        states.append(state)
        ys.append(F.linear(state.real, c_re) - F.linear(state.imag, c_im) + d * u[t])
    value, gate = F.linear(F.gelu(torch.stack(ys)), layer.weight_glu_l0, layer.bias_glu_l0).chunk(2, -1)
    (stream + value * torch.sigmoid(gate)).sin().sum().backward()
    expected = torch.stack([torch.linalg.vector_norm(torch.view_as_real(s.grad).flatten(-2), dim=-1) for s in states])
    torch.testing.assert_close(record.per_sample()[0], expected)


def test_ring_init_and_gamma_normalisation():
    layer = LRU(I, H, state_size=4000, num_layers=1, r_min=0.5, r_max=0.9, max_phase=1.0)
    lam = eigenvalues(layer.nu_log_l0, layer.theta_log_l0).detach()
    assert lam.abs().min() >= 0.5 - 1e-6 and lam.abs().max() <= 0.9 + 1e-6
    # |lambda|^2 is uniform on [r_min^2, r_max^2]: lambda uniform by area on the ring.
    assert abs(float((lam.abs() ** 2).mean()) - (0.25 + 0.81) / 2) < 0.01
    assert float(lam.angle().min()) >= 0 and float(lam.angle().max()) <= 1.0
    torch.testing.assert_close(torch.exp(layer.gamma_log_l0).detach(), torch.sqrt(1 - lam.abs() ** 2))
    defaults = LRU(I, H)
    assert defaults.num_layers == 2 and defaults.state_size == H
    lam = eigenvalues(defaults.nu_log_l1, defaults.theta_log_l1).detach()
    assert lam.abs().min() >= 0.9 - 1e-6 and float(lam.angle().max()) <= math.pi / 10


def test_gamma_keeps_the_state_at_the_input_scale_for_white_input():
    lam = torch.tensor([0.99 + 0j, 0.9 * complex(math.cos(0.3), math.sin(0.3))], dtype=torch.complex128)
    gamma = torch.sqrt(1 - lam.abs() ** 2)
    noise = torch.randn(1500, 512, 2, dtype=torch.complex128)
    state, power = torch.zeros(512, 2, dtype=torch.complex128), []
    for t in range(1500):
        state = lam * state + gamma * noise[t]
        if t >= 1000:  # 0.99^1000 < 1e-4: the start is forgotten
            power.append(state.abs() ** 2)
    torch.testing.assert_close(torch.stack(power).mean((0, 1)), (noise.abs() ** 2).mean((0, 1)), rtol=0.1, atol=0)


def test_the_recurrence_parameters_train_at_their_own_rate():
    layer = _layer(num_layers=2)
    ((members, factor),) = layer.parameter_groups()
    names = {name for name, p in layer.named_parameters() if any(p is m for m in members)}
    assert factor == 0.5
    assert names == {
        f"{stem}_l{k}" for stem in ("nu_log", "theta_log", "gamma_log", "weight_b_re", "weight_b_im") for k in (0, 1)
    }
    assert _layer(lr_factor=1.0).parameter_groups() == []
    config = build_config({"task": "adding", "seq_len": 20, "cell": "lru", "hidden_size": 8})
    task = build_task("adding", TaskSettings(seq_len=20))
    model = SequenceModel(config, task)
    optimizer = build_optimizer(config, model.parameters(), model)
    assert [group["lr"] for group in optimizer.param_groups] == [config.lr, config.lr * 0.5]


def test_a_model_reads_the_last_output_not_the_complex_state():
    config = build_config({"task": "adding", "seq_len": 20, "cell": "lru", "hidden_size": 8})
    task = build_task("adding", TaskSettings(seq_len=20))
    model = SequenceModel(config, task, generator=torch.Generator().manual_seed(0))
    batch = task.eval_set("val")
    prediction = model(batch.inputs[:, :5])
    output, _ = model.recurrent(batch.inputs[:, :5])
    torch.testing.assert_close(prediction, model.head(output[-1]))
    # the cell's defaults, and on adding its preset's ring near 1
    assert config.num_layers == 2 and config.cell_preset == "adding" and config.cell_options["r_max"] == 0.9999


def test_bad_arguments():
    with pytest.raises(ValueError, match="own skip connection"):
        LRU(I, H, residual=True)
    with pytest.raises(ValueError, match="r_min <= r_max < 1"):
        LRU(I, H, r_min=0.99, r_max=0.9)
    with pytest.raises(ValueError, match="r_min <= r_max < 1"):
        LRU(I, H, r_max=1.0)
    with pytest.raises(ValueError, match="state_size"):
        LRU(I, H, state_size=0)
    with pytest.raises(ValueError, match="max_phase"):
        LRU(I, H, max_phase=0.0)


def test_step_and_jacobian():
    layer = _layer(num_layers=1).double()
    x = torch.randn(T, 1, I, dtype=torch.float64)
    state = torch.zeros(1, N, dtype=torch.complex128)
    states = []
    for t in range(T):
        state = layer.step(0, x[t], state)
        states.append(state)
    _, x_n = layer(x)
    torch.testing.assert_close(states[-1], x_n[0])
    lam = eigenvalues(layer.nu_log_l0, layer.theta_log_l0)
    torch.testing.assert_close(layer.diagonal_jacobian(0, x), lam.expand(T, 1, N))
