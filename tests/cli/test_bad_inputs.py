"""Every bad input, to every command: one line, exit code 2, and no file changed.

The matrix: databases that are not bptt's (text, another program's SQLite, a folder, a device, empty,
damaged, read-only, missing) for every command that reads or writes one; non-finite, out-of-range and
too-large settings from flags, YAML files and sweep specs; devices this machine lacks; seeds out of
range; files that are not UTF-8 text; outputs that cannot be written; checkpoints that cannot be read;
selections that select nothing. Hypothesis adds values of its own for every float, count and named
setting. Each case compares every file of its working folder before and after.
"""

import hashlib
import math
import os
import shutil
import sqlite3

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bptt.cli.main import cli, main
from bptt.config import TRAINING_FIELDS, ConfigError, RunConfig, build_config
from bptt.store import Database
from bptt.training import Trainer

TINY = [
    "--task",
    "adding",
    "--seq-len",
    "5",
    "--hidden-size",
    "4",
    "--batch-size",
    "4",
    "--eval-size",
    "4",
    "--steps",
    "2",
    "--eval-every",
    "1",
    "--checkpoint-every",
    "1",
]
TINY_CONFIG = {
    "task": "adding",
    "seq_len": 5,
    "hidden_size": 4,
    "batch_size": 4,
    "eval_size": 4,
    "steps": 2,
    "eval_every": 1,
    "checkpoint_every": 1,
    "progress": False,
}
SPEC = {
    "name": "s",
    "base": {k: v for k, v in TINY_CONFIG.items() if k != "progress"},
    "grid": {"cell": ["rnn", "gru"]},
}


class Crafted:
    """Unpickling this runs os.mkdir: the canary of a checkpoint that executes code."""

    def __reduce__(self):
        return (os.mkdir, ("pwned",))


def _train(db_path, **values):
    with Database(db_path) as db:
        Trainer(build_config({**TINY_CONFIG, **values}), db).run()


