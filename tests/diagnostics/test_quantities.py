"""Each diagnostic quantity against an independent computation (retain_grad, autograd.functional.jacobian)."""

import math

import pytest
import torch
from torch import nn

import bptt
import bptt.engine.reference
from bptt.diagnostics import (
    gradient_profile,
    input_contribution,
    jacobian_chain,
    layer_gradients,
    memory_horizon,
    pascanu_condition,
    profile_and_layers,
    recent_share,
    update_share,
)
from bptt.diagnostics.jacobian import layer_inputs
from bptt.diagnostics.updates import update_terms

T, B, I, H = 12, 5, 3, 6


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ReadLast(nn.Module):
    """A recurrent stack and a linear head on h_T: the loss reads only the last step."""

    def __init__(self, recurrent):
        super().__init__()
        self.recurrent = recurrent
        self.head = nn.Linear(recurrent.hidden_size, 2, dtype=torch.float64)

    def forward(self, x):
        output, _ = self.recurrent(x)
        return self.head(output[-1])


def _setup(kind="RNN", seed=0, **kwargs):
    torch.manual_seed(seed)
    cls = getattr(bptt, kind)
    model = ReadLast(cls(I, H, dtype=torch.float64, **kwargs))
    x = torch.randn(T, B, I, dtype=torch.float64)
    target = torch.randn(B, 2, dtype=torch.float64)
    objective = lambda: ((model(x) - target) ** 2).mean()  # noqa: E731
    return model, x, target, objective


def _manual_rnn(model, x, target, activation):
    """The simple RNN unrolled by hand: h_t and the pre-activations a_t, each with retain_grad."""
    w_ih, w_hh, b_ih, b_hh = model.recurrent.layer_parameters(0)
    act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}[activation]
    h = torch.zeros(B, H, dtype=torch.float64)
    states, pre = [h], []
    for t in range(T):
        a = x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        a.retain_grad()
        h = act(a)
        h.retain_grad()
        pre.append(a)
        states.append(h)
    loss = ((model.head(h) - target) ** 2).mean()
    loss.backward()
    return states, pre


