"""The one place bptt imports its own modules on first use rather than at load.

``import bptt`` loads the layers, the engine, the tasks and the config, and
nothing heavier: the training loop, the database (sqlite3), the figures
(matplotlib) and the logging integrations load the first time a name that
needs them is used. Two ways lead here, and no other module imports a bptt
module lazily:

- ``lazy_attributes(package, {name: module})`` gives a package the
  module-level ``__getattr__`` and ``__dir__`` of PEP 562: ``bptt.train`` imports
  ``bptt.training.loop`` when it is first read, then stays an ordinary attribute;
- ``load(module, name)`` imports one object where it is used (``bptt.watch`` loads
  the TensorBoard or MLflow sink only when asked to log there).

Both take module names as string literals, so tests/test_package.py reads
them from the source as the imports they are and holds them to the package's
layering.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def load(module: str, name: str) -> Any:
    """``name`` from ``module``, importing the module if it is not loaded yet."""
    return getattr(importlib.import_module(module), name)


def lazy_attributes(package: str, table: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name of ``table`` is read from its module
    on first use and then set on the package, so later reads cost nothing."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = load(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *table})

    return __getattr__, __dir__
