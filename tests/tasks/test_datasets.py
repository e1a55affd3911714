"""Dataset tasks: shapes, splits, determinism, permutations, IDX parsing, padding, missing extras."""

from __future__ import annotations

import gzip
import random
import sys

import numpy as np
import pytest
import torch

from bptt.tasks import TASKS, TaskError, TaskSettings, build_task
from bptt.tasks.datasets import digits as digits_module
from bptt.tasks.datasets import mnist as mnist_module
from bptt.tasks.datasets.common import stratified_split

pytest.importorskip("sklearn")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered_names():
    for name in ("digits", "pdigits", "mnist1d", "ucr:", "mnist", "pmnist"):
        assert name in TASKS


# -- splitting -------------------------------------------------------------------
def test_stratified_split_is_a_disjoint_cover_with_class_proportions():
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])
    index = stratified_split(labels, {"val": 0.2, "test": 0.2}, seed=3)
    assert [len(index[n]) for n in ("train", "val", "test")] == [60, 20, 20]
    everything = np.concatenate(list(index.values()))
    assert sorted(everything.tolist()) == list(range(100))
    for name, share in (("val", 0.2), ("test", 0.2), ("train", 0.6)):
        counts = np.bincount(labels[index[name]], minlength=4)
        assert np.all(np.abs(counts - share * np.array([50, 30, 15, 5])) <= 1)


def test_stratified_split_depends_on_the_seed_only():
    labels = np.arange(200) % 7
    a = stratified_split(labels, {"val": 0.25}, seed=1)
    b = stratified_split(labels, {"val": 0.25}, seed=1)
    c = stratified_split(labels, {"val": 0.25}, seed=2)
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert not np.array_equal(a["val"], c["val"])


# -- digits ----------------------------------------------------------------------
def test_digits_shapes_sizes_and_scale():
    task = build_task("digits")
    batch = task.train_batch(16, gen())
    assert batch.inputs.shape == (64, 16, 1) and batch.inputs.dtype == torch.float32
    assert batch.targets.shape == (16,) and batch.targets.dtype == torch.long
    assert batch.lengths is None
    sizes = task.describe()["split_sizes"]
    assert sizes == {"train": 1079, "val": 359, "test": 359}
    test = task.eval_set("test")
    assert test.inputs.shape == (64, 359, 1)
    assert float(test.inputs.min()) >= 0.0 and float(test.inputs.max()) == 1.0
    assert (task.input_size, task.output_size, task.seq_len) == (1, 10, 64)
    # every class in every split, in proportion (about 20 % of 174-183 per class)
    assert torch.bincount(test.targets, minlength=10).min() >= 34
    assert task.baseline == pytest.approx(np.log(10), abs=0.01)
    majority = int(torch.bincount(task.data.train.targets).argmax())
    assert task.chance_metric == pytest.approx(float((test.targets == majority).float().mean()))


def test_digits_rows_come_from_the_bundled_images_in_row_major_order():
    from sklearn.datasets import load_digits

    images = {tuple(row) for row in (load_digits().data / 16.0).astype(np.float32)}
    batch = build_task("digits").train_batch(8, gen(5))
    for b in range(8):
        assert tuple(batch.inputs[:, b, 0].numpy()) in images


def test_digits_split_is_deterministic_per_seed():
    first = build_task("digits", TaskSettings(seed=4)).eval_set("val")
    digits_module.load_digit_splits.cache_clear()
    again = build_task("digits", TaskSettings(seed=4)).eval_set("val")
    other = build_task("digits", TaskSettings(seed=5)).eval_set("val")
    assert torch.equal(first.inputs, again.inputs) and torch.equal(first.targets, again.targets)
    assert not torch.equal(first.inputs, other.inputs)


def test_eval_set_is_the_same_every_call_and_train_batches_follow_the_generator():
    task = build_task("digits")
    assert torch.equal(task.eval_set("test").inputs, task.eval_set("test").inputs)
    a, b = task.train_batch(32, gen(1)), task.train_batch(32, gen(1))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.targets, task.train_batch(32, gen(2)).targets)


def test_batch_larger_than_the_training_split():
    task = build_task("ucr:GunPoint")
    batch = task.train_batch(100, gen())
    assert batch.inputs.shape == (150, 100, 1)


def test_pdigits_is_one_fixed_permutation_of_the_same_pixels():
    plain = build_task("digits", TaskSettings(seed=2))
    permuted = build_task("pdigits", TaskSettings(seed=2))
    perm = permuted.permutation
    assert sorted(perm.tolist()) == list(range(64)) and not torch.equal(perm, torch.arange(64))
    x, y = plain.eval_set("test"), permuted.eval_set("test")
    assert torch.equal(x.targets, y.targets)
    assert torch.equal(y.inputs, x.inputs[perm])  # the same reordering for every image
    again = build_task("pdigits", TaskSettings(seed=2)).permutation
    other = build_task("pdigits", TaskSettings(seed=3)).permutation
    assert torch.equal(perm, again) and not torch.equal(perm, other)


