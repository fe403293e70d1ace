"""The route table, compiled once per settings version so matching a request is cheap.

Semantics (Spring Cloud Gateway's): routes are tried in ascending ``order``, then in the order
they are declared, and the **first** route whose predicates all match wins — not the longest
pattern. Put specific routes before general ones (or give them a lower ``order``).

Path patterns are the PathPattern subset services use: literal segments, ``*`` and ``?`` inside
one segment, ``{name}`` for one whole segment, and a trailing ``/**`` for "this path and
anything below it" (``/api/users/**`` matches ``/api/users`` and ``/api/users/42/orders``).
Most patterns are a literal prefix followed by ``/**``; they compile to a ``startswith`` check,
the rest to one regular expression per predicate.

The public allow-list uses the same patterns, prefixed by an optional method:
``"POST /api/users/signup"``, ``"GET /api/products/**"``, ``"/api/health/**"`` (any method).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from services.gateway.instances import Instance
from services.gateway.settings import (
    BreakerSettings,
    GatewaySettings,
    RateLimitSettings,
    RouteSettings,
    SettingsError,
    parse_duration,
    rate_limit_from,
)

_SEGMENT_VARIABLE = re.compile(r"\{[^/{}]+\}")


def _segment_regex(segment: str) -> str:
    if _SEGMENT_VARIABLE.fullmatch(segment):
        return "[^/]+"
    out = []
    for char in segment:
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _pattern_regex(pattern: str) -> str:
    body, catch_all = (pattern[:-3], True) if pattern.endswith("/**") else (pattern, False)
    segments = body.split("/")[1:] if body else []
    if any("**" in segment for segment in segments):
        raise SettingsError(f"'**' is only allowed as the last segment: {pattern!r}")
    regex = "".join("/" + _segment_regex(segment) for segment in segments)
    return regex + ("(?:/.*)?" if catch_all else "")


def _is_literal(text: str) -> bool:
    return not any(char in text for char in "*?{}")


class PathMatcher:
    """Matches a request path against a set of patterns (any one matching is enough)."""

    __slots__ = ("_exact", "_prefixes", "_regex", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        exact: set[str] = set()
        prefixes: list[str] = []
        complex_patterns: list[str] = []
        for pattern in self.patterns:
            if pattern == "/**":
                prefixes.append("/")
            elif pattern.endswith("/**") and _is_literal(pattern[:-3]):
                exact.add(pattern[:-3])
                prefixes.append(pattern[:-2])  # "/api/users/"
            elif _is_literal(pattern):
                exact.add(pattern)
            else:
                complex_patterns.append(_pattern_regex(pattern))
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._regex = (re.compile("|".join(f"(?:{p})" for p in complex_patterns))
                       if complex_patterns else None)

    def matches(self, path: str) -> bool:
        if path in self._exact or path.startswith(self._prefixes):
            return True
        return self._regex is not None and self._regex.fullmatch(path) is not None


def strip_prefix(path: bytes, parts: int) -> bytes:
    """Spring's StripPrefix=N: drop the first N path segments (``/api/users/1`` -> ``/users/1``)."""
    if parts <= 0:
        return path
    pieces = path.split(b"/", parts + 1)
    if len(pieces) <= parts + 1:
        return b"/"
    return b"/" + pieces[parts + 1]


@dataclass(frozen=True)
class Target:
    """Where a route sends requests: an application in discovery, or one fixed address."""

    app: str | None = None
    instance: Instance | None = None


def parse_target(uri: str) -> Target:
    """``lb://user-service`` (discovery, app names are case-insensitive) or ``http://host:port``."""
    parts = urlsplit(uri)
    if parts.scheme == "lb":
        if not parts.hostname:
            raise SettingsError(f"route uri {uri!r}: missing application name")
        return Target(app=parts.netloc.upper())
    if parts.scheme == "http":
        if not parts.hostname:
            raise SettingsError(f"route uri {uri!r}: missing host")
        if parts.path not in ("", "/"):
            raise SettingsError(f"route uri {uri!r}: a path is not supported; use filters")
        port = parts.port or 80
        return Target(instance=Instance(f"{parts.hostname}:{port}", parts.hostname, port))
    raise SettingsError(f"route uri {uri!r}: scheme must be lb:// or http://")


def rate_limit_headers(limit: RateLimitSettings) -> bytes:
    """The fixed X-RateLimit-* headers Spring's RedisRateLimiter sends (Remaining is per call)."""
    rate = limit.replenish_rate
    rate_text = str(int(rate)) if rate == int(rate) else repr(rate)
    return (f"x-ratelimit-replenish-rate: {rate_text}\r\n"
            f"x-ratelimit-burst-capacity: {limit.burst_capacity}\r\n"
            f"x-ratelimit-requested-tokens: {limit.requested_tokens}\r\n").encode()


