"""Spring's flat property view of configuration: dotted keys, ``[n]`` list indexes, precedence.

Spring Cloud Config hands configuration over as *flat* property sources (``a.b[0].c = 1``), most
specific first. The config server flattens YAML into that shape and the clients fold it back into
a tree, so both sides share these few functions and agree on the details that matter:

- flattening follows Spring's ``YamlProcessor``: nested maps join with ``.``, list items get
  ``[n]``, an empty list becomes ``""``, a null becomes ``""``, an empty map disappears;
- merging follows Spring Boot's binder: the first source that has a key wins, and a list is
  taken whole from the first source that defines any of its items (lists are replaced, never
  merged item by item);
- ``${key}`` / ``${key:default}`` placeholders resolve against the merged view, as the plain-file
  endpoints of the config server do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# "a.b[0].c" -> ["a", "b", 0, "c"]; a key that is only "[0]" continues its parent's path.
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_PLACEHOLDER = re.compile(r"\$\{([^{}]+)\}")
# Deep enough for any sane chain of ${a} -> ${b} -> ...; a cycle stops here instead of looping.
_MAX_PLACEHOLDER_DEPTH = 16

FlatProperties = dict[str, Any]


def flatten(tree: Mapping[str, Any]) -> FlatProperties:
    """A nested mapping as Spring's flat properties, keys in document order."""
    flat: FlatProperties = {}
    _flatten_into(flat, tree, "")
    return flat


def _flatten_into(flat: FlatProperties, value: Any, path: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = _key_text(key)
            _flatten_into(flat, item, f"{path}.{name}" if path else name)
    elif isinstance(value, list | tuple):
        if not value:
            flat[path] = ""
        for index, item in enumerate(value):
            _flatten_into(flat, item, f"{path}[{index}]")
    else:
        flat[path] = "" if value is None else value


def _key_text(key: Any) -> str:
    """A YAML key as Spring spells it: ``on:`` parses as a boolean and reads back as "true"."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def split_key(key: str) -> list[str | int]:
    """``"a.b[0].c"`` as path segments ``["a", "b", 0, "c"]`` (list indexes as ints)."""
    return [int(index) if index else name for name, index in _SEGMENT.findall(key)]


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat properties back into a tree; ``[n]`` segments become lists ordered by index.

    Indexes need not be contiguous (a list defined as ``x[0]`` and ``x[2]`` becomes two items),
    as Spring's binder also tolerates. When a key is both a value and a parent (``a = 1`` and
    ``a.b = 2``), the parent wins, since a scalar cannot hold children.
    """
    root: dict[Any, Any] = {}
    for key, value in flat.items():
        segments = split_key(key)
        if not segments:
            continue
        node = root
        for segment in segments[:-1]:
            child = node.get(segment)
            if not isinstance(child, dict):
                child = {}
                node[segment] = child
            node = child
        last = segments[-1]
        if not isinstance(node.get(last), dict):
            node[last] = value
    result = _lists_from_indexes(root)
    assert isinstance(result, dict)
    return result


def _lists_from_indexes(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(key, int) for key in node):
        return [_lists_from_indexes(node[index]) for index in sorted(node)]
    return {str(key): _lists_from_indexes(value) for key, value in node.items()}


def _list_prefixes(key: str) -> list[str]:
    """Every list a key lives in: ``"a.b[0].c[1]"`` -> ``["a.b", "a.b[0].c"]``."""
    return [key[:match.start()] for match in re.finditer(r"\[\d+\]", key)]


def merge(sources: Iterable[Mapping[str, Any]]) -> FlatProperties:
    """Merge flat sources given most specific first into one flat view.

    A key keeps the value of the first source that has it. A list belongs to the first source
    that has any of its items: lower sources' items of that list are dropped, so a profile file
    that lists two routes replaces the five of the base file instead of overwriting two of them.
    """
    merged: FlatProperties = {}
    claimed_lists: set[str] = set()
    for source in sources:
        lists_here: set[str] = set()
        for key, value in source.items():
            prefixes = _list_prefixes(key)
            if any(prefix in claimed_lists for prefix in prefixes):
                continue
            lists_here.update(prefixes)
            merged.setdefault(key, value)
        claimed_lists |= lists_here
    return merged


def resolve_placeholders(flat: Mapping[str, Any]) -> FlatProperties:
    """Replace ``${key}`` and ``${key:default}`` in string values using the same properties.

    An unresolvable placeholder without a default is left as written, as Spring's
    ``ignoreUnresolvablePlaceholders`` does for the config server's plain-file endpoints.
    """
    return {key: _resolve(value, flat, 0) for key, value in flat.items()}


def _resolve(value: Any, flat: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(value, str) or "${" not in value or depth >= _MAX_PLACEHOLDER_DEPTH:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, has_default, default = match.group(1).partition(":")
        if name in flat:
            return str(_resolve(flat[name], flat, depth + 1))
        return default if has_default else match.group(0)

    whole = _PLACEHOLDER.fullmatch(value)
    if whole is not None:
        name = whole.group(1).partition(":")[0]
        if name in flat:  # "${port}" alone keeps the referenced value's type (an int stays int)
            return _resolve(flat[name], flat, depth + 1)
    return _PLACEHOLDER.sub(substitute, value)
