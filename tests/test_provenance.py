"""Which code produced a result: the version, and the git commit of a checkout (dirty or not)."""

import importlib.metadata
import re
import subprocess

import pytest

import bptt
from bptt import provenance as module
from bptt.provenance import __version__, commit, provenance


@pytest.fixture(autouse=True)
def _fresh():
    commit.cache_clear()
    yield
    commit.cache_clear()


def test_the_version_is_the_packages_one():
    assert bptt.__version__ == __version__
    assert importlib.metadata.version("bptt") == __version__  # pyproject.toml reads it from provenance.py


def _git(head, status="", code=0):
    """A stand-in for ``subprocess.run`` answering git's two questions."""

    def run(argv, **kwargs):
        out = head if "rev-parse" in argv else status
        return subprocess.CompletedProcess(argv, code, stdout=out, stderr="")

    return run


def test_a_checkout_gives_its_commit_and_says_when_files_differ(monkeypatch):
    monkeypatch.setattr(module.subprocess, "run", _git("a" * 40 + "\n"))
    assert commit() == "a" * 40
    commit.cache_clear()
    monkeypatch.setattr(module.subprocess, "run", _git("b" * 40 + "\n", " M src/bptt/config.py\n"))
    assert commit() == "b" * 40 + "-dirty"
    assert provenance() == {"version": __version__, "commit": "b" * 40 + "-dirty"}


@pytest.mark.parametrize(
    "failure", [_git("", code=128), OSError("git: not found"), subprocess.TimeoutExpired("git", 10)]
)
def test_no_checkout_or_no_git_gives_no_commit(monkeypatch, failure):
    if isinstance(failure, BaseException):

        def run(*args, **kwargs):
            raise failure

        monkeypatch.setattr(module.subprocess, "run", run)
    else:
        monkeypatch.setattr(module.subprocess, "run", failure)
    assert commit() is None
    assert provenance() == {"version": __version__, "commit": None}


def test_this_checkout_reads_as_a_commit_when_git_is_here():
    found = commit()
    assert found is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", found)
