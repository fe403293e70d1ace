"""Route compilation and matching, StripPrefix, the public allow-list and settings parsing."""

from __future__ import annotations

from typing import Any

import pytest

from services.gateway.instances import Instance
from services.gateway.routes import PathMatcher, compile_routes, parse_target, strip_prefix
from services.gateway.settings import GatewaySettings, SettingsError, from_config, parse_duration


def config(routes: list[dict[str, Any]], **gateway: Any) -> GatewaySettings:
    return from_config({"spring": {"cloud": {"gateway": {"routes": routes}}}, "gateway": gateway})


@pytest.mark.parametrize(("pattern", "path", "expected"), [
    ("/api/users/**", "/api/users", True),
    ("/api/users/**", "/api/users/", True),
    ("/api/users/**", "/api/users/42/orders", True),
    ("/api/users/**", "/api/usersx", False),
    ("/api/users/**", "/api", False),
    ("/api/users", "/api/users", True),
    ("/api/users", "/api/users/1", False),
    ("/api/users/*", "/api/users/1", True),
    ("/api/users/*", "/api/users/1/2", False),
    ("/api/users/{id}/orders", "/api/users/7/orders", True),
    ("/api/users/{id}/orders", "/api/users//orders", False),
    ("/api/*.json", "/api/a.json", True),
    ("/api/?", "/api/x", True),
    ("/api/?", "/api/xy", False),
    ("/api/{id}/**", "/api/7", True),
    ("/api/{id}/**", "/api/7/x/y", True),
    ("/**", "/anything/at/all", True),
])
def test_path_patterns(pattern: str, path: str, expected: bool) -> None:
    assert PathMatcher([pattern]).matches(path) is expected


def test_double_star_only_at_the_end() -> None:
    with pytest.raises(SettingsError, match=r"\*\*"):
        PathMatcher(["/a/**/b"])


@pytest.mark.parametrize(("path", "parts", "expected"), [
    (b"/api/users/42", 1, b"/users/42"),
    (b"/api/users/42", 2, b"/42"),
    (b"/api/users/", 2, b"/"),
    (b"/api", 1, b"/"),
    (b"/api", 3, b"/"),
    (b"/api/users/42", 0, b"/api/users/42"),
])
def test_strip_prefix(path: bytes, parts: int, expected: bytes) -> None:
    assert strip_prefix(path, parts) == expected


def test_first_matching_route_wins_in_declaration_order() -> None:
    table = compile_routes(config([
        {"id": "general", "uri": "lb://catalog", "predicates": ["Path=/api/**"]},
        {"id": "users", "uri": "lb://user-service", "predicates": ["Path=/api/users/**"]},
    ]))
    route = table.match(b"GET", "/api/users/1")
    assert route is not None and route.id == "general"  # first match, not longest


def test_order_puts_a_route_first() -> None:
    table = compile_routes(config([
        {"id": "general", "uri": "lb://catalog", "predicates": ["Path=/api/**"]},
        {"id": "users", "uri": "lb://user-service", "predicates": ["Path=/api/users/**"],
         "order": -1},
    ]))
    route = table.match(b"GET", "/api/users/1")
    assert route is not None and route.id == "users"


def test_several_patterns_and_methods() -> None:
    table = compile_routes(config([
        {"id": "users", "uri": "lb://user-service",
         "predicates": ["Path=/api/users/**,/api/auth/**", "Method=GET,POST"],
         "filters": ["StripPrefix=1"]},
    ]))
    assert table.match(b"POST", "/api/auth/login") is not None
    assert table.match(b"GET", "/api/users/1") is not None
    assert table.match(b"DELETE", "/api/users/1") is None
    assert table.match(b"GET", "/api/products") is None
    route = table.match(b"GET", "/api/users/1")
    assert route is not None and route.strip == 1 and route.target.app == "USER-SERVICE"


def test_spring_long_form_predicates_and_filters() -> None:
    table = compile_routes(config([
        {"id": "products", "uri": "http://127.0.1.71:8082",
         "predicates": [{"name": "Path", "args": {"patterns": ["/api/products/**"]}}],
         "filters": [{"name": "StripPrefix", "args": {"parts": "2"}},
                     {"name": "RequestRateLimiter",
                      "args": {"redis-rate-limiter.replenishRate": "10",
                               "redis-rate-limiter.burstCapacity": "20"}}],
         "metadata": {"response-timeout": 2000, "connect-timeout": "250ms"}},
    ]))
    route = table.routes[0]
    assert route.strip == 2
    assert route.target.instance == Instance("127.0.1.71:8082", "127.0.1.71", 8082)
    assert route.rate_limit is not None
    assert (route.rate_limit.replenish_rate, route.rate_limit.burst_capacity) == (10.0, 20)
    assert route.response_timeout_s == 2.0 and route.connect_timeout_s == 0.25
    assert b"x-ratelimit-burst-capacity: 20\r\n" in route.rate_limit_lines