@pytest.mark.parametrize("engine", ["reference", "fast"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_gradient_profile_matches_retain_grad(engine, activation):
    model, x, target, objective = _setup(activation=activation, engine=engine)
    profile = gradient_profile(model, objective)
    states, _ = _manual_rnn(model, x, target, activation)
    expected = torch.stack([s.grad.norm(dim=-1).mean() for s in states[1:]]).flip(0)  # by lag
    assert profile.hidden.shape == (1, T)
    torch.testing.assert_close(profile.hidden[0], expected, rtol=1e-10, atol=1e-300)
    assert profile.ratio(5) == pytest.approx(float(expected[5] / expected[0]), rel=1e-6, abs=0)
    assert profile.ratio(10_000) == pytest.approx(
        float(expected[-1] / expected[0]), rel=1e-6, abs=0
    )  # clipped to T - 1


def test_gradient_profile_of_a_stacked_lstm_has_every_layer_and_the_cell():
    model, _x, _target, objective = _setup("LSTM", num_layers=2)
    profile = gradient_profile(model, objective)
    assert profile.hidden.shape == (2, T) and profile.cell.shape == (2, T)
    assert torch.isfinite(profile.hidden).all() and (profile.hidden > 0).all()


def test_memory_horizon_is_the_last_lag_before_the_first_crossing():
    profile = torch.tensor([1.0, 0.5, 0.1, 1e-4, 1e-2])
    assert memory_horizon(profile, 1e-3) == 2
    assert memory_horizon(profile, 1e-5) == 4  # never below: the whole sequence
    assert memory_horizon(torch.tensor([0.0, 1.0]), 1e-3) == 0
    assert memory_horizon(torch.tensor([2.0, 0.01, float("nan")]), 1e-3) == 1
    with pytest.raises(ValueError, match="epsilon"):
        memory_horizon(profile, 2.0)


def test_sigmoid_forgets_sooner_than_tanh_with_the_same_weights_and_lstm_later():
    torch.manual_seed(3)
    x = torch.randn(60, 8, I, dtype=torch.float64)

    def horizon(recurrent):
        model = ReadLast(recurrent)
        objective = lambda: model(x).pow(2).mean()  # noqa: E731
        return memory_horizon(gradient_profile(model, objective).hidden[0])

    tanh = bptt.RNN(I, 32, activation="tanh", init="orthogonal", dtype=torch.float64)
    sigmoid = bptt.RNN(I, 32, activation="sigmoid", dtype=torch.float64)
    sigmoid.load_state_dict(tanh.state_dict())
    lstm = bptt.LSTM(I, 32, forget_bias=1.0, dtype=torch.float64)
    h_sigmoid, h_tanh, h_lstm = horizon(sigmoid), horizon(tanh), horizon(lstm)
    assert h_sigmoid < h_tanh
    assert h_sigmoid < h_lstm


def test_input_contribution_of_a_plain_torch_lstm_matches_autograd():
    torch.manual_seed(0)

    class UserModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(I, H, batch_first=True)
            self.head = nn.Linear(H, 1)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    model = UserModel()
    x = torch.randn(B, T, I)  # batch-first
    target = torch.randn(B, 1)
    loss_fn = lambda p: ((p - target) ** 2).mean()  # noqa: E731
    measured = input_contribution(model, x, loss_fn, batch_first=True)
    leaf = x.clone().requires_grad_(True)
    loss_fn(model(leaf)).backward()
    expected = leaf.grad.norm(dim=-1).mean(dim=0).double()  # (T,)
    torch.testing.assert_close(measured, expected)
    assert recent_share(measured, 3) == pytest.approx(float(expected[-3:].sum() / expected.sum()))
    assert recent_share(measured, T) == pytest.approx(1.0)


def test_input_contribution_at_an_embedding_is_the_gradient_of_the_embedded_tokens():
    torch.manual_seed(0)
    embed = nn.Embedding(10, 4)
    rnn = bptt.RNN(4, H)
    head = nn.Linear(H, 2)
    model = nn.ModuleDict({"embed": embed, "rnn": rnn, "head": head})
    forward = lambda ids: head(rnn(embed(ids))[0][-1])  # noqa: E731
    ids = torch.randint(0, 10, (T, B))
    labels = torch.randint(0, 2, (B,))
    loss_fn = lambda p: nn.functional.cross_entropy(p, labels)  # noqa: E731
    measured = input_contribution(model, ids, loss_fn, at=embed, forward=forward)
    embedded = embed(ids).detach().requires_grad_(True)
    loss_fn(head(rnn(embedded)[0][-1])).backward()
    torch.testing.assert_close(measured, embedded.grad.norm(dim=-1).mean(dim=1).double())
    with pytest.raises(TypeError, match="floating point"):
        input_contribution(model, ids, loss_fn, forward=forward)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_update_terms_sum_to_the_weight_gradients(kind):
    model, _x, _target, objective = _setup(kind, num_layers=2, engine="fast")
    objective().backward()  # the plain gradient, on the fast engine
    expected = {name: p.grad.clone() for name, p in model.recurrent.named_parameters() if name.startswith("weight_")}
    model.zero_grad(set_to_none=True)
    terms = update_terms(model, objective)
    assert model.recurrent.engine == "fast"  # restored
    for layer in range(2):
        assert terms.weight_hh[layer].shape[0] == T
        torch.testing.assert_close(terms.weight_hh[layer].sum(0), expected[f"weight_hh_l{layer}"])
        torch.testing.assert_close(terms.weight_ih[layer].sum(0), expected[f"weight_ih_l{layer}"])
        torch.testing.assert_close(terms.weight_hh[layer][0], torch.zeros_like(terms.weight_hh[layer][0]))  # h_{-1} = 0


def test_update_terms_are_delta_t_times_h_previous():
    model, x, target, objective = _setup(activation="tanh")
    share = update_share(model, objective)
    states, pre = _manual_rnn(model, x, target, "tanh")
    hh = torch.stack([torch.linalg.matrix_norm(a.grad.T @ h.detach()) for a, h in zip(pre, states[:-1])])
    ih = torch.stack([torch.linalg.matrix_norm(a.grad.T @ x[t]) for t, a in enumerate(pre)]).detach()
    torch.testing.assert_close(share.weight_hh[0], hh)
    torch.testing.assert_close(share.weight_ih[0], ih)
    assert share.share(4, "last") == pytest.approx(float(hh[-4:].sum() / hh.sum()))
    assert share.share(4, "first") + share.share(T - 4, "last") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="end"):
        share.share(3, "middle")


def _step_by_hand(model, activation):
    w_ih, w_hh, b_ih, b_hh = (p.detach() for p in model.recurrent.layer_parameters(0))
    act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}[activation]
    return lambda h, x_t: act(x_t @ w_ih.T + b_ih + h @ w_hh.T + b_hh)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_jacobian_chain_matches_autograd_functional_jacobian(activation):
    model, x, *_ = _setup(activation=activation)
    chain = jacobian_chain(model, x, example=1)
    step = _step_by_hand(model, activation)
    h = torch.zeros(H, dtype=torch.float64)
    product = torch.eye(H, dtype=torch.float64)
    jacobians = []
    for t in range(T):
        jacobians.append(torch.autograd.functional.jacobian(lambda s: step(s, x[t, 1]), h))
        h = step(h, x[t, 1])
    for t, j in enumerate(jacobians):
        torch.testing.assert_close(chain.singular_values[t], torch.linalg.svdvals(j))
    for k, j in enumerate(reversed(jacobians), start=1):
        product = product @ j
        assert chain.product_norm[k - 1] == pytest.approx(
            float(torch.linalg.matrix_norm(product, ord=2)), rel=1e-9, abs=0
        )


