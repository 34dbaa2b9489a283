"""Read one config file safely, within limits, into plain dicts and lists (placeholders kept for later).

YAML is parsed with PyYAML's safe loader only (a ``!!python/...`` tag is refused), after two cheap checks on
what the parser produces, so that a hostile or broken file is refused quickly with one line and flat memory:
the nesting depth is counted on the event stream before any node is built (5000 levels never reach Python's
recursion limit), and the size the tree would have once every alias is expanded is counted on the node graph
with a memo per node (a "billion laughs" file is refused without expanding it). JSON goes through ``json``.
Keys that make mmengine load code (``custom_imports``, scopes) are refused at any level.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from sslreg.placeholders import Placeholder
from sslreg.problems import ConfigProblems, describe_type, format_loc, refuse

MAX_BYTES = 1 << 20  # 1 MiB per file
MAX_DEPTH = 64  # nested mappings/lists, aliases included
MAX_NODES = 1_000_000  # values in one file once aliases are expanded (a 1 MiB file has fewer without them)
#: mmengine keys that import or execute code when a config is loaded or built; sslreg refuses them.
CODE_KEYS = {
    "custom_imports": "mmengine imports the Python modules it names",
    "default_scope": "mmengine imports the package of a registry scope",
    "_scope_": "mmengine imports the package of a registry scope",
}
_BASE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NESTING = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_NESTING_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class _Loader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader that also refuses duplicate and non-string keys (a silently dropped value)."""

    def construct_undefined(self, node: yaml.Node) -> Any:
        raise yaml.constructor.ConstructorError(
            None, None, f"refusing unsafe YAML tag {node.tag!r}; only plain YAML is accepted", node.start_mark
        )

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key_node.value!r} (also on line {seen[key_node.value]});"
                        " one of the two values would be silently dropped",
                        key_node.start_mark,
                    )
                seen[key_node.value] = key_node.start_mark.line + 1
        mapping = super().construct_mapping(node, deep)
        for key in mapping:
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is not a string; quote it", node.start_mark
                )
        return mapping


_Loader.add_constructor(None, _Loader.construct_undefined)  # the table holds functions: register the override


def _line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_depth(text: str, shown: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH, counted on the event stream (no node is built yet)."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, _NESTING):
            depth += 1
            if depth > MAX_DEPTH:
                raise refuse(f"nested deeper than {MAX_DEPTH} levels; refusing it", shown, _line(event.start_mark))
        elif isinstance(event, _NESTING_END):
            depth -= 1


def _check_graph(root: yaml.Node, shown: str) -> None:
    """Refuse recursive aliases, and trees that alias expansion would make too big or too deep.

    One iterative pass over the node graph; sizes and depths are memoised per node, so shared (aliased) nodes
    are counted as often as they would be copied without being copied.
    """
    done: dict[int, tuple[int, int]] = {}  # id(collection node) -> (expanded size, depth)
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if isinstance(node, yaml.ScalarNode):
            done[key] = (1, 1)
        elif finished:
            open_nodes.discard(key)
            size, depth = 1, 1
            for child in _children(node):
                child_size, child_depth = done[id(child)]
                size += child_size
                depth = max(depth, child_depth + 1)
            if size > MAX_NODES:
                raise refuse(
                    f"expands to more than {MAX_NODES:,} values (through aliases); refusing it",
                    shown,
                    _line(node.start_mark),
                )
            if depth > MAX_DEPTH:
                raise refuse(
                    f"nested deeper than {MAX_DEPTH} levels (through aliases); refusing it",
                    shown,
                    _line(node.start_mark),
                )
            done[key] = (size, depth)
        elif key not in done:
            if key in open_nodes:
                raise refuse("an alias refers to a value that contains it; refusing it", shown, _line(node.start_mark))
            open_nodes.add(key)
            stack.append((node, True))
            for child in _children(node):
                if isinstance(child, yaml.ScalarNode):
                    done[id(child)] = (1, 1)
                elif id(child) not in done:
                    stack.append((child, False))


def parse_yaml(text: str, shown: str) -> Any:
    """The value of one YAML document, parsed safely within the limits; ConfigProblems naming file and line."""
    try:
        _check_depth(text, shown)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_graph(node, shown)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except ConfigProblems:
        raise
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        if isinstance(error, yaml.constructor.ConstructorError) and error.problem:
            raise refuse(error.problem, shown, _line(mark)) from None
        problem = error.problem or error.context or "cannot parse"
        raise refuse(f"invalid YAML: {problem}", where) from None
    except yaml.reader.ReaderError as error:  # a character YAML does not allow
        line = text.count("\n", 0, error.position) + 1
        char = chr(error.character) if isinstance(error.character, int) else error.character
        raise refuse(f"invalid YAML: {error.reason} (character {char!r})", shown, line) from None
    except yaml.YAMLError as error:
        raise refuse(f"invalid YAML: {str(error).splitlines()[0]}", shown) from None
    except ValueError as error:  # e.g. an integer longer than Python's digit limit
        raise refuse(f"a value cannot be read: {str(error).split(';')[0]}", shown) from None


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def parse_json(text: str, shown: str) -> Any:
    """The value of a JSON document, within the same depth limit, duplicate keys refused."""
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        bracket = token.group(0)
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, token.start()) + 1
                raise refuse(f"nested deeper than {MAX_DEPTH} levels; refusing it", shown, line)
        elif bracket in "]}":
            depth -= 1

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        for key, value in items:
            if key in mapping:
                raise refuse(f"duplicate key {key!r}; one of the two values would be silently dropped", shown)
            mapping[key] = value
        return mapping

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except ConfigProblems:
        raise
    except json.JSONDecodeError as error:
        raise refuse(f"invalid JSON: {error.msg}", f"{shown}:{error.lineno}:{error.colno}") from None
    except (ValueError, RecursionError) as error:
        raise refuse(f"a value cannot be read: {str(error).split(';')[0]}", shown) from None


