"""The package's own shape: no hidden imports, the engine below the layers, files small enough to read."""

import ast
from pathlib import Path

import bptt

PACKAGE = Path(bptt.__file__).parent
FILES = sorted(PACKAGE.rglob("*.py"))


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return ["bptt" if node.level else (node.module or "")]
    return []


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


def test_the_engine_imports_nothing_from_the_layers():
    for path in sorted((PACKAGE / "engine").glob("*.py")):
        tree = ast.parse(path.read_text())
        names = [name for node in ast.walk(tree) for name in _imported(node)]
        assert not [n for n in names if n.startswith("bptt.modules")], path.name


def test_every_file_reads_in_one_sitting():
    long = {str(p.relative_to(PACKAGE)): n for p in FILES if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_readme_layout_names_every_folder_of_the_package():
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    layout = readme[readme.index("- Layout:") :]
    layout = layout[: layout.index("\n- ", 1)]
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert [f for f in folders if f"`{f}/`" not in layout] == []