@pytest.mark.parametrize("activation,gamma", [("sigmoid", 0.25), ("tanh", 1.0)])
@pytest.mark.parametrize("seed", range(4))
def test_the_product_of_jacobians_stays_under_pascanus_bound(activation, gamma, seed):
    torch.manual_seed(seed)
    scale = [0.5, 1.0, 2.0, 4.0][seed]
    rnn = bptt.RNN(I, H, activation=activation, init="orthogonal", init_scale=scale, dtype=torch.float64)
    x = torch.randn(30, 2, I, dtype=torch.float64)
    chain = jacobian_chain(rnn, x)
    sigma = float(torch.linalg.matrix_norm(rnn.weight_hh_l0.detach(), ord=2))
    assert chain.condition.gamma == gamma and chain.condition.sigma_max == pytest.approx(sigma)
    torch.testing.assert_close(chain.bound, (gamma * sigma) ** torch.arange(1, 31, dtype=torch.float64))
    assert (chain.product_norm <= chain.bound * (1 + 1e-9)).all()
    assert (chain.singular_values[:, 0] <= gamma * sigma * (1 + 1e-9)).all()


def test_pascanu_condition_says_what_it_means():
    sigmoid = bptt.RNN(I, H, activation="sigmoid", init="orthogonal", init_scale=2.0)
    condition = pascanu_condition(sigmoid)
    assert condition.vanishing_guaranteed
    assert condition.statement() == (
        "sigma_max(W_hh) = 2 < 1/gamma = 4 (sigmoid): Pascanu's sufficient condition holds, so gradients must vanish"
    )
    tanh = bptt.RNN(I, H, activation="tanh", init="orthogonal", init_scale=2.0)
    assert not pascanu_condition(tanh).vanishing_guaranteed
    statement = pascanu_condition(tanh).statement()
    # Sufficient, not necessary: above 1/gamma nothing is guaranteed, and the statement must not say otherwise.
    assert "does not hold" in statement and "can still happen" in statement and "explosion is possible" in statement
    assert "must vanish" not in statement
    lstm = pascanu_condition(bptt.LSTM(I, H))
    assert not lstm.applies and "gated cell" in lstm.statement()