def test_fixed_length_dataset_rejects_seq_len_and_unknown_options():
    with pytest.raises(TaskError, match="seq_len"):
        build_task("digits", TaskSettings(seq_len=100))
    with pytest.raises(TaskError, match="options"):
        build_task("digits", TaskSettings(options={"colour": 1}))


# -- mnist1d ---------------------------------------------------------------------
def test_mnist1d_shapes_sizes_and_seq_len_option():
    pytest.importorskip("mnist1d")
    task = build_task("mnist1d")
    assert task.describe()["split_sizes"] == {"train": 3200, "val": 800, "test": 1000}
    batch = task.train_batch(8, gen())
    assert batch.inputs.shape == (40, 8, 1) and batch.targets.dtype == torch.long
    assert task.eval_set("test").inputs.shape == (40, 1000, 1)
    assert torch.bincount(task.eval_set("val").targets, minlength=10).min() >= 75
    with pytest.raises(TaskError, match="seq_len"):
        build_task("mnist1d", TaskSettings(seq_len=0))


def test_mnist1d_generation_leaves_global_random_state_alone():
    pytest.importorskip("mnist1d")
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    task = build_task("mnist1d", TaskSettings(seq_len=24))
    assert task.eval_set("test").inputs.shape == (24, 1000, 1)
    assert np.array_equal(np.random.get_state()[1], np_state) and random.getstate() == py_state


def test_mnist1d_validation_split_follows_the_seed_and_test_is_fixed():
    pytest.importorskip("mnist1d")
    a = build_task("mnist1d", TaskSettings(seed=0))
    b = build_task("mnist1d", TaskSettings(seed=1))
    assert torch.equal(a.eval_set("test").inputs, b.eval_set("test").inputs)
    assert not torch.equal(a.eval_set("val").inputs, b.eval_set("val").inputs)


# -- UCR / UEA -------------------------------------------------------------------
def test_gunpoint_splits_and_per_series_normalisation():
    pytest.importorskip("sktime")
    task = build_task("ucr:GunPoint")
    assert task.name == "ucr:GunPoint"
    assert task.describe()["split_sizes"] == {"train": 40, "val": 10, "test": 150}
    test = task.eval_set("test")
    assert test.inputs.shape == (150, 150, 1) and test.lengths is None
    assert torch.allclose(test.inputs.mean(0), torch.zeros(150, 1), atol=1e-4)
    assert torch.allclose(test.inputs.std(0, unbiased=False), torch.ones(150, 1), atol=1e-4)
    assert torch.bincount(task.eval_set("val").targets).tolist() == [5, 5]
    assert build_task("ucr:gunpoint").name == "ucr:GunPoint"


def test_ucr_unknown_name_lists_the_bundled_ones():
    pytest.importorskip("sktime")
    with pytest.raises(TaskError, match="GunPoint") as error:
        build_task("ucr:NoSuchSet")
    assert "PLAID" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(TaskError, match="normalise"):
        build_task("ucr:GunPoint", TaskSettings(options={"normalise": "minmax"}))


def test_plaid_varying_lengths_are_zero_padded_after_the_end():
    pytest.importorskip("sktime")
    task = build_task("ucr:PLAID")
    assert task.seq_len == 1344 and task.describe()["split_sizes"]["test"] == 537
    batch = task.train_batch(24, gen(3))
    lengths = batch.lengths
    assert lengths is not None and lengths.dtype == torch.long and lengths.shape == (24,)
    assert batch.inputs.shape[0] == int(lengths.max())  # cut to the longest in the batch
    assert int(lengths.min()) >= 100 and len(set(lengths.tolist())) > 1
    steps = torch.arange(batch.inputs.shape[0])[:, None]
    pad = steps >= lengths[None, :]
    assert torch.all(batch.inputs[..., 0][pad] == 0)
    for b in range(24):  # each series z-normalised over its true length
        series = batch.inputs[: lengths[b], b, 0].double()
        assert abs(float(series.mean())) < 1e-4
        assert float(series.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4) or float(series.std()) < 1e-6


def test_ucr_training_statistics_normalisation_and_multichannel():
    pytest.importorskip("sktime")
    task = build_task("ucr:BasicMotions", TaskSettings(options={"normalise": "train"}))
    assert task.input_size == 6 and task.output_size == 4
    steps = torch.cat([task.data.train.inputs, task.data.val.inputs]).flatten(0, 1)  # the archive's train
    assert torch.allclose(steps.mean(0), torch.zeros(6), atol=1e-4)
    assert torch.allclose(steps.std(0, unbiased=False), torch.ones(6), atol=1e-4)


