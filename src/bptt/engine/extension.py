"""The compiled time loops (``csrc/``: the loops in ``rnn.cpp``, ``lstm.cpp``, ``gru.cpp`` and ``minrnn.cpp``,
described in ``loops.h``; torch's side in ``ops.cpp``): built with torch's extension tools at first use, cached, and
loaded as the ``torch.ops.bptt_loops`` operators that ``bptt.engine.compiled`` runs.

The first call of ``loops()`` in a process loads the library from the cache, building it first when the
cache has none for this source, torch and CPU (about 10 s of one core's compile time; the cache lives in
``$BPTT_CACHE``, else ``$XDG_CACHE_HOME/bptt``, else ``~/.cache/bptt``). The build needs a C++ compiler
and ninja; where either is missing, or ``BPTT_COMPILE=0`` is set, ``loops()`` returns None, a warning
says why once, and the engines run their Python loops ("fast") instead. ``python -m
bptt.engine.extension`` builds it ahead of time (at install, or in a container's image) and says where.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

SOURCES = Path(__file__).with_name("csrc")
#: The files compiled, torch's side first (only it includes torch's headers, the slow part of the build).
FILES = ("ops.cpp", "rnn.cpp", "lstm.cpp", "gru.cpp", "minrnn.cpp")
#: The operators' namespace: ``torch.ops.bptt_loops``.
NAMESPACE = "bptt_loops"

_state: dict[str, Any] = {}  # "ops": the namespace once loaded; "error": why it is not


def _flags() -> list[str]:
    """Compiler flags: optimised, vectorised loops (``-fno-trapping-math`` lets the clamps of ``exp_approx``
    vectorise; nothing here reads floating-point exception flags); AVX2 and FMA where this CPU runs torch's
    AVX2 kernels."""
    flags = ["-O3", "-fopenmp-simd", "-fno-trapping-math"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    return flags


def cache_root() -> Path:
    if os.environ.get("BPTT_CACHE"):
        return Path(os.environ["BPTT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bptt"


def build_name() -> str:
    """A name that changes with the source, the flags, torch and Python: a cached build is reused only
    where it was built for the same of each."""
    key = hashlib.sha256()
    for name in (*FILES, "loops.h"):
        key.update((SOURCES / name).read_bytes())
    key.update(" ".join([*_flags(), torch.__version__, sys.version]).encode())
    return f"{NAMESPACE}_{key.hexdigest()[:12]}"


def enabled() -> bool:
    """False when ``BPTT_COMPILE=0``: the engines then never build or load the library."""
    return os.environ.get("BPTT_COMPILE", "1") != "0"


def loops() -> Any | None:
    """``torch.ops.bptt_loops``, built or loaded on the first call; None where it cannot be had (see
    ``status``)."""
    if "ops" in _state:
        return _state["ops"]
    if "error" in _state:
        return None
    if not enabled():
        _state["error"] = "BPTT_COMPILE=0"
        return None
    try:
        ops = _load()
    except Exception as error:  # a missing compiler or ninja, a failed build: the Python loops run instead
        reason = str(error).strip().splitlines()
        _state["error"] = reason[-1] if reason else type(error).__name__
        warnings.warn(
            f"bptt: the compiled time loops could not be built ({_state['error']}); the Python loops of the "
            "'fast' engine run instead (set BPTT_COMPILE=0 to skip the build)",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    _state["ops"] = ops
    return ops


def status() -> str:
    """One line: where the compiled loops come from, or why they do not run."""
    if loops() is not None:
        return f"compiled ({_state['path']}, BLAS: {'yes' if _state['blas'] else 'at::addmm'})"
    return f"not available: {_state['error']}"


def _load() -> Any:
    from torch.utils import cpp_extension  # loaded only when the loops are first wanted: it imports setuptools

    name = build_name()
    folder = cache_root() / "extensions" / name
    library = folder / f"{name}.so"
    if not library.exists():
        compiler = os.environ.get("CXX", "c++")
        if shutil.which(compiler) is None:
            raise RuntimeError(f"no C++ compiler: {compiler!r} is not on the PATH (set CXX)")
        if not cpp_extension.is_ninja_available():
            raise RuntimeError("ninja is not installed (pip install ninja)")
        folder.mkdir(parents=True, exist_ok=True)
        print("bptt: compiling the C++ time loops (once, cached)...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        cpp_extension.load(
            name,
            [str(SOURCES / name) for name in FILES],
            extra_cflags=_flags(),
            extra_include_paths=[str(SOURCES)],
            build_directory=str(folder),
            is_python_module=False,
            verbose=False,
        )
        _state["build_seconds"] = time.perf_counter() - started
    else:
        torch.ops.load_library(str(library))
    ops = getattr(torch.ops, NAMESPACE)
    _state["path"] = str(library)
    _state["blas"] = bool(ops.blas_check())
    return ops


def reset() -> None:
    """Forget what ``loops()`` found (the library stays loaded): for tests."""
    _state.clear()


if __name__ == "__main__":  # python -m bptt.engine.extension: build now and say where
    started = time.perf_counter()
    print(status(), f"in {time.perf_counter() - started:.1f} s")
