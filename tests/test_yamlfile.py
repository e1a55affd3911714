"""Hostile YAML: alias bombs, deep nesting, cycles and duplicate keys are refused in one line, fast and small."""

import subprocess
import sys
import textwrap
import time

import pytest

from bptt.cli.main import main
from bptt.yamlfile import YAMLRefused, load


def billion_laughs(key="seq_len", levels=9):
    """About 1.4 KB that names 9^levels values when its aliases are expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append(f"{key}: *a{levels}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_in_under_a_second_and_within_100_mb(tmp_path):
    paths = []
    for key in ("seq_len", "task_options", "seeds"):
        path = tmp_path / f"bomb-{key}.yaml"
        path.write_text(billion_laughs(key))
        assert path.stat().st_size < 1500
        paths.append(str(path))
    # Measured in a process of its own: the time of each refusal, and the memory grown past what the
    # process held before the first one (its peak resident size afterwards, the peak reset once the
    # imports are done, less its size before).
    probe = textwrap.dedent(
        f"""
        import time
        from bptt.config import ConfigError, load_yaml
        from bptt.sweeps import SweepSpecError, load_spec

        def status(field):
            with open("/proc/self/status") as lines:
                return next(int(l.split()[1]) * 1024 for l in lines if l.startswith(field + ":"))

        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # the peak (VmHWM) starts again from the size now
        before = status("VmRSS")
        for path in {paths!r}:
            for read in (load_yaml, load_spec):
                started = time.perf_counter()
                try:
                    read(path)
                    message = "read"
                except (ConfigError, SweepSpecError) as error:
                    message = str(error)
                print(time.perf_counter() - started, message)
        print(status("VmHWM") - before)
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    *refusals, grown = done.stdout.strip().splitlines()
    assert len(refusals) == 6 and int(grown) < 100 * 2**20, done.stdout
    for line in refusals:
        seconds, message = line.split(" ", 1)
        assert float(seconds) < 1.0 and "expand it past" in message and len(message) < 300, line


def test_the_cli_refuses_an_alias_bomb_in_one_line_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bomb.yaml").write_text(billion_laughs())
    started = time.perf_counter()
    assert main(["train", "--config", "bomb.yaml"]) == 2
    assert time.perf_counter() - started < 1.0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("bptt: error: config: bomb.yaml: its aliases (*name) expand it past")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.yaml"]


@pytest.mark.parametrize("depth", [900, 20_000])
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path, capsys, monkeypatch, depth):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep.yaml").write_text("seq_len: " + "[" * depth + "]" * depth + "\n")
    assert main(["train", "--config", "deep.yaml"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("bptt: error: config: ") and "deep.yaml" in line


def test_nesting_through_aliases_and_a_cycle_are_refused():
    chained = "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nb: &b " + "[" * 30 + "*a" + "]" * 30 + "\n"
    with pytest.raises(YAMLRefused, match="more than 64 levels"):
        load(chained)
    with pytest.raises(YAMLRefused, match="refers to the value it is part of"):
        load("a: &a [1, *a]\n")


def test_a_key_given_twice_is_refused_and_a_merge_still_overrides():
    with pytest.raises(YAMLRefused, match="the key 'lr' is given twice \\(line 3\\)"):
        load("lr: 0.1\nsteps: 3\nlr: 0.2\n")
    assert load("base: &b {lr: 1, steps: 2}\nrun:\n  <<: *b\n  lr: 3\n")["run"] == {"lr": 3, "steps": 2}
    # Ordinary documents, anchors included, read as before.
    assert load("grid: {cell: &c [rnn, gru]}\nagain: *c\n") == {
        "grid": {"cell": ["rnn", "gru"]},
        "again": ["rnn", "gru"],
    }


def test_a_huge_value_comes_back_cut_to_one_short_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "huge.yaml").write_text("seq_len: " + "x" * 10_000_000 + "\n")
    assert main(["train", "--config", "huge.yaml"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("bptt: error: seq_len: ") and "xxx...xxx" in line and len(line) < 300
