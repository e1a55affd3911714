"""Files bptt writes: replaced whole, in their own encoding and line endings, and run folders git ignores."""

import os
import shutil
import subprocess

import pytest

from bptt.cli.main import main
from bptt.files import GITIGNORE, TextFormat, ignored_folder, read_text, write_bytes, write_text


def test_a_write_replaces_the_file_whole_and_keeps_its_mode(tmp_path):
    path = tmp_path / "table.md"
    path.write_text("old\n")
    path.chmod(0o640)
    write_text(path, "new\n")
    assert path.read_text() == "new\n" and (path.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.md"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "runs.csv"
    path.write_text("old\n")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_text(path, "new\n")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["runs.csv"]


def test_a_temporary_left_by_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    process = subprocess.Popen(["true"])  # a writer that has ended
    process.wait()
    path = tmp_path / "README.md"
    leftover = tmp_path / f"README.md.tmp{process.pid}"
    leftover.write_text("half")
    alive = tmp_path / f"README.md.tmp{os.getppid()}"  # a writer that is still running: left alone
    alive.write_text("being written")
    write_text(path, "whole\n")
    assert not leftover.exists() and alive.exists() and path.read_text() == "whole\n"


def test_a_symbolic_link_is_written_where_it_leads(tmp_path):
    (tmp_path / "docs").mkdir()
    target = tmp_path / "docs" / "README.md"
    target.write_text("old\n")
    (tmp_path / "README.md").symlink_to(target)
    write_bytes(tmp_path / "README.md", b"new\n")
    assert (tmp_path / "README.md").is_symlink() and target.read_text() == "new\n"


@pytest.mark.parametrize(
    ("data", "form"),
    [
        (b"a\nb\n", TextFormat(False, "\n")),
        (b"a\r\nb\r\n", TextFormat(False, "\r\n")),
        (b"\xef\xbb\xbfa\r\nb\r\n", TextFormat(True, "\r\n")),
        (b"a\r\nb\n", TextFormat(False, "\n")),  # mixed: left as it is
    ],
)
def test_a_text_file_round_trips_byte_for_byte(tmp_path, data, form):
    path = tmp_path / "f.md"
    path.write_bytes(data)
    text, found = read_text(path)
    assert found == form and "\r\n" not in text.replace("a\r\nb", "")
    write_text(path, text, found)
    assert path.read_bytes() == data


def test_a_text_file_that_is_not_utf8_is_said_so(tmp_path):
    path = tmp_path / "f.md"
    path.write_bytes("é".encode("latin-1"))
    with pytest.raises(UnicodeDecodeError):
        read_text(path)


def test_a_created_folder_carries_a_gitignore_and_an_existing_one_is_left_alone(tmp_path):
    ignored_folder(tmp_path / "new")
    assert (tmp_path / "new" / ".gitignore").read_text() == GITIGNORE
    (tmp_path / "mine").mkdir()
    ignored_folder(tmp_path / "mine")
    assert list((tmp_path / "mine").iterdir()) == []


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_run_folders_do_not_show_up_as_untracked_in_a_git_repository(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    flags = ["--task", "adding", "--seq-len", "5", "--hidden-size", "4", "--batch-size", "4", "--eval-size", "4"]
    assert main(["train", *flags, "--steps", "2", "--checkpoint-every", "1"]) == 0
    spec = "name: s\nbase: {task: adding, seq_len: 5, hidden_size: 4, batch_size: 4, eval_size: 4, steps: 2}\n"
    (tmp_path / "spec.yaml").write_text(spec)
    assert main(["sweep", "spec.yaml", "--db", "sweeps.db", "--workers", "1"]) == 0
    assert main(["sweep", "spec.yaml", "--db", "other.db", "--workers", "1", "--checkpoint-dir", "ckpt"]) == 0
    assert (tmp_path / "bptt-runs" / "run-1" / "checkpoint.pt").is_file()
    untracked = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    # The databases and their sweep locks show; the run folders beside them (bptt-runs/, sweeps-runs/) and the
    # --checkpoint-dir bptt created (ckpt/) do not.
    assert sorted(untracked.split()[1::2]) == [
        "bptt.db",
        "other.db",
        "other.db.sweep-s.lock",
        "spec.yaml",
        "sweeps.db",
        "sweeps.db.sweep-s.lock",
    ], untracked
