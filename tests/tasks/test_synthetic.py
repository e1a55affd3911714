"""The synthetic tasks against their specs (the task definitions in each module's docstring).

Positions and baselines are recomputed here from the published definitions, not
read back from the task code. Delayed sentiment has its own file.
"""

from __future__ import annotations

import math

import pytest
import torch

from bptt.tasks import TaskError, TaskSettings, build_task, generator, task_names

SYNTHETIC = ("adding", "copy", "temporal_order", "sentiment")


def draw(name: str, batch_size: int, seed: int = 0, **settings):
    task = build_task(name, TaskSettings(**settings))
    return task, task.sample(batch_size, torch.Generator().manual_seed(seed))


def marked_steps(mask: torch.Tensor) -> torch.Tensor:
    """(2, B): the two steps, in order, where a (T, B) mask holding exactly two Trues per column is True."""
    return mask.t().nonzero()[:, 1].view(-1, 2).t()


def entropy(counts: torch.Tensor) -> float:
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float(-(p * p.log()).sum())


# -- every task ---------------------------------------------------------------------
@pytest.mark.parametrize("name", SYNTHETIC)
def test_registered_with_sensible_defaults(name):
    assert name in task_names()
    task = build_task(name)
    assert task.name == name
    assert isinstance(task.seq_len, int) and task.seq_len >= 2  # the default is filled in
    info = task.describe()
    assert info["task"] == name and info["seq_len"] == task.seq_len
    assert task.kind in ("regression", "classification", "per_step")
    assert task.input_kind in ("dense", "tokens")


@pytest.mark.parametrize("name", SYNTHETIC)
def test_same_seed_same_batches_other_seed_other_batches(name):
    _, first = draw(name, 16, seed=3)
    _, again = draw(name, 16, seed=3)
    _, other = draw(name, 16, seed=4)
    assert torch.equal(first.inputs, again.inputs) and torch.equal(first.targets, again.targets)
    assert not torch.equal(first.inputs, other.inputs)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_eval_sets_are_fixed_by_the_task_seed(name):
    task = build_task(name, TaskSettings(eval_size=50, seed=1))
    val, test = task.eval_set("val"), task.eval_set("test")
    assert val.size == test.size == 50
    assert torch.equal(task.eval_set("test").inputs, test.inputs)
    rebuilt = build_task(name, TaskSettings(eval_size=50, seed=1))
    assert torch.equal(rebuilt.eval_set("test").inputs, test.inputs)
    assert torch.equal(rebuilt.eval_set("test").targets, test.targets)
    assert not torch.equal(val.inputs, test.inputs)
    other_seed = build_task(name, TaskSettings(eval_size=50, seed=2))
    assert not torch.equal(other_seed.eval_set("test").inputs, test.inputs)
    # the training stream is not the test stream
    train = task.train_batch(50, generator(1, 0))
    assert not torch.equal(train.inputs, test.inputs)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_bad_settings_name_the_field(name):
    with pytest.raises(TaskError, match=rf"^seq_len must be an int >= \d+ for task '{name}'.*got 0"):
        build_task(name, TaskSettings(seq_len=0))
    with pytest.raises(TaskError, match=r"^seq_len .*got 'long'"):
        build_task(name, TaskSettings(seq_len="long"))
    with pytest.raises(TaskError, match=r"^variant must be one of default\b.*got 'nope'"):
        build_task(name, TaskSettings(variant="nope"))
    with pytest.raises(TaskError, match=r"^options 'colour' not used"):
        build_task(name, TaskSettings(options={"colour": 1}))
    with pytest.raises(TaskError, match=r"^eval_size"):
        build_task(name, TaskSettings(eval_size=0))
    with pytest.raises(ValueError, match="batch_size"):
        build_task(name).sample(0, torch.Generator())


@pytest.mark.parametrize("name", ("adding", "copy", "temporal_order"))
def test_delay_is_refused_where_the_length_is_the_dependency(name):
    with pytest.raises(TaskError, match=rf"^delay is not used by task '{name}'"):
        build_task(name, TaskSettings(delay=5))


