"""YAML loading that remembers where every node came from.

PyYAML's composer gives a node tree with a start mark (line, column) for each node; we build the
Python data from that tree and a map from each path (``("queues", 2, "sla")``) to its marks, for
values and for mapping keys.  Syntax errors and duplicate keys become ``Problem``s with
file:line:column instead of exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.campaign.problems import Path, Problem

__all__ = ["LoadedYaml", "Mark", "SourceMap", "load_yaml"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


def _mark(node: Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class SourceMap:
    """Path → position of the value (and, for mapping entries, of the key)."""

    def __init__(self, values: dict[Path, Mark] | None = None, keys: dict[Path, Mark] | None = None):
        self._values = values or {}
        self._keys = keys or {}

    def locate(self, path: Path, *, at_key: bool = False) -> Mark | None:
        """The mark of ``path``; if it does not exist, of its nearest existing ancestor."""
        if at_key and path in self._keys:
            return self._keys[path]
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self._values:
                return self._values[prefix]
        return None

    def has(self, path: Path) -> bool:
        return path in self._values


@dataclass(frozen=True)
class LoadedYaml:
    data: Any
    source: SourceMap
    problems: tuple[Problem, ...]


def _syntax_problem(exc: yaml.YAMLError, filename: str, text: str) -> Problem:
    hint = "check indentation and quoting; values with ':' or '#' need quotes"
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        message = f"YAML syntax error: unacceptable character #x{exc.character:04x}"
        return Problem("yaml_syntax", message, hint="remove control characters").located(
            filename, line, column
        )
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"YAML syntax error: {problem}"
    if context:
        message += f" ({context})"
    if mark is None:
        return Problem("yaml_syntax", message, hint=hint).located(filename, None, None)
    return Problem("yaml_syntax", message, hint=hint).located(filename, mark.line + 1, mark.column + 1)


def _duplicate_keys(node: Node, filename: str, path: Path, out: list[Problem], stack: set[int]) -> None:
    if id(node) in stack:
        return
    stack.add(id(node))
    if isinstance(node, MappingNode):
        seen: dict[tuple[str, str], Node] = {}
        for key, value in node.value:
            if key.tag == _MERGE_TAG:
                continue
            child: Path = (*path, str(key.value)) if isinstance(key, ScalarNode) else path
            if isinstance(key, ScalarNode):
                ident = (key.tag, key.value)
                if ident in seen:
                    first = _mark(seen[ident])
                    mark = _mark(key)
                    out.append(
                        Problem(
                            "duplicate_key",
                            f"duplicate key {key.value!r} (first at line {first.line})",
                            child,
                            hint="YAML keeps only the last one; remove or merge the duplicate",
                            at_key=True,
                        ).located(filename, mark.line, mark.column)
                    )
                else:
                    seen[ident] = key
            _duplicate_keys(value, filename, child, out, stack)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _duplicate_keys(item, filename, (*path, index), out, stack)
    stack.discard(id(node))


def _record(
    node: Node,
    loader: yaml.SafeLoader,
    path: Path,
    values: dict[Path, Mark],
    keys: dict[Path, Mark],
    stack: set[int],
) -> None:
    values[path] = _mark(node)
    if id(node) in stack:
        return
    stack.add(id(node))
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                continue
            child = (*path, key)
            keys[child] = _mark(key_node)
            _record(value_node, loader, child, values, keys, stack)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _record(item, loader, (*path, index), values, keys, stack)
    stack.discard(id(node))


class _Loader(yaml.SafeLoader):
    """The safe loader, except that an impossible date (``2026-13-01``) stays text for the schema."""


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def load_yaml(text: str, filename: str = "<manifest>") -> LoadedYaml:
    """Parse one YAML document with the safe loader, keeping positions and reporting problems."""
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # unprintable characters are refused before parsing starts
        return LoadedYaml(None, SourceMap(), (_syntax_problem(exc, filename, text),))
    problems: list[Problem] = []
    try:
        node = loader.get_single_node()
        if node is None:
            return LoadedYaml(None, SourceMap(), ())
        _duplicate_keys(node, filename, (), problems, set())
        data = loader.construct_document(node)  # also flattens '<<' merge keys in place
        values: dict[Path, Mark] = {}
        keys: dict[Path, Mark] = {}
        _record(node, loader, (), values, keys, set())
    except yaml.YAMLError as exc:
        return LoadedYaml(None, SourceMap(), (_syntax_problem(exc, filename, text),))
    finally:
        loader.dispose()
    return LoadedYaml(data, SourceMap(values, keys), tuple(problems))
