"""Spring's flat property view, shared by the config server and its clients."""

from __future__ import annotations

from services.common.properties import (
    flatten,
    merge,
    resolve_placeholders,
    split_key,
    unflatten,
)


def test_flatten_follows_springs_yaml_processor() -> None:
    tree = {
        "server": {"port": 8080, "ssl": {"enabled": False}},
        "routes": [{"id": "a", "predicates": ["Path=/a/**"]}, {"id": "b"}],
        "empty-list": [],
        "empty-map": {},
        "nothing": None,
        "matrix": [[1, 2], [3]],
    }
    assert flatten(tree) == {
        "server.port": 8080,
        "server.ssl.enabled": False,
        "routes[0].id": "a",
        "routes[0].predicates[0]": "Path=/a/**",
        "routes[1].id": "b",
        "empty-list": "",
        "nothing": "",
        "matrix[0][0]": 1,
        "matrix[0][1]": 2,
        "matrix[1][0]": 3,
    }


def test_unflatten_inverts_flatten() -> None:
    tree = {"a": {"b": [{"c": 1}, {"c": 2, "d": [True]}]}, "e": "x", "m": [[1], [2, 3]]}
    assert unflatten(flatten(tree)) == tree


def test_unflatten_orders_sparse_indexes_and_prefers_parents() -> None:
    assert unflatten({"x[2]": "c", "x[0]": "a"}) == {"x": ["a", "c"]}
    assert unflatten({"a": 1, "a.b": 2}) == {"a": {"b": 2}}
    assert unflatten({"a.b": 2, "a": 1}) == {"a": {"b": 2}}


def test_split_key() -> None:
    assert split_key("a.b[10].c[0]") == ["a", "b", 10, "c", 0]


def test_merge_first_source_wins() -> None:
    assert merge([{"a": 1}, {"a": 2, "b": 3}]) == {"a": 1, "b": 3}


def test_merge_replaces_lists_whole() -> None:
    specific = {"routes[0].id": "only"}
    base = {"routes[0].id": "one", "routes[0].uri": "u1", "routes[1].id": "two", "other": 1}
    assert merge([specific, base]) == {"routes[0].id": "only", "other": 1}


def test_merge_keeps_a_base_list_nobody_overrides() -> None:
    assert merge([{"a": 1}, {"l[0]": "x", "l[1]": "y"}]) == {"a": 1, "l[0]": "x", "l[1]": "y"}


def test_placeholders() -> None:
    flat = {"host": "127.0.1.51", "port": 8888, "url": "http://${host}:${port}",
            "alias": "${port}", "fallback": "${missing:def}", "unknown": "${missing}",
            "loop": "${loop}"}
    resolved = resolve_placeholders(flat)
    assert resolved["url"] == "http://127.0.1.51:8888"
    assert resolved["alias"] == 8888
    assert resolved["fallback"] == "def"
    assert resolved["unknown"] == "${missing}"
    assert isinstance(resolved["loop"], str)  # a cycle ends, it does not hang