def _sql(path, *statements):
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def _write_world(root):
    import torch

    _train(root / "good.db")
    _train(root / "good.db", seed=1)
    root.joinpath("text.db").write_text("not a database\n")
    root.joinpath("empty.db").write_bytes(b"")
    (root / "folder.db").mkdir()
    root.joinpath("damaged.db").write_bytes(b"SQLite format 3\x00" + os.urandom(2000))
    _sql(root / "foreign.db", "CREATE TABLE users (name TEXT)", "INSERT INTO users VALUES ('ada')")
    _sql(root / "partial.db", "CREATE TABLE runs (id INTEGER PRIMARY KEY, identity TEXT)")
    root.joinpath("file.txt").write_text("a file where a folder is expected\n")
    # Runs to resume whose checkpoints cannot be read: empty, truncated, random bytes, code.
    whole = (root / "good-runs" / "run-1" / "checkpoint.pt").read_bytes()
    crafted = root / "crafted.pt"
    torch.save({"step": 1, "model": Crafted()}, crafted)
    for name, data in (
        ("empty", b""),
        ("truncated", whole[: len(whole) // 2]),
        ("random", os.urandom(4000)),
        ("crafted", crafted.read_bytes()),
    ):
        _train(root / f"ck-{name}.db")
        _sql(root / f"ck-{name}.db", "UPDATE runs SET status = 'interrupted'")
        (root / f"ck-{name}-runs" / "run-1" / "checkpoint.pt").write_bytes(data)
    root.joinpath("empty.pt").write_bytes(b"")
    # Config files and sweep specs.
    root.joinpath("utf16.yaml").write_bytes("lr: 0.1\n".encode("utf-16"))
    root.joinpath("binary.yaml").write_bytes(bytes(range(256)))
    root.joinpath("inf.yaml").write_text("lr: .inf\n")
    root.joinpath("nan.yaml").write_text("cell: lstm\nforget_bias: .nan\n")
    root.joinpath("list.yaml").write_text("- lr\n- 0.1\n")
    root.joinpath("intkey.yaml").write_text("1: 2\n")
    root.joinpath("unknown.yaml").write_text("hiden_size: 8\n")
    (root / "folder.yaml").mkdir()
    root.joinpath("spec.yaml").write_text(yaml.safe_dump(SPEC))
    root.joinpath("spec-huge.yaml").write_text(
        yaml.safe_dump(
            {**SPEC, "grid": {"lr": [10 ** -(1 + i / 1000) for i in range(1000)], "hidden_size": list(range(1, 1001))}}
        )
    )
    root.joinpath("spec-inf.yaml").write_text(yaml.safe_dump(SPEC).replace("steps: 2", "steps: 2\n  lr: .inf"))
    root.joinpath("spec-big-run.yaml").write_text(yaml.safe_dump({**SPEC, "base": {**SPEC["base"], "seq_len": 10**9}}))
    root.joinpath("spec-seed.yaml").write_text(yaml.safe_dump({**SPEC, "seeds": [2**64]}))
    root.joinpath("spec-utf16.yaml").write_bytes(yaml.safe_dump(SPEC).encode("utf-16"))
    # Modules for diagnose --module.
    root.joinpath("binary.py").write_bytes(bytes(range(256)))
    root.joinpath("utf16.py").write_bytes("def build():\n    return None\n".encode("utf-16"))
    root.joinpath("syntax.py").write_text("def build(:\n")
    root.joinpath("raising.py").write_text("raise RuntimeError('at import')\n")
    root.joinpath("factory.py").write_text("def build():\n    raise ValueError('in the factory')\n")


#: Whether this machine gave the world a read-only folder (``ro/``); cases that need one skip without it.
READ_ONLY = {"here": False}


@pytest.fixture(scope="module")
def world(tmp_path_factory, read_only_folder):
    root = tmp_path_factory.mktemp("world")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        _write_world(root)
        with read_only_folder(root / "ro", [root / "good.db", root / "good-runs"]) as read_only:
            READ_ONLY["here"] = read_only is not None
            yield root
    finally:
        os.chdir(cwd)


def snapshot(root):
    """Every file and folder under ``root``: its kind, and for a file its size, mtime and content hash."""
    seen = {}
    for folder, names, files in os.walk(root):
        for name in names:
            seen[os.path.relpath(os.path.join(folder, name), root)] = "folder"
        for name in files:
            path = os.path.join(folder, name)
            stat = os.stat(path)
            seen[os.path.relpath(path, root)] = (
                stat.st_size,
                stat.st_mtime_ns,
                hashlib.sha1(open(path, "rb").read()).hexdigest(),
            )
    return seen


def refused(world, capsys, argv, code=2):
    """Run ``bptt argv`` in ``world``; assert the exit code, one line on stderr, nothing on stdout, no file changed."""
    if any(part.startswith("ro/") for part in argv) and not READ_ONLY["here"]:
        pytest.skip("no read-only folder on this machine")
    os.chdir(world)
    before = snapshot(world)
    capsys.readouterr()
    returned = main(argv)
    out, err = capsys.readouterr()
    assert returned == code, (argv, returned, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bptt: "), (argv, err)
    assert out == "", (argv, out)
    assert snapshot(world) == before, argv
    assert not (world / "pwned").exists(), argv
    return lines[0]


# -- the matrix --------------------------------------------------------------------------------
READ_DBS = ["text.db", "foreign.db", "folder.db", "empty.db", "damaged.db", "partial.db", "/dev/null", "missing.db"]
WRITE_DBS = [
    "text.db",
    "foreign.db",
    "folder.db",
    "damaged.db",
    "partial.db",
    "/dev/null",
    "ro/good.db",
    "ro/new.db",
    "file.txt/r.db",
]
READERS = [["runs"], ["report", "-o", "out.html"], ["export", "-o", "out.csv"], ["diagnose", "--run", "1"]]
WRITERS = [["train", *TINY], ["sweep", "spec.yaml"]]

FLOATS = {
    "lr": [],
    "momentum": ["--optimizer", "sgd"],
    "negative_slope": ["--activation", "leaky_relu"],
    "init_scale": [],
    "forget_bias": ["--cell", "lstm"],
    "dropout": [],
    "target_metric": [],
    "target_loss": [],
    "clip_norm": [],
    "clip_value": [],
}
NON_FINITE = ["inf", "-inf", "nan", "1e309", "-1e309"]
TOO_LARGE = {
    "hidden_size": 10**6,
    "seq_len": 10**9,
    "batch_size": 10**9,
    "eval_size": 10**9,
    "num_layers": 100000,
    "embedding_size": 10**9,
    "delay": 10**9,
}
DEVICES = ["mps", "meta", "cuda", "cuda:99", "cpu:1", "tpu", ""]
SEEDS = [str(2**64), str(2**32), "-1"]
CONFIGS = [
    "utf16.yaml",
    "binary.yaml",
    "inf.yaml",
    "nan.yaml",
    "list.yaml",
    "intkey.yaml",
    "unknown.yaml",
    "folder.yaml",
    "missing.yaml",
]


def _flag(name):
    return "--" + name.replace("_", "-")


def _setting_cases():
    for name, extra in FLOATS.items():
        for value in NON_FINITE:
            yield [*extra, f"{_flag(name)}={value}"]
    for name, value in TOO_LARGE.items():
        extra = ["--task", "sentiment"] if name in ("embedding_size", "delay") else []
        yield [*extra, _flag(name), str(value)]
    for device in DEVICES:
        yield [f"--device={device}"]
    for seed in SEEDS:
        yield [f"--seed={seed}"]
    for path in CONFIGS:
        yield ["--config", path]


SETTING_CASES = list(_setting_cases())


def _cases():
    for argv in READERS:
        for db in READ_DBS:
            yield [*argv, "--db", db]
    for db in READ_DBS:
        if db not in ("empty.db", "missing.db"):  # a sweep's new database: nothing to refuse
            yield ["sweep", "spec.yaml", "--dry-run", "--db", db]
    for argv in WRITERS:
        for db in WRITE_DBS:
            yield [*argv, "--db", db]
    for case in SETTING_CASES:
        yield ["train", "--db", "new.db", *case]
        if not any(_flag(name) in part for name in TRAINING_FIELDS for part in case):  # diagnose takes none
            yield ["diagnose", *case]
    for value in (
        "lr=.inf",
        "momentum=.nan",
        "hidden_size=1000000",
        "seq_len=1000000000",
        "device=meta",
        "seed=18446744073709551616",
        "num_layers=100000",
    ):
        yield ["sweep", "spec.yaml", "--db", "new.db", "--set", value]
    for spec in (
        "spec-huge.yaml",
        "spec-inf.yaml",
        "spec-big-run.yaml",
        "spec-seed.yaml",
        "spec-utf16.yaml",
        "binary.yaml",
        "missing.yaml",
    ):
        yield ["sweep", spec, "--db", "new.db"]
        yield ["sweep", spec, "--db", "new.db", "--dry-run"]
    yield ["sweep", "spec.yaml", "--db", "new.db", "--seeds", str(2**64)]
    for value in (".nan", ".inf", "-.inf", "1e309"):
        yield ["train", "--db", "new.db", "--task", "sentiment", "--task-option", f"negation_prob={value}"]
    yield ["sweep", "spec.yaml", "--db", "new.db", "--filter", "cell=nosuch"]
    yield ["sweep", "spec.yaml", "--db", "new.db", "--dry-run", "--filter", "cell=nosuch"]
    for folder in ("ro/runs", "file.txt", "file.txt/runs"):
        yield ["sweep", "spec.yaml", "--db", "new.db", "--checkpoint-dir", folder]
    for value in ("nan", "inf", "-inf", "0", "1"):
        yield ["diagnose", "--task", "adding", f"--epsilon={value}"]
    for output in ("ro/out.html", "folder.db", "file.txt/out.html"):
        yield ["report", "--db", "good.db", "-o", output]
    for output in ("ro/out.csv", "file.txt/out.csv", "out.txt"):
        yield ["export", "--db", "good.db", "-o", output]
    for folder in ("ro/figures", "file.txt", "file.txt/figures"):
        yield ["diagnose", *TINY[:2], "--out", folder]
    for folder in ("ro/demo", "file.txt"):
        yield ["demo", "--quick", "--out", folder]
    for device in ("cuda:99", "meta", "mps", "abacus"):
        yield ["bench", "--quick", "--device", device]
    for name in ("empty", "truncated", "random", "crafted"):
        yield ["train", "--db", f"ck-{name}.db", *TINY[:-4], "--steps", "4", "--resume"]
        yield ["diagnose", "--db", f"ck-{name}.db", "--run", "1"]
    yield ["runs", "--db", "good.db", "--status", "foo"]
    yield ["runs", "--db", "good.db", "--sweep", "nosuch"]
    yield ["export", "--db", "good.db", "--sweep", "nosuch", "-o", "out.csv"]
    yield ["report", "--db", "good.db", "--sweep", "nosuch", "-o", "out.html"]
    yield ["diagnose", "--db", "good.db", "--run", "99"]
    for module in ("binary.py", "utf16.py", "syntax.py", "raising.py", "factory.py", "missing.py"):
        yield ["diagnose", "--module", f"{module}:build", "--task", "adding"]
    for path in ("missing.pt", "empty.pt", "folder.db"):
        yield ["convert-checkpoint", path]
    quick = ["reproduce", "canonical", "--quick"]
    yield ["reproduce", "nosuch"]
    for folder in ("ro/results", "file.txt"):
        yield [*quick, "--out", folder]
    for value in ("lr=.inf", "seed=18446744073709551616", "device=meta"):
        yield [*quick, "--set", value]
    yield [*quick, "--filter", "cell=nosuch"]
    yield [*quick, "--seeds", str(2**64)]
    yield [*quick, "--collect", "--out", "results"]
    yield ["convert-checkpoint", "crafted.pt", "-o", "ro/plain.pt"]


CASES = list(_cases())


def test_the_matrix_reaches_every_command():
    assert {argv[0] for argv in CASES} == set(cli.commands)


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(a)[:80] for a in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(world, capsys, argv):
    refused(world, capsys, argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "--db", "good.db"],
        ["runs", "--db", "ro/good.db"],
        ["diagnose", "--db", "good.db", "--run", "1", "--json"],
        ["diagnose", "--db", "ro/good.db", "--run", "1", "--json"],
        ["sweep", "spec.yaml", "--db", "good.db", "--dry-run"],
        ["sweep", "spec.yaml", "--db", "missing.db", "--dry-run"],
        ["runs", "--db", "good.db", "--status", "diverged"],
    ],
)
def test_reading_commands_write_nothing_even_to_their_own_database(world, capsys, argv):
    if "ro/good.db" in argv and not READ_ONLY["here"]:
        pytest.skip("no read-only folder on this machine")
    os.chdir(world)
    before = snapshot(world)
    assert main(argv) == 0, capsys.readouterr().err
    assert snapshot(world) == before
    assert "traceback" not in capsys.readouterr().err.lower()


def test_the_messages_name_what_is_wrong(world, capsys):
    say = lambda *argv: refused(world, capsys, list(argv))  # noqa: E731
    assert "another program's SQLite database (tables: users)" in say("runs", "--db", "foreign.db")
    assert "is not a SQLite database" in say("export", "--db", "text.db")
    if READ_ONLY["here"] and os.geteuid() == 0:
        assert "read-only file system" in say("train", "--db", "ro/good.db", *TINY)
    assert "--lr: Input should be a finite number" in say("train", "--db", "new.db", "--lr", "1e309")
    assert "memory: this run needs about" in say("train", "--db", "new.db", "--seq-len", "1000000000")
    assert "--num-layers: Input should be less than or equal to 1000" in say("train", "--num-layers", "100000")
    assert "--device: must be a device this machine has: cpu" in say("train", "--device", "meta")
    assert "expands to 1,000,000 runs" in say("sweep", "spec-huge.yaml", "--dry-run")
    assert "is not UTF-8 text" in say("train", "--config", "utf16.yaml")
    assert "convert-checkpoint" in say("diagnose", "--db", "ck-crafted.db", "--run", "1")
    assert "the file is empty" in say("train", "--db", "ck-empty.db", *TINY[:-4], "--steps", "4", "--resume")
    assert "--status: must be one of running, finished" in say("runs", "--db", "good.db", "--status", "foo")
    assert "sweeps here: none" in say("export", "--db", "good.db", "--sweep", "nosuch")
    assert "--filter keeps no run; in this sweep cell is one of 'gru', 'rnn'" in say(
        "sweep", "spec.yaml", "--filter", "cell=nosuch"
    )
    if READ_ONLY["here"]:
        assert "--out: cannot write in" in say("demo", "--out", "ro/demo")


# -- values of Hypothesis's own --------------------------------------------------------------------
def _invalid(name, value):
    try:
        build_config({**TINY_CONFIG, **dict(FLOATS_EXTRA.get(name, {})), name: value})
    except ConfigError:
        return True
    return False


FLOATS_EXTRA = {
    "momentum": {"optimizer": "sgd"},
    "negative_slope": {"activation": "leaky_relu"},
    "forget_bias": {"cell": "lstm"},
}
COUNTS = [
    "hidden_size",
    "seq_len",
    "batch_size",
    "eval_size",
    "num_layers",
    "steps",
    "eval_every",
    "checkpoint_every",
    "seed",
]
NAMED = ["cell", "activation", "init", "optimizer", "readout", "nonfinite", "engine", "task", "device"]
# Derandomized: the same examples on every run, so the suite is deterministic in CI.
HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)


