"""YAML read defensively: config files, sweep specs and ``--set`` values.

Settings files are small mappings, so a document is refused (``YAMLRefused``, a
``ValueError`` whose message says why) when it could only be an accident or an
attack:

* its aliases (``*name``) expand it to much more than it holds: a 1 KB "billion
  laughs" file names 10^9 values, and anything that walks or prints them (an
  error message's repr) runs out of time and memory;
* it nests deeper than ``MAX_DEPTH`` levels (aliases counted where they expand),
  which would otherwise end in Python's recursion limit;
* an alias refers to the value it is part of (a cycle);
* a mapping gives the same key twice (YAML requires keys to be unique; PyYAML
  would keep the last one without a word).

The checks run on the parser's events and the composed node graph, before any
Python object is built, in time linear in the document's size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from bptt.checks import brief

#: Deeper than any settings file (a spec's grid of lists sits 4 levels down).
MAX_DEPTH = 64
#: How much larger than the text itself its aliases may make a document (in characters of its values).
MAX_GROWTH = 100_000

_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present: fast on large values
_MERGE = "tag:yaml.org,2002:merge"


class YAMLRefused(ValueError):
    """A YAML document refused before it is built: the message says why, in one line."""


class _Loader(_BASE):  # type: ignore[misc, valid-type]
    """The safe loader, refusing a mapping that gives a key twice (a ``<<`` merge may still be overridden)."""

    def construct_mapping(self, node: Node, deep: bool = False) -> Any:
        if isinstance(node, MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE or not isinstance(key_node, ScalarNode):
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # unhashable: the safe loader refuses it in its own words
                    continue
                if duplicate:
                    raise YAMLRefused(f"the key {brief(key)} is given twice (line {key_node.start_mark.line + 1})")
        return super().construct_mapping(node, deep)


def _check_depth(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_BASE):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                where = "" if mark is None else f" (line {mark.line + 1})"
                raise YAMLRefused(f"it nests more than {MAX_DEPTH} levels deep{where}")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_expansion(root: Node, limit: int) -> None:
    """Refuse a node graph whose aliases expand it past ``limit`` characters, past ``MAX_DEPTH`` levels,
    or into a cycle. Each node is measured once (an alias reuses its anchor's numbers)."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, depth)
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if isinstance(node, ScalarNode):
            measured[key] = (len(node.value) + 1, 0)
            continue
        children = [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else list(node.value)
        if children_done:
            on_path.discard(key)
            size = 1 + sum(measured[id(child)][0] for child in children)
            depth = 1 + max((measured[id(child)][1] for child in children), default=0)
            if depth > MAX_DEPTH:
                raise YAMLRefused(f"its aliases nest it more than {MAX_DEPTH} levels deep")
            if size > limit:
                raise YAMLRefused(f"its aliases (*name) expand it past {limit:,} characters; write the values out")
            measured[key] = (size, depth)
            continue
        if key in measured:
            continue
        if key in on_path:
            raise YAMLRefused(f"an alias refers to the value it is part of (line {node.start_mark.line + 1})")
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise YAMLRefused(f"an alias refers to the value it is part of (line {child.start_mark.line + 1})")
            if id(child) not in measured:
                stack.append((child, False))


def load(text: str) -> Any:
    """The value of one YAML document, built by the safe loader once the checks above pass.

    Raises ``YAMLRefused`` for a document the module docstring refuses, and ``yaml.YAMLError``
    for one that does not parse.
    """
    _check_depth(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, 2 * len(text) + MAX_GROWTH)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_mapping(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML file holds ({} for an empty one), read with ``load``; ``YAMLRefused`` names
    what is wrong: a missing or unreadable file, text that is not UTF-8, malformed or refused YAML,
    or a document that is not a mapping."""
    path = Path(path)
    if not path.exists():
        raise YAMLRefused(f"file not found: {path}")
    if not path.is_file():
        raise YAMLRefused(f"not a regular file: {path}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise YAMLRefused(f"cannot read {path} ({error.strerror})") from None
    except UnicodeDecodeError:
        raise YAMLRefused(f"{path} is not UTF-8 text") from None
    try:
        data = load(text)
    except YAMLRefused as error:
        raise YAMLRefused(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise YAMLRefused(f"malformed YAML in {path}{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise YAMLRefused(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    return data