def test_one_line_errors():
    for settings in (
        TaskSettings(seq_len=1),
        TaskSettings(variant="x"),
        TaskSettings(seq_len=10, variant="hochreiter"),
    ):
        with pytest.raises(TaskError) as error:
            build_task("adding", settings)
        assert "\n" not in str(error.value)


# -- adding -------------------------------------------------------------------------
@pytest.mark.parametrize("seq_len", [2, 3, 7, 50])
def test_adding_default_markers_one_in_each_half(seq_len):
    task, batch = draw("adding", 2000, seq_len=seq_len)
    assert (task.kind, task.input_size, task.output_size, task.metric_name, task.higher_is_better) == (
        "regression",
        2,
        1,
        "mse",
        False,
    )
    assert batch.inputs.shape == (seq_len, 2000, 2) and batch.inputs.dtype == torch.float32
    assert batch.targets.shape == (2000, 1) and batch.targets.dtype == torch.float32
    assert batch.lengths is None
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert bool(((values >= 0) & (values < 1)).all())
    assert bool(((markers == 0) | (markers == 1)).all())
    assert bool((markers.sum(0) == 2).all())
    steps = torch.arange(seq_len).unsqueeze(1)
    first_half = steps < seq_len / 2  # [0, T/2)
    assert bool(((markers * first_half).sum(0) == 1).all())
    assert bool(((markers * ~first_half).sum(0) == 1).all())
    # every step of each half is used
    marked = markers.nonzero()[:, 0].unique().tolist()
    assert marked == list(range(seq_len))
    torch.testing.assert_close(batch.targets[:, 0], (values * markers).sum(0))