def test_public_allow_list_by_method_and_pattern() -> None:
    table = compile_routes(config(
        [{"id": "all", "uri": "lb://x", "predicates": ["Path=/**"]}],
        public=["POST /api/users/signup", "GET /api/products/**", "/api/health/**"]))
    assert table.is_public(b"POST", "/api/users/signup")
    assert not table.is_public(b"GET", "/api/users/signup")
    assert table.is_public(b"GET", "/api/products/7/reviews")
    assert not table.is_public(b"POST", "/api/products/7/reviews")
    assert table.is_public(b"DELETE", "/api/health/x")
    assert not table.is_public(b"GET", "/api/orders")


@pytest.mark.parametrize(("uri", "problem"), [
    ("ftp://x", "scheme"),
    ("lb://", "application"),
    ("http://host:80/prefix", "path"),
])
def test_bad_uris(uri: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        parse_target(uri)


@pytest.mark.parametrize(("route", "problem"), [
    ({"uri": "lb://x", "predicates": ["Path=/a/**"]}, "id"),
    ({"id": "a", "uri": "lb://x", "predicates": ["Host=x.com"]}, "unsupported predicate"),
    ({"id": "a", "uri": "lb://x", "predicates": ["Method=GET"]}, "Path predicate"),
    ({"id": "a", "uri": "lb://x", "predicates": ["Path=api"]}, "start with"),
    ({"id": "a", "uri": "lb://x", "predicates": ["Path=/a"], "filters": ["AddHeader=x"]},
     "unsupported filter"),
    ({"id": "a", "uri": "lb://x", "predicates": ["Path=/a"], "filters": ["StripPrefix=x"]},
     "StripPrefix"),
])
def test_bad_routes_are_refused_with_the_key(route: dict[str, Any], problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        compile_routes(config([route]))


def test_duplicate_route_ids_refused() -> None:
    route = {"id": "a", "uri": "lb://x", "predicates": ["Path=/a"]}
    with pytest.raises(SettingsError, match="duplicate"):
        config([route, route])


def test_settings_relaxed_keys_and_defaults() -> None:
    settings = from_config({
        "spring": {"cloud": {"gateway": {
            "httpclient": {"connect-timeout": 500, "response-timeout": "3s"},
            "routes": [{"id": "a", "uri": "lb://x", "predicates": ["Path=/a"]}]}}},
        "gateway": {"rate_limit": {"replenishRate": 5, "burst-capacity": 10},
                    "circuitBreaker": {"window-size": 10, "minimum_calls": 4, "open-wait": "2s"},
                    "colour": "blue", "redis": {"sentinels": "127.0.1.22:26379,127.0.2.22:26379"},
                    "trusted-proxy-hops": 1},
    })
    assert settings.connect_timeout_s == 0.5 and settings.response_timeout_s == 3.0
    assert settings.default_rate_limit is not None
    assert settings.default_rate_limit.burst_capacity == 10
    assert settings.breaker.window_size == 10 and settings.breaker.open_wait_s == 2.0
    assert settings.colour == "blue" and settings.trusted_proxy_hops == 1
    assert settings.redis.sentinels == (("127.0.1.22", 26379), ("127.0.2.22", 26379))
    assert compile_routes(settings).routes[0].rate_limit == settings.default_rate_limit


def test_flat_list_indexes_from_unflattening_are_lists() -> None:
    settings = from_config({"spring": {"cloud": {"gateway": {"routes": {
        "0": {"id": "a", "uri": "lb://x", "predicates": {"0": "Path=/a/**"}},
        "1": {"id": "b", "uri": "lb://y", "predicates": {"0": "Path=/b/**"}}}}}}})
    assert [route.id for route in settings.routes] == ["a", "b"]


@pytest.mark.parametrize(("value", "seconds"), [
    (250, 0.25), ("250ms", 0.25), ("2s", 2.0), ("1m", 60.0), ("PT1.5S", 1.5), ("PT2M", 120.0),
])
def test_durations(value: Any, seconds: float) -> None:
    assert parse_duration(value, "x") == pytest.approx(seconds)
