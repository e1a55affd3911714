"""Every bad input, to every command: one line, exit code 2, and no file changed.

The matrix: databases that are not bptt's (text, another program's SQLite, a folder, a device, empty,
damaged, read-only, missing) for every command that reads or writes one; non-finite, out-of-range and
too-large settings from flags, YAML files and sweep specs; devices this machine lacks; seeds out of
range; files that are not UTF-8 text; outputs that cannot be written; checkpoints that cannot be read;
selections that select nothing; hostile YAML (alias bombs, deep nesting, cycles, keys given twice, huge
values); names that would break a file name or a table; databases of a newer schema, with columns bptt cannot
fill, or sharing their run folders with another; data and module files that cannot be measured or loaded.
Hypothesis adds values of its own for every float, count and named setting. Each case compares every file of
its working folder before and after.
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
from bptt.experiments import spec_path
from bptt.store import Database
from bptt.store.schema import SCHEMA
from bptt.sweeps import load_spec
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
    _write_hostile(root)
    # Modules for diagnose --module.
    root.joinpath("binary.py").write_bytes(bytes(range(256)))
    root.joinpath("utf16.py").write_bytes("def build():\n    return None\n".encode("utf-16"))
    root.joinpath("syntax.py").write_text("def build(:\n")
    root.joinpath("raising.py").write_text("raise RuntimeError('at import')\n")
    root.joinpath("factory.py").write_text("def build():\n    raise ValueError('in the factory')\n")


def billion_laughs(key):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join([*lines, f"{key}: *a9"]) + "\n"


#: A --set value whose aliases name 9^6 values.
SET_BOMB = (
    "seq_len=["
    + ", ".join(
        [
            "&a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
            *(f"&{c} [" + ", ".join([f"*{p}"] * 9) + "]" for p, c in zip("abcde", "bcdef")),
        ]
    )
    + "]"
)
LONG_NAME = "s" * 300
LONG_DB = "d" * 252 + ".db"


def _write_hostile(root):
    """Hostile YAML, names, databases, modules and data (issue: nothing lost, round two)."""
    import torch

    for key in ("seq_len", "task_options", "seeds"):
        root.joinpath(f"bomb-{key}.yaml").write_text(billion_laughs(key))
    root.joinpath("deep.yaml").write_text("seq_len: " + "[" * 900 + "]" * 900 + "\n")
    root.joinpath("deeper.yaml").write_text("seq_len: " + "[" * 20_000 + "]" * 20_000 + "\n")
    root.joinpath("cycle.yaml").write_text("seq_len: &a [1, *a]\n")
    root.joinpath("twice.yaml").write_text("lr: 0.1\nsteps: 3\nlr: 0.2\n")
    root.joinpath("huge.yaml").write_text("seq_len: " + "9" * 1_000_000 + "x\n")
    root.joinpath("spec-twice.yaml").write_text(yaml.safe_dump(SPEC) + "name: t\n")
    root.joinpath("spec-newline.yaml").write_text(yaml.safe_dump({**SPEC, "name": "s\n"}))
    root.joinpath("spec-long.yaml").write_text(yaml.safe_dump({**SPEC, "name": LONG_NAME}))
    for name, variant in (("ansi", "red \x1b[31m"), ("newline", "two\nlines")):
        root.joinpath(f"spec-{name}-variant.yaml").write_text(yaml.safe_dump({**SPEC, "variants": [{"name": variant}]}))
    root.joinpath("readme-utf16.md").write_bytes("<!-- bptt:results canonical-quick -->\n".encode("utf-16"))
    shutil.copy(root / "good.db", root / "future.db")
    _sql(root / "future.db", "PRAGMA user_version = 99")
    _sql(
        root / "notnull.db",
        *[
            part
            for part in SCHEMA.replace("    host TEXT\n);", "    host TEXT,\n    team TEXT NOT NULL\n);", 1).split(";")
            if part.strip()
        ],
        "PRAGMA user_version = 1",
    )
    root.joinpath("exits.py").write_text("import sys\nsys.exit(7)\n")
    root.joinpath("tf.py").write_text(
        "import torch\n\nclass T(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.rnn = torch.nn.GRU(3, 8)\n        self.out = torch.nn.Linear(8, 4)\n\n"
        "    def forward(self, x):\n        return self.out(self.rnn(x)[0][-1])\n\ndef build():\n    return T()\n"
    )
    long_ids = torch.zeros(4, dtype=torch.long)
    for name, inputs, targets in (
        ("nan", torch.full((10, 4, 3), float("nan")), long_ids),
        ("empty", torch.randn(10, 0, 3), torch.zeros(0, dtype=torch.long)),
        ("class", torch.randn(10, 4, 3), torch.tensor([0, 1, 2, 9])),
        ("complex", torch.randn(10, 4, 3, dtype=torch.complex64), long_ids),
    ):
        torch.save({"inputs": inputs, "targets": targets}, root / f"data-{name}.pt")


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
READ_DBS = [
    "text.db",
    "foreign.db",
    "folder.db",
    "empty.db",
    "damaged.db",
    "partial.db",
    "/dev/null",
    "missing.db",
    "future.db",
]
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
    "future.db",
    "notnull.db",
    "good.sqlite",  # good.db's run folders are good-runs/: not to be shared
    LONG_DB,
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
    "bomb-seq_len.yaml",
    "bomb-task_options.yaml",
    "bomb-seeds.yaml",
    "deep.yaml",
    "deeper.yaml",
    "cycle.yaml",
    "twice.yaml",
    "huge.yaml",
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
        "bomb-seeds.yaml",
        "deeper.yaml",
        "spec-twice.yaml",
        "spec-newline.yaml",
        "spec-long.yaml",
        "spec-ansi-variant.yaml",
        "spec-newline-variant.yaml",
    ):
        yield ["sweep", spec, "--db", "new.db"]
        yield ["sweep", spec, "--db", "new.db", "--dry-run"]
    yield ["sweep", "spec.yaml", "--db", "new.db", "--seeds", str(2**64)]
    yield ["sweep", "spec.yaml", "--db", "new.db", "--set", SET_BOMB]
    for name in ("s\n", LONG_NAME, "s/../x"):
        yield ["sweep", "spec.yaml", "--db", "new.db", "--name", name]
    yield ["reproduce", "canonical", "--quick", "--set", SET_BOMB]
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
        yield ["selfcheck", "--quick", "--device", device]
    for output in ("ro/explore.html", "file.txt/explore.html", "folder.db"):
        yield ["explore", "--no-open", "-o", output]
    for option, value in (
        ("--cell", "elman"),
        ("--hidden-size", "65"),
        ("--seq-len", "1"),
        ("--spectral-norm", "nan"),
        ("--clip", "0"),
        ("--seed", "-1"),
        ("--input-scale", "inf"),
        ("--init", "he"),
    ):
        yield ["explore", "--no-open", "-o", "explore.html", option, value]
    yield ["explore", "--no-open", "-o", "explore.html", "--vectors", "ro/vectors.json"]
    for option, value in (("--cells", "lstm,foo"), ("--shapes", "16x64"), ("--shapes", "-1x2x3"), ("--only", ",")):
        yield ["bench", "--quick", option, value]
    for name in ("empty", "truncated", "random", "crafted"):
        yield ["train", "--db", f"ck-{name}.db", *TINY[:-4], "--steps", "4", "--resume"]
        yield ["diagnose", "--db", f"ck-{name}.db", "--run", "1"]
    yield ["runs", "--db", "good.db", "--status", "foo"]
    yield ["runs", "--db", "good.db", "--sweep", "nosuch"]
    yield ["export", "--db", "good.db", "--sweep", "nosuch", "-o", "out.csv"]
    yield ["report", "--db", "good.db", "--sweep", "nosuch", "-o", "out.html"]
    yield ["diagnose", "--db", "good.db", "--run", "99"]
    for module in ("binary.py", "utf16.py", "syntax.py", "raising.py", "factory.py", "missing.py", "exits.py"):
        yield ["diagnose", "--module", f"{module}:build", "--task", "adding"]
    for name in ("nan", "empty", "class", "complex"):
        yield ["diagnose", "--module", "tf.py:build", "--data", f"data-{name}.pt"]
    for path in ("missing.pt", "empty.pt", "folder.db"):
        yield ["convert-checkpoint", path]
    quick = ["reproduce", "canonical", "--quick"]
    yield ["reproduce", "nosuch"]
    yield ["reproduce", "modern", "--quick"]
    yield ["sweep", "nosuch"]
    yield ["sweep", "canonical.yaml"]
    yield ["reproduce", "spec.yaml", "--quick"]
    for folder in ("ro/results", "file.txt"):
        yield [*quick, "--out", folder]
    for value in ("lr=.inf", "seed=18446744073709551616", "device=meta"):
        yield [*quick, "--set", value]
    yield [*quick, "--filter", "cell=nosuch"]
    yield [*quick, "--seeds", str(2**64)]
    yield [*quick, "--collect", "--out", "results"]
    yield [*quick, "--collect", "--out", "results", "--db", "good.db"]  # a database with none of its runs
    yield [*quick, "--collect", "--out", "results", "--db", "good.db", "--readme", "readme-utf16.md"]
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


def test_the_hostile_cases_say_what_is_wrong(world, capsys):
    say = lambda *argv: refused(world, capsys, list(argv))  # noqa: E731
    quick = ["reproduce", "canonical", "--quick", "--collect", "--out", "results"]
    assert "its aliases (*name) expand it past" in say("train", "--config", "bomb-seq_len.yaml")
    assert "nests more than 64 levels deep" in say("train", "--config", "deep.yaml")
    assert "the key 'lr' is given twice (line 3)" in say("train", "--config", "twice.yaml")
    huge = say("train", "--config", "huge.yaml")  # a 1 MB value, shown cut
    assert huge.startswith("bptt: error: seq_len: ") and "..." in huge and len(huge) < 300
    assert "written by a newer bptt (schema version 99" in say("runs", "--db", "future.db")
    assert "cannot leave empty (NOT NULL)" in say("train", *TINY, "--db", "notnull.db")
    assert "good-runs holds the run folders of" in say("train", *TINY, "--db", "good.sqlite")
    assert "is too long" in say("train", *TINY, "--db", LONG_DB)
    assert "got 's\\n'" in say("sweep", "spec.yaml", "--name", "s\n")
    assert "at most 100 characters" in say("sweep", "spec.yaml", "--name", LONG_NAME)
    assert "must be one line of printable text" in say("sweep", "spec-ansi-variant.yaml", "--dry-run")
    runs = len(load_spec(spec_path("canonical-quick")).runs)
    assert f"holds none of the {runs} runs of canonical-quick" in say(*quick, "--db", "good.db")
    assert "is not UTF-8 text" in say(*quick, "--db", "good.db", "--readme", "readme-utf16.md")
    shipped = "the shipped: canonical, canonical-quick, modern, remedies, vanishing"
    assert f"NAME: no file nosuch and no shipped spec of that name; {shipped}" in say("reproduce", "nosuch")
    assert f"SPEC: no file nosuch and no shipped spec of that name; {shipped}" in say("sweep", "nosuch")
    assert "--quick: modern has no quick version; the tables that have one: canonical" in say(
        "reproduce", "modern", "--quick"
    )
    assert "--quick: takes the name of a shipped table with a quick version, not 'spec.yaml'" in say(
        "reproduce", "spec.yaml", "--quick"
    )
    names = "a shipped spec is given by its name: canonical, canonical-quick, modern, remedies, vanishing"
    assert f"SPEC: no file canonical.yaml; {names}" in say("sweep", "canonical.yaml")
    assert f"SPEC: no file ro/canonical; {names}" in say("sweep", "ro/canonical")
    assert "it called sys.exit(7)" in say("diagnose", "--module", "exits.py:build", "--task", "adding")
    assert "class id 9" in say("diagnose", "--module", "tf.py:build", "--data", "data-class.pt")
    assert "must hold real numbers" in say("diagnose", "--module", "tf.py:build", "--data", "data-complex.pt")


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
    # task options: see the sentiment cases above; a cell's own settings: tests/modules/test_cells.py
    assert floats == {*FLOATS, "task_options", "cell_options"}


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