def read_text(path: Path, shown: str) -> str:
    """The file's text: a regular file of at most MAX_BYTES, UTF-8 (a BOM is allowed)."""
    if path.is_dir():
        raise refuse("is a folder, not a config file", shown)
    if not path.exists():
        raise refuse("no such config file", shown)
    if not path.is_file():
        raise refuse("is not a regular file", shown)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise refuse(f"cannot read: {error.strerror or error}", shown) from None
    if len(data) > MAX_BYTES:
        raise refuse(f"larger than {MAX_BYTES // (1 << 20)} MiB, the limit for a config file", shown)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise refuse(f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})", shown, line) from None


def plain_tree(value: Any, file: Path, shown: str, path: tuple[Any, ...] = (), placeholders: bool = True) -> Any:
    """A fresh tree of dicts and lists (aliases copied apart), strings with ``{{`` as Placeholders (if asked).

    Refuses mmengine's code-loading keys at any level, naming the file and the key's dotted path.
    """
    if isinstance(value, dict):
        tree = {}
        for key, item in value.items():
            if key in CODE_KEYS:
                dotted = format_loc((*path, key))
                raise refuse(
                    f"refusing {key!r}: {CODE_KEYS[key]}; sslreg configs cannot load code"
                    " (components come from installed plugins)",
                    shown,
                    path=dotted,
                )
            tree[key] = plain_tree(item, file, shown, (*path, key), placeholders)
        return tree
    if isinstance(value, (list, tuple)):
        return [plain_tree(item, file, shown, (*path, index), placeholders) for index, item in enumerate(value)]
    if placeholders and isinstance(value, str) and "{{" in value:
        return Placeholder(value, file, shown)
    return value


def read_python(path: Path, shown: str) -> Any:
    """A ``.py`` config through mmengine (it executes the file, by design; the caller asked for it)."""
    from mmengine.config import Config

    try:
        return Config.fromfile(str(path), import_custom_modules=False).to_dict()
    except Exception as error:  # noqa: BLE001 - running user code fails in any way; report it as one line
        raise refuse(f"cannot load the Python config: {type(error).__name__}: {error}", shown) from None


def read_file(path: Path, shown: str, allow_python: bool) -> dict[str, Any]:
    """One config file as a mapping (placeholders kept), refused with one line where it is not safe or not sane."""
    if path.suffix == ".py":
        if not allow_python:
            raise refuse(
                "Python configs execute code; pass --allow-python-config"
                " (or set SSLREG_ALLOW_PYTHON_CONFIG=1) to trust it",
                shown,
            )
        if path.is_dir() or not path.is_file():
            read_text(path, shown)  # the same refusal as for any other file
        data = read_python(path, shown)
    elif path.suffix in (".yaml", ".yml", ".json"):
        text = read_text(path, shown)
        data = parse_json(text, shown) if path.suffix == ".json" else parse_yaml(text, shown)
    elif path.is_dir():
        raise refuse("is a folder, not a config file", shown)
    else:
        raise refuse(f"unsupported config type {path.suffix!r} (use .yaml, .yml or .json)", shown)
    if data is None:
        raise refuse("empty config; expected a mapping of options", shown)
    if not isinstance(data, dict):
        raise refuse(f"expected a mapping of options at the top level (got {describe_type(data)})", shown)
    try:
        return plain_tree(data, path, shown)
    except RecursionError:  # only a Python config can nest this deep
        raise refuse(f"nested deeper than {MAX_DEPTH} levels; refusing it", shown) from None


def parse_value(text: str, where: str) -> Any:
    """A ``--set`` value read as YAML (numbers, lists, null), safely and within the limits.

    Text that is not valid YAML stays a string; a tag or a limit is refused.
    """
    if not text.strip():
        return ""
    try:
        return parse_yaml(text, where)
    except ConfigProblems as error:
        if error.records[0].message.startswith("invalid YAML"):
            return text
        raise


__all__ = ["CODE_KEYS", "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "parse_value", "read_file"]