def test_layer_inputs_are_what_each_layer_reads():
    model, x, *_ = _setup(num_layers=2, residual=True)
    inputs = layer_inputs(model, lambda: model(x))
    torch.testing.assert_close(inputs[0], x)
    with torch.no_grad():
        first = bptt.engine.reference.rnn_layer(
            x, torch.zeros(B, H, dtype=torch.float64), *model.recurrent.layer_parameters(0)
        )[0]
        skip = nn.functional.linear(x, model.recurrent.residual_weight_l0)
    torch.testing.assert_close(inputs[1], first + skip)


@pytest.mark.parametrize("residual", [False, True])
def test_layer_gradients_are_the_parameter_gradient_norms(residual):
    model, _x, _target, objective = _setup(activation="sigmoid", num_layers=3, residual=residual)
    measured = layer_gradients(model, objective)
    model.zero_grad(set_to_none=True)
    objective().backward()
    for layer in range(3):
        for name in ("weight_ih", "weight_hh"):
            grad = getattr(model.recurrent, f"{name}_l{layer}").grad
            assert float(getattr(measured, name)[layer]) == pytest.approx(float(grad.norm()))
    assert measured.hidden.shape == (3,)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_profile_and_layers_measure_from_one_backward_what_the_two_functions_measure(kind):
    model, _x, _target, objective = _setup(kind, num_layers=2)
    runs = []

    def counted():
        runs.append(1)
        return objective()

    profile, layers = profile_and_layers(model, counted)
    assert len(runs) == 1
    alone = gradient_profile(model, objective)
    torch.testing.assert_close(profile.hidden, alone.hidden, rtol=0, atol=0)
    if kind == "LSTM":
        torch.testing.assert_close(profile.cell, alone.cell, rtol=0, atol=0)
    expected = layer_gradients(model, objective)
    for name in ("weight_ih", "weight_hh", "hidden"):
        torch.testing.assert_close(getattr(layers, name), getattr(expected, name), rtol=0, atol=0)


def test_residual_connections_carry_the_gradient_down_a_sigmoid_stack():
    def bottom_to_top(residual):
        model, _x, _target, objective = _setup(activation="sigmoid", num_layers=4, residual=residual, seed=1)
        norms = layer_gradients(model, objective).weight_ih
        return float(norms[0] / norms[-1])

    assert bottom_to_top(True) > 10 * bottom_to_top(False)


def test_nan_gradients_are_reported_as_nan():
    model, x, _target, _ = _setup()
    objective = lambda: (model(x) * float("nan")).sum()  # noqa: E731
    profile = gradient_profile(model, objective)
    assert torch.isnan(profile.hidden).all()
    assert math.isnan(profile.ratio(3))
    assert memory_horizon(profile.hidden[0]) == 0


def test_a_padded_batch_is_measured_on_each_sequences_real_steps():
    """Variable lengths: the profile aligns every sequence at its own last step, the input contribution
    averages only real steps, and padding changes nothing."""
    from bptt.build import make_model
    from bptt.config import build_config
    from bptt.diagnostics import diagnose
    from bptt.tasks import TaskSettings, build_task

    config = build_config(
        {"task": "adding", "task_variant": "hochreiter", "seq_len": 20, "hidden_size": 8, "cell": "gru"}
    )
    task = build_task("adding", TaskSettings(seq_len=20, variant="hochreiter"))
    model = make_model(config, task)
    batch = task.eval_set("test").subset(torch.arange(6))
    assert batch.lengths is not None and len(set(batch.lengths.tolist())) > 1
    padded = diagnose(model, task, batch=batch)
    # The same sequences with twice the padding: nothing measured may move.
    longer = type(batch)(torch.cat([batch.inputs, torch.zeros_like(batch.inputs)]), batch.targets, batch.lengths)
    extra = diagnose(model, task, batch=longer)
    T = padded.seq_len
    torch.testing.assert_close(extra.profile.hidden[:, :T], padded.profile.hidden)
    assert torch.all(extra.profile.hidden[:, T:] == 0)
    torch.testing.assert_close(extra.contribution[:T], padded.contribution)
    assert torch.all(extra.contribution[T:] == 0)