# -- MNIST from IDX files --------------------------------------------------------
def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def fake_mnist(directory, train: int = 36, test: int = 10, compress: bool = False):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(test) % 10,
    }
    for name, array in arrays.items():
        write_idx(directory / (name + (".gz" if compress else "")), array, compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_files(tmp_path, compress):
    arrays = fake_mnist(tmp_path, compress=compress)
    task = build_task("mnist", TaskSettings(data_dir=str(tmp_path)))
    assert task.describe()["split_sizes"] == {"train": 33, "val": 3, "test": 10}
    test = task.eval_set("test")
    assert test.inputs.shape == (784, 10, 1) and test.inputs.dtype == torch.float32
    expected = torch.from_numpy(arrays["t10k-images-idx3-ubyte"].reshape(10, 784).T / 255.0).float()
    assert torch.allclose(test.inputs[..., 0], expected)
    assert test.targets.tolist() == list(range(10))
    batch = task.train_batch(5, gen())
    assert batch.inputs.shape == (784, 5, 1) and float(batch.inputs.max()) <= 1.0


def test_pmnist_permutes_every_image_the_same_way(tmp_path):
    fake_mnist(tmp_path)
    plain = build_task("mnist", TaskSettings(data_dir=str(tmp_path), seed=1)).eval_set("test")
    task = build_task("pmnist", TaskSettings(data_dir=str(tmp_path), seed=1))
    perm = task.permutation
    assert sorted(perm.tolist()) == list(range(784))
    assert torch.equal(task.eval_set("test").inputs, plain.inputs[perm])
    assert not torch.equal(perm, build_task("pmnist", TaskSettings(data_dir=str(tmp_path), seed=2)).permutation)


def test_mnist_validation_split_follows_the_seed(tmp_path):
    fake_mnist(tmp_path, train=120)
    a = build_task("mnist", TaskSettings(data_dir=str(tmp_path), seed=0)).eval_set("val")
    b = build_task("mnist", TaskSettings(data_dir=str(tmp_path), seed=0)).eval_set("val")
    c = build_task("mnist", TaskSettings(data_dir=str(tmp_path), seed=1)).eval_set("val")
    assert a.targets.shape == (10,) and sorted(a.targets.tolist()) == list(range(10))
    assert torch.equal(a.inputs, b.inputs) and not torch.equal(a.inputs, c.inputs)


def test_truncated_idx_file_names_the_file(tmp_path):
    fake_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(TaskError, match="t10k-images-idx3-ubyte.*truncated") as error:
        build_task("mnist", TaskSettings(data_dir=str(tmp_path)))
    assert "\n" not in str(error.value)


def test_bad_magic_and_bad_gzip_are_reported(tmp_path):
    fake_mnist(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x0d\x01" + path.read_bytes()[4:])
    with pytest.raises(TaskError, match="train-labels-idx1-ubyte.*magic"):
        build_task("mnist", TaskSettings(data_dir=str(tmp_path)))
    path.unlink()
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(TaskError, match="train-labels-idx1-ubyte.gz"):
        build_task("mnist", TaskSettings(data_dir=str(tmp_path)))


def test_mismatched_label_count_is_reported(tmp_path):
    fake_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(9) % 10)
    with pytest.raises(TaskError, match="9 labels"):
        build_task("mnist", TaskSettings(data_dir=str(tmp_path)))


def test_missing_data_dir_or_file(tmp_path):
    with pytest.raises(TaskError, match="data_dir"):
        build_task("mnist")
    with pytest.raises(TaskError, match="not a directory"):
        build_task("mnist", TaskSettings(data_dir=str(tmp_path / "nowhere")))
    fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(TaskError, match="t10k-labels-idx1-ubyte"):
        build_task("pmnist", TaskSettings(data_dir=str(tmp_path)))


def test_read_idx_returns_the_array(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", array)
    assert np.array_equal(mnist_module.read_idx(tmp_path / "a", 3), array)


# -- the optional extra ----------------------------------------------------------
@pytest.mark.parametrize(
    "task,module", [("digits", "sklearn"), ("pdigits", "sklearn"), ("mnist1d", "mnist1d"), ("ucr:GunPoint", "sktime")]
)
def test_missing_extra_says_what_to_install(monkeypatch, task, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(TaskError, match=r"pip install 'bptt\[data\]'") as error:
        build_task(task)
    assert "\n" not in str(error.value)


def test_importing_bptt_imports_no_optional_package():
    import subprocess

    code = (
        "import sys, bptt, bptt.tasks; print(','.join(m for m in ('sklearn', 'sktime', 'mnist1d') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_dataset_tasks_refuse_settings_they_do_not_read():
    pytest.importorskip("sklearn")
    from bptt.tasks import TaskError, TaskSettings, build_task

    with pytest.raises(TaskError, match="delay is not used by task 'digits'"):
        build_task("digits", TaskSettings(delay=5))
    with pytest.raises(TaskError, match="variant is not used by task 'digits'"):
        build_task("digits", TaskSettings(variant="tcn"))
