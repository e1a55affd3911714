"""The package's own shape: no hidden imports, each part importing only the parts below it, `import bptt`
light, files small enough to read."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import bptt

PACKAGE = Path(bptt.__file__).parent
FILES = sorted(PACKAGE.rglob("*.py"))
PARTS = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
PARTS.discard("__init__")

#: Which part of the package may import which at load time (its own modules aside): each part stands
#: on the parts it names, and no part reaches up. "bptt" is the package's own __init__.
MAY_IMPORT = {
    "checks": set(),
    "registry": set(),
    "lazy": set(),
    "provenance": set(),
    "files": set(),
    "plotting": {"files"},
    "experiments": set(),
    "engine": {"checks", "registry"},
    "tasks": {"checks", "registry"},
    "modules": {"checks", "engine", "registry"},
    "yamlfile": {"checks"},
    "cell_settings": {"engine", "modules"},
    "config": {"cell_settings", "checks", "engine", "modules", "tasks", "yamlfile"},
    "models": {"config", "modules", "tasks"},
    "store": {"config", "files"},
    "build": {"config", "models", "tasks"},
    "training": {"build", "checks", "config", "engine", "models", "modules", "provenance", "store", "tasks"},
    "loading": {"build", "checks", "config", "models", "store", "tasks", "training"},
    "diagnostics": {"build", "checks", "config", "engine", "lazy", "modules", "plotting", "store", "tasks"},
    "watcher": {"checks", "diagnostics", "engine", "lazy", "modules", "plotting"},
    "integrations": {"watcher"},
    "sweeps": {"build", "checks", "config", "files", "modules", "store", "tasks", "training", "yamlfile"},
    "report": {"diagnostics", "experiments", "files", "plotting", "store", "sweeps"},
    "explore": {"diagnostics", "engine", "modules", "plotting"},
    "demo": {"config", "diagnostics", "explore", "modules", "plotting", "report", "store", "training"},
    "bench": {"bptt", "engine", "modules"},
    "cli": {
        "bptt",
        "bench",
        "build",
        "checks",
        "config",
        "demo",
        "diagnostics",
        "experiments",
        "explore",
        "files",
        "loading",
        "modules",
        "plotting",
        "provenance",
        "registry",
        "report",
        "store",
        "sweeps",
        "tasks",
        "training",
    },
    "bptt": {"config", "lazy", "modules", "provenance"},
}
#: The imports made on first use through ``bptt.lazy`` that cross parts: the package's own names
#: (``bptt.train`` and the rest), and the logging sinks ``bptt.watch`` loads when asked to log there.
LAZY = {"bptt": {"diagnostics", "training", "watcher"}, "watcher": {"integrations"}}


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return ["bptt"]
        if node.module == "bptt":
            return [f"bptt.{alias.name}" if alias.name in PARTS else "bptt" for alias in node.names]
        return [node.module or ""]
    return []


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return "bptt" if relative == Path("__init__.py") else relative.parts[0].removesuffix(".py")


def _part_of(name: str) -> str | None:
    if name != "bptt" and not name.startswith("bptt."):
        return None
    return name.split(".")[1] if "." in name else "bptt"


def _typing_only(tree: ast.AST) -> set[int]:
    """The nodes under ``if TYPE_CHECKING:``: imports for the type checker, never run."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }


def _lazy_names(node: ast.AST) -> list[str]:
    """The bptt modules a call into ``bptt.lazy`` (``load`` or ``lazy_attributes``) names."""
    if not isinstance(node, ast.Call):
        return []
    called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
    if called not in ("load", "lazy_attributes"):
        return []
    return [
        inner.value
        for argument in node.args
        for inner in ast.walk(argument)
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str) and inner.value.startswith("bptt.")
    ]