@HYPOTHESIS
@given(
    name=st.sampled_from(list(FLOATS)),
    value=st.one_of(
        st.sampled_from(["nan", "NaN", "inf", "Infinity", "-inf", "+inf", " nan ", "1e400"]),
        st.integers(309, 10**4).map(lambda e: f"1e{e}"),
        st.integers(309, 10**4).map(lambda e: f"-9e{e}"),
        st.sampled_from([math.nan, math.inf, -math.inf]).map(repr),
    ),
)
def test_any_non_finite_float_setting_is_refused(world, capsys, name, value):
    assume(_invalid(name, value))
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in FLOATS_EXTRA.get(name, {}).items()]
    assert "finite number" in refused(world, capsys, ["train", "--db", "new.db", *extra, f"{_flag(name)}={value}"])


@HYPOTHESIS
@given(
    name=st.sampled_from(COUNTS),
    value=st.one_of(st.integers(max_value=0), st.integers(min_value=10**8), st.text(max_size=12)),
)
def test_any_count_out_of_range_or_past_memory_is_refused(world, capsys, name, value):
    # 10^8 of any size is past this machine's memory (or past the count's own bound): refused before anything runs.
    assume(name != "seed" or not isinstance(value, int) or value < 0 or value > 2**32 - 1)
    assume(name not in ("steps", "eval_every", "checkpoint_every") or not isinstance(value, int) or value <= 0)
    assume(_invalid(name, value) or name in ("hidden_size", "seq_len", "batch_size", "eval_size"))
    assume("\x00" not in str(value))
    refused(world, capsys, ["train", "--db", "new.db", *TINY[:2], f"{_flag(name)}={value}"])