def test_adding_tcn_markers_anywhere_and_distinct():
    seq_len = 20
    _, batch = draw("adding", 4000, seq_len=seq_len, variant="tcn")
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert bool((markers.sum(0) == 2).all()) and bool(((markers == 0) | (markers == 1)).all())
    in_first_half = (markers[: seq_len // 2]).sum(0)
    assert {0, 1, 2} == set(in_first_half.long().tolist())  # both halves, or one of each
    torch.testing.assert_close(batch.targets[:, 0], (values * markers).sum(0))


@pytest.mark.parametrize("seq_len", [20, 41, 100])
def test_adding_hochreiter_follows_the_1997_definition(seq_len):
    _task, batch = draw("adding", 2000, seq_len=seq_len, variant="hochreiter")
    lengths = batch.lengths
    assert lengths is not None and lengths.shape == (2000,) and lengths.dtype == torch.long
    assert int(lengths.min()) >= seq_len and int(lengths.max()) <= seq_len + seq_len // 10
    assert set(lengths.tolist()) == set(range(seq_len, seq_len + seq_len // 10 + 1))
    assert batch.inputs.shape == (int(lengths.max()), 2000, 2)
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    steps = torch.arange(batch.inputs.shape[0]).unsqueeze(1)
    padding = steps >= lengths
    assert bool((batch.inputs[padding] == 0).all())
    assert bool(((values >= -1) & (values <= 1)).all())
    plus = markers == 1
    assert bool((plus.sum(0) == 2).all())
    positions = marked_steps(plus)  # (2, B)
    assert bool((positions[0] < 10).all())  # one of the first ten
    assert bool((positions[1] < seq_len / 2).all())  # the other among the first T/2
    minus = markers == -1
    examples = torch.arange(2000)
    assert bool(minus[lengths - 1, examples].all())  # the last step
    assert bool((minus[0] == ~plus[0]).all())  # the first step, unless marked
    assert int((minus & (steps > 0) & (steps < lengths - 1)).sum()) == 0
    assert bool((values[0][plus[0]] == 0).all())  # a value marked at t = 0 counts as 0
    expected = 0.5 + (values * plus).sum(0) / 4
    torch.testing.assert_close(batch.targets[:, 0], expected)


@pytest.mark.parametrize("variant", ["default", "tcn", "hochreiter"])
def test_adding_baseline_is_the_best_constant_predictors_mse(variant):
    task, batch = draw("adding", 40_000, seq_len=40, variant=variant)
    targets = batch.targets
    best_constant = torch.full_like(targets, float(targets.mean()))
    empirical = float(task.loss(best_constant, batch))
    assert empirical == pytest.approx(task.baseline, rel=0.05)
    assert task.chance_metric == task.baseline
    if variant != "hochreiter":
        assert task.baseline == pytest.approx(1 / 6)
        assert float(targets.mean()) == pytest.approx(1.0, abs=0.01)
    else:
        assert float(targets.mean()) == pytest.approx(0.5, abs=0.005)
    assert task.solved(0.005 * task.baseline) and not task.solved(0.9 * task.baseline)


def test_adding_variant_errors():
    with pytest.raises(
        TaskError, match="^variant must be one of default, hochreiter, tcn for task 'adding', got 'tnc'$"
    ):
        build_task("adding", TaskSettings(variant="tnc"))
    with pytest.raises(
        TaskError, match="^seq_len must be an int >= 20 for task 'adding' variant 'hochreiter', got 10$"
    ):
        build_task("adding", TaskSettings(seq_len=10, variant="hochreiter"))
    assert build_task("adding", TaskSettings(variant=None)).describe()["variant"] == "default"


# -- copy ---------------------------------------------------------------------------
BLANK, DELIMITER = 8, 9


@pytest.mark.parametrize("seq_len", [1, 5, 30])
def test_copy_layout_matches_arjovsky(seq_len):
    task, batch = draw("copy", 500, seq_len=seq_len)
    steps = seq_len + 20
    assert (task.kind, task.input_size, task.output_size, task.metric_name) == ("per_step", 10, 10, "recall_accuracy")
    assert batch.inputs.shape == (steps, 500, 10) and batch.inputs.dtype == torch.float32
    assert batch.targets.shape == (steps, 500) and batch.targets.dtype == torch.long
    assert bool((batch.inputs.sum(-1) == 1).all()) and bool(((batch.inputs == 0) | (batch.inputs == 1)).all())
    symbols = batch.inputs.argmax(-1)  # (T + 20, B)
    data = symbols[:10]
    assert bool((data < 8).all())  # a0..a7
    # 10 data symbols, then T - 1 blanks, one delimiter, 10 blanks
    assert bool((symbols[10 : 10 + seq_len - 1] == BLANK).all())
    assert bool((symbols[seq_len + 9] == DELIMITER).all())
    assert bool(((symbols == DELIMITER).sum(0) == 1).all())
    assert bool((symbols[seq_len + 10 :] == BLANK).all())
    # T + 10 blanks, then the data symbols in order
    assert bool((batch.targets[: seq_len + 10] == BLANK).all())
    assert torch.equal(batch.targets[seq_len + 10 :], data)
    assert set(data.flatten().tolist()) == set(range(8))


def test_copy_baseline_is_the_step_aware_memoryless_cross_entropy():
    seq_len = 50
    task, batch = draw("copy", 4000, seq_len=seq_len)
    # The best predictor that sees only the step index outputs, at each step, the
    # distribution of targets at that step: its cross-entropy is that step's entropy.
    per_step = [entropy(torch.bincount(batch.targets[t], minlength=10)) for t in range(seq_len + 20)]
    empirical = sum(per_step) / len(per_step)
    assert empirical == pytest.approx(task.baseline, rel=0.05)
    assert task.baseline == pytest.approx(10 * math.log(8) / (seq_len + 20))
    # the same predictor scored by the task's own loss
    frequencies = torch.stack([torch.bincount(batch.targets[t], minlength=10) for t in range(seq_len + 20)])
    log_probs = (frequencies.double() / 4000).clamp(min=1e-12).log().float()  # (T + 20, 10)
    prediction = log_probs.unsqueeze(1).expand(-1, 4000, -1)
    assert float(task.loss(prediction, batch)) == pytest.approx(task.baseline, rel=0.05)
    assert task.metric(prediction, batch) == pytest.approx(task.chance_metric, abs=0.03)


def test_copy_published_baselines():
    assert build_task("copy", TaskSettings(seq_len=500)).baseline == pytest.approx(0.0400, abs=5e-5)
    assert build_task("copy", TaskSettings(seq_len=1000)).baseline == pytest.approx(0.0204, abs=5e-5)


def test_copy_metric_scores_the_recalled_symbols_only():
    task, batch = draw("copy", 64, seq_len=10)
    perfect = torch.nn.functional.one_hot(batch.targets, 10).float() * 10
    assert task.metric(perfect, batch) == 1.0
    assert task.solved(task.metric(perfect, batch))
    blanks_everywhere = torch.nn.functional.one_hot(torch.full_like(batch.targets, BLANK), 10).float()
    assert task.metric(blanks_everywhere, batch) == 0.0  # right on 30 of 40 steps, none recalled
    assert task.chance_metric == 1 / 8 and not task.solved(0.2)


# -- temporal order -----------------------------------------------------------------
def spec_window(seq_len: int, low_tenths: int, high_tenths: int) -> list[int]:
    """Integer steps t with low/10 * L <= t < high/10 * L, in exact arithmetic."""
    return [t for t in range(seq_len) if 10 * t >= low_tenths * seq_len and 10 * t < high_tenths * seq_len]


@pytest.mark.parametrize("seq_len", [10, 33, 100])
def test_temporal_order_layout(seq_len):
    task, batch = draw("temporal_order", 2000, seq_len=seq_len)
    assert (task.kind, task.input_size, task.output_size) == ("classification", 8, 4)
    assert batch.inputs.shape == (seq_len, 2000, 8) and batch.inputs.dtype == torch.float32
    assert batch.targets.shape == (2000,) and batch.targets.dtype == torch.long
    assert bool((batch.inputs.sum(-1) == 1).all())
    symbols = batch.inputs.argmax(-1)
    sym = {s: task.symbols.index(s) for s in "abcdBEXY"}
    assert bool((symbols[0] == sym["E"]).all()) and bool((symbols[-1] == sym["B"]).all())
    middle = symbols[1:-1]
    assert not bool(((middle == sym["E"]) | (middle == sym["B"])).any())
    relevant = (symbols == sym["X"]) | (symbols == sym["Y"])
    assert bool((relevant.sum(0) == 2).all())
    t1, t2 = marked_steps(relevant)
    window1 = [t for t in spec_window(seq_len, 1, 2) if t >= 1]
    window2 = spec_window(seq_len, 5, 6)
    assert set(t1.tolist()) == set(window1)  # every allowed step, nothing else
    assert set(t2.tolist()) == set(window2)
    distractors = ~relevant
    distractors[0] = distractors[-1] = False
    assert set(symbols[distractors].unique().tolist()) == {sym[s] for s in "abcd"}
    examples = torch.arange(2000)
    names = {sym["X"]: "X", sym["Y"]: "Y"}
    for b in range(0, 2000, 7):
        pair = names[int(symbols[t1[b], examples[b]])] + names[int(symbols[t2[b], examples[b]])]
        assert task.classes[int(batch.targets[b])] == pair
    assert sorted(task.classes) == ["XX", "XY", "YX", "YY"]


def test_temporal_order_shortest_length():
    with pytest.raises(TaskError, match="^seq_len must be an int >= 10 for task 'temporal_order', got 9$"):
        build_task("temporal_order", TaskSettings(seq_len=9))


# -- classes: balance and the memoryless cross-entropy ---------------------------------
@pytest.mark.parametrize(("name", "settings"), [("temporal_order", {"seq_len": 40}), ("sentiment", {"delay": 3})])
def test_classes_balanced_and_baseline_is_label_entropy(name, settings):
    task, batch = draw(name, 4000, **settings)
    counts = torch.bincount(batch.targets, minlength=task.output_size)
    assert len(counts) == task.output_size
    share = counts.double() / counts.sum()
    assert bool(((share - 1 / task.output_size).abs() < 0.03).all()), share
    assert entropy(counts) == pytest.approx(task.baseline, rel=0.05)
    assert task.baseline == pytest.approx(math.log(task.output_size))
    assert task.chance_metric == pytest.approx(1 / task.output_size)
    uniform = torch.zeros(4000, task.output_size)
    assert float(task.loss(uniform, batch)) == pytest.approx(task.baseline)