class Route:
    """A compiled route: what it matches, where it goes, and how it is protected."""

    __slots__ = ("breaker", "connect_timeout_s", "id", "methods", "paths", "pool", "rate_limit",
                 "rate_limit_lines", "response_timeout_s", "retries", "strip", "target", "uri")

    def __init__(self, spec: RouteSettings, settings: GatewaySettings) -> None:
        self.id = spec.id
        self.uri = spec.uri
        # The upstream pool of a fixed-address route, found once (set by the proxy).
        self.pool: Any = None
        self.target = parse_target(spec.uri)
        self.paths = PathMatcher(p for pred in spec.predicates if pred.name == "Path"
                                 for p in pred.values)
        methods = [m.upper().encode() for pred in spec.predicates if pred.name == "Method"
                   for m in pred.values]
        self.methods: frozenset[bytes] | None = frozenset(methods) if methods else None
        self.strip = 0
        self.rate_limit: RateLimitSettings | None = settings.default_rate_limit
        self.retries = settings.retries
        self.breaker: BreakerSettings = settings.breaker
        where = f"route {spec.id}"
        for spec_filter in spec.filters:
            name = spec_filter.name.lower()
            args = dict(spec_filter.args)
            if name == "stripprefix":
                value = args.get("parts", args.get("_genkey_0", "1"))
                if not value.isdigit():
                    raise SettingsError(f"{where}: StripPrefix needs a number, got {value!r}")
                self.strip = int(value)
            elif name == "requestratelimiter":
                self.rate_limit = rate_limit_from(args, f"{where}.RequestRateLimiter")
            elif name == "retry":
                value = args.get("retries", args.get("_genkey_0", str(settings.retries)))
                if not value.isdigit():
                    raise SettingsError(f"{where}: Retry needs a number, got {value!r}")
                self.retries = int(value)
            elif name == "circuitbreaker":
                pass  # always on; tuning is in gateway.circuit-breaker
            else:
                raise SettingsError(f"{where}: unsupported filter {spec_filter.name!r}")
        self.rate_limit_lines = rate_limit_headers(self.rate_limit) if self.rate_limit else b""
        meta = spec.metadata
        self.connect_timeout_s = (parse_duration(meta["connecttimeout"], f"{where}.connect-timeout")
                                  if "connecttimeout" in meta else settings.connect_timeout_s)
        self.response_timeout_s = (
            parse_duration(meta["responsetimeout"], f"{where}.response-timeout")
            if "responsetimeout" in meta else settings.response_timeout_s)

    def matches(self, method: bytes, path: str) -> bool:
        return (self.methods is None or method in self.methods) and self.paths.matches(path)


class PublicRule:
    """One allow-list entry: requests it matches skip authentication."""

    __slots__ = ("methods", "paths")

    def __init__(self, entry: str) -> None:
        method, _, pattern = entry.strip().rpartition(" ")
        if not pattern.startswith("/"):
            raise SettingsError(f"gateway.public: {entry!r} is not '[METHOD] /pattern'")
        self.methods = (frozenset(m.strip().upper().encode() for m in method.split(",")
                                  if m.strip())
                        or None)
        self.paths = PathMatcher([pattern])

    def matches(self, method: bytes, path: str) -> bool:
        return (self.methods is None or method in self.methods) and self.paths.matches(path)


class RouteTable:
    """All routes and the public allow-list of one settings version; immutable once built."""

    __slots__ = ("apps", "public", "routes")

    def __init__(self, routes: Sequence[Route], public: Sequence[PublicRule]) -> None:
        self.routes = tuple(routes)
        self.public = tuple(public)
        self.apps = frozenset(r.target.app for r in self.routes if r.target.app is not None)

    # Both run per request: the predicate checks are written out (PathMatcher.matches inline)
    # because a Python call per route and pattern is most of what matching costs.
    def match(self, method: bytes, path: str) -> Route | None:
        for route in self.routes:
            if route.methods is not None and method not in route.methods:
                continue
            paths = route.paths
            if path in paths._exact or path.startswith(paths._prefixes) or (
                    paths._regex is not None and paths._regex.fullmatch(path) is not None):
                return route
        return None

    def is_public(self, method: bytes, path: str) -> bool:
        for rule in self.public:
            if rule.methods is not None and method not in rule.methods:
                continue
            paths = rule.paths
            if path in paths._exact or path.startswith(paths._prefixes) or (
                    paths._regex is not None and paths._regex.fullmatch(path) is not None):
                return True
        return False


def compile_routes(settings: GatewaySettings) -> RouteTable:
    """The route table for ``settings``; raises SettingsError on anything it cannot honour."""
    indexed = sorted(enumerate(settings.routes), key=lambda item: (item[1].order, item[0]))
    return RouteTable([Route(spec, settings) for _, spec in indexed],
                      [PublicRule(entry) for entry in settings.public])