@HYPOTHESIS
@given(name=st.sampled_from(NAMED), value=st.text(max_size=20))
def test_any_unknown_name_is_refused(world, capsys, name, value):
    assume("\x00" not in value)
    assume(_invalid(name, value))
    refused(world, capsys, ["train", "--db", "new.db", f"{_flag(name)}={value}"])


@HYPOTHESIS
@given(data=st.binary(min_size=1, max_size=400))
def test_any_bytes_as_a_config_file_or_sweep_spec_are_refused_or_read(world, capsys, data):
    path = world / "fuzzed.yaml"
    path.write_bytes(data)
    try:
        values = yaml.safe_load(data.decode("utf-8-sig"))
        assume(values is not None and not isinstance(values, dict))  # an empty file or a mapping may be valid
    except (UnicodeDecodeError, yaml.YAMLError):
        pass
    try:
        refused(world, capsys, ["train", "--db", "new.db", "--config", "fuzzed.yaml"])
        refused(world, capsys, ["sweep", "fuzzed.yaml", "--dry-run"])
    finally:
        path.unlink()


@HYPOTHESIS
@given(data=st.binary(max_size=3000))
def test_any_bytes_as_a_database_are_refused_untouched(world, capsys, data):
    path = world / "fuzzed.db"
    path.write_bytes(b"SQLite format 3\x00" + data if data[:1] == b"\x00" else data)
    assume(path.stat().st_size > 0)
    try:
        for argv in (["runs"], ["train", *TINY], ["export", "-o", "out.csv"]):
            refused(world, capsys, [*argv, "--db", "fuzzed.db"])
    finally:
        path.unlink()


def test_every_float_setting_of_the_config_is_in_the_matrix():
    floats = {name for name, field in RunConfig.model_fields.items() if "float" in str(field.annotation)}
    assert floats == {*FLOATS, "task_options"}  # task options: see the sentiment cases above


def test_a_read_only_database_is_read_where_it_lies(world, capsys):
    copy = world / "copy-of-good.db"
    shutil.copy(world / "good.db", copy)
    try:
        os.chdir(world)
        assert main(["runs", "--db", str(copy)]) == 0
        assert "finished" in capsys.readouterr().out
        assert sorted(p.name for p in world.glob("copy-of-good.db*")) == ["copy-of-good.db"]
    finally:
        copy.unlink()