def _edges() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(imports at load time, imports through bptt.lazy) between parts, by importing part."""
    eager: dict[str, set[str]] = {}
    lazy: dict[str, set[str]] = {}
    for path in FILES:
        tree = ast.parse(path.read_text(), filename=str(path))
        typing = _typing_only(tree)
        here = _part(path)
        for node in ast.walk(tree):
            for name in _imported(node):
                there = _part_of(name)
                if there not in (None, here) and id(node) not in typing:
                    eager.setdefault(here, set()).add(there)
            for name in _lazy_names(node):
                there = _part_of(name)
                if there not in (None, here):
                    lazy.setdefault(here, set()).add(there)
    return eager, lazy


def test_no_bptt_module_imports_another_from_inside_a_function():
    hidden = []
    for path in FILES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                for name in _imported(node):
                    if name == "bptt" or name.startswith("bptt."):
                        hidden.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {name}")
    assert hidden == []


def test_only_bptt_lazy_imports_by_name():
    """``importlib.import_module`` and ``__import__`` run in ``bptt.lazy`` alone (and in the data tasks, for
    the optional packages of the data extra), so every import of a bptt module is one the tests can read."""
    allowed = {Path("lazy.py"), Path("tasks/datasets/common.py")}
    by_name = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for path in FILES
        if path.relative_to(PACKAGE) not in allowed
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(("import_module", "__import__"))
    ]
    assert by_name == []


def test_the_engine_imports_nothing_from_the_layers():
    for path in sorted((PACKAGE / "engine").glob("*.py")):
        tree = ast.parse(path.read_text())
        names = [name for node in ast.walk(tree) for name in _imported(node)]
        assert not [n for n in names if n.startswith("bptt.modules")], path.name


def test_each_part_imports_only_the_parts_below_it():
    eager, lazy = _edges()
    assert set(MAY_IMPORT) == PARTS | {"bptt"}, "every part of the package has its line in MAY_IMPORT"
    reaching_up = {part: sorted(names - MAY_IMPORT[part]) for part, names in eager.items() if names - MAY_IMPORT[part]}
    assert reaching_up == {}
    assert lazy == LAZY


def test_the_map_of_imports_has_a_direction():
    """No cycle: following the parts each part may import never comes back to it."""
    order: list[str] = []
    left = dict(MAY_IMPORT)
    while left:
        ready = [part for part, below in left.items() if below <= set(order)]
        assert ready, f"a cycle among {sorted(left)}"
        order += sorted(ready)
        for part in ready:
            del left[part]


def _loaded_by(code: str) -> dict[str, list[str]]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'bptt' or m.startswith('bptt.')) + ['|'] +"
        " sorted(m for m in sys.modules if not m.startswith('bptt'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    names = json.loads(result.stdout.strip().splitlines()[-1])
    split = names.index("|")
    return {"bptt": names[:split], "other": names[split + 1 :]}


HEAVY = ("matplotlib", "sqlite3", "_sqlite3", "jinja2", "click", "rich", "tensorboard", "mlflow", "lightning")


def _heavy(loaded: list[str]) -> list[str]:
    return [m for m in loaded if m.split(".")[0] in HEAVY]


@pytest.mark.slow
def test_import_bptt_loads_the_layers_and_the_config_only():
    loaded = _loaded_by("import bptt")
    parts = sorted({_part_of(name) for name in loaded["bptt"]})
    assert parts == [
        "bptt",
        "cell_settings",
        "checks",
        "config",
        "engine",
        "lazy",
        "modules",
        "provenance",
        "registry",
        "tasks",
        "yamlfile",
    ]
    assert _heavy(loaded["other"]) == []


@pytest.mark.slow
def test_the_per_step_view_loads_neither_the_database_nor_the_training_loop():
    loaded = _loaded_by(
        "import torch, bptt\n"
        "from bptt.diagnostics import gradient_profile, memory_horizon\n"
        "model = torch.nn.Sequential(torch.nn.Linear(2, 2))\n"
        "layer = bptt.LSTM(2, 3)\n"
        "with bptt.record_gradients(layer) as rec:\n"
        "    layer(torch.randn(5, 1, 2))[0].sum().backward()\n"
        "watch = bptt.watch(torch.nn.LSTM(2, 3), every=1)\n"
        "bptt.diagnose\n"
    )
    parts = {_part_of(name) for name in loaded["bptt"]}
    assert not parts & {"store", "training", "build", "loading", "integrations", "sweeps", "report"}
    assert not [m for m in loaded["other"] if m in ("sqlite3", "matplotlib.pyplot")]


def test_lazy_names_load_on_first_use_and_are_listed():
    assert {"train", "diagnose", "watch", "Watch"} <= set(dir(bptt))
    assert bptt.train.__module__ == "bptt.training.loop"
    assert bptt.diagnose.__module__ == "bptt.diagnostics.diagnosis"
    assert bptt.watch(bptt.LSTM(2, 3), every=1).__class__ is bptt.Watch
    from bptt.diagnostics import RunOutcome, training_history

    assert RunOutcome.__module__ == "bptt.diagnostics.impacts"
    assert training_history.__module__ == "bptt.diagnostics.history"
    with pytest.raises(AttributeError, match="has no attribute 'nosuch'"):
        _ = bptt.nosuch


def test_every_file_reads_in_one_sitting():
    long = {str(p.relative_to(PACKAGE)): n for p in FILES if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_readme_layout_names_every_folder_of_the_package():
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    layout = readme[readme.index("- Layout:") :]
    layout = layout[: layout.index("\n- ", 1)]
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert [f for f in folders if f"`{f}/`" not in layout] == []
