"""The gateway's settings: one typed, immutable object, read from Spring-shaped configuration.

Routes use Spring Cloud Gateway's own keys, so a route written for the Java gateway reads the
same here::

    spring.cloud.gateway:
      httpclient: {connect-timeout: 1000, response-timeout: 5s}   # defaults for every route
      routes:
        - id: users
          uri: lb://user-service                 # or http://host:port
          predicates: ["Path=/api/users/**,/api/auth/**", "Method=GET,POST"]
          filters:
            - StripPrefix=1
            - name: RequestRateLimiter
              args: {redis-rate-limiter.replenishRate: 10, redis-rate-limiter.burstCapacity: 20}
          metadata: {connect-timeout: 500, response-timeout: 2000}   # milliseconds

What Spring leaves to Java code (public routes, the JWT key, breaker and limiter tuning) lives
under ``gateway.*``. Keys bind relaxedly as in Spring Boot (``burst-capacity``,
``burstCapacity`` and ``burst_capacity`` are one key). Anything malformed raises
:class:`SettingsError` naming the key, so a bad refresh is refused instead of half-applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)
_ISO_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$",
                           re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class SettingsError(ValueError):
    """The configuration cannot be used; the message names the offending key."""


@dataclass(frozen=True)
class PredicateSpec:
    """One route predicate: ``Path`` (patterns) or ``Method`` (method names)."""

    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class FilterSpec:
    """One route filter by name with its arguments (shortcut ``X=a,b`` becomes ``_genkey_n``)."""

    name: str
    args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimitSettings:
    """Spring RedisRateLimiter's parameters: tokens per second, bucket size, cost per request."""

    replenish_rate: float
    burst_capacity: int
    requested_tokens: int = 1


@dataclass(frozen=True)
class RouteSettings:
    id: str
    uri: str
    predicates: tuple[PredicateSpec, ...]
    filters: tuple[FilterSpec, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    order: int = 0


@dataclass(frozen=True)
class JwtSettings:
    """How access tokens are verified: RS256 against one public key, issuer and expiry checked."""

    issuer: str
    public_key_pem: str
    leeway_s: float = 5.0
    cache_size: int = 10_000


@dataclass(frozen=True)
class BreakerSettings:
    """Circuit breaker per route, Resilience4j's vocabulary.

    It opens when, over the last ``window_size`` calls (at least ``minimum_calls`` of them), the
    failure rate reaches ``failure_rate_threshold`` percent, or after ``consecutive_failures``
    failures in a row; stays open ``open_wait_s``; then lets ``half_open_calls`` trial calls
    through, closing if they all succeed.
    """

    window_size: int = 20
    minimum_calls: int = 10
    failure_rate_threshold: float = 50.0
    consecutive_failures: int = 5
    open_wait_s: float = 5.0
    half_open_calls: int = 3
    failure_statuses: frozenset[int] = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RedisSettings:
    """Where the session Redis is: through Sentinel (``sentinels`` + ``master``) or a plain URL."""

    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = "session"
    url: str | None = None
    socket_timeout_s: float = 1.0

    @property
    def configured(self) -> bool:
        return bool(self.sentinels) or self.url is not None


@dataclass(frozen=True)
class GatewaySettings:
    routes: tuple[RouteSettings, ...] = ()
    # "METHOD /pattern" or "/pattern" (any method); matched before authentication.
    public: tuple[str, ...] = ()
    jwt: JwtSettings | None = None
    connect_timeout_s: float = 1.0
    response_timeout_s: float = 10.0
    # Attempts after the first, on other instances, for connection failures only.
    retries: int = 2
    default_rate_limit: RateLimitSettings | None = None
    rate_limit_sync_s: float = 0.05
    breaker: BreakerSettings = BreakerSettings()
    # How long an instance that refused a connection is skipped locally.
    eject_s: float = 5.0
    discovery_refresh_s: float = 1.0
    # Blue/green: when set, only instances whose metadata colour equals it are used.
    colour: str | None = None
    # Proxies in front of the gateway (the ALB) whose X-Forwarded-For entries are trusted.
    trusted_proxy_hops: int = 0
    pool_max_idle: int = 256
    # Below uvicorn's 5 s keep-alive so the gateway, not the service, closes idle connections.
    pool_idle_timeout_s: float = 4.0
    redis: RedisSettings = RedisSettings()
    revocation_resync_s: float = 30.0
    access_log: bool = True


def normalise_key(key: str) -> str:
    """Spring Boot's relaxed binding: case, dashes and underscores do not matter."""
    return key.replace("-", "").replace("_", "").lower()


def _relaxed(mapping: Any, where: str) -> dict[str, Any]:
    if mapping is None or mapping == "":
        return {}
    if not isinstance(mapping, Mapping):
        raise SettingsError(f"{where}: expected a mapping, got {mapping!r}")
    return {normalise_key(str(key)): value for key, value in mapping.items()}


def _list(value: Any, where: str) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, Mapping):  # a list written as {0: .., 1: ..} after unflattening
        return [value[key] for key in sorted(value, key=lambda k: int(k))]
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    raise SettingsError(f"{where}: expected a list, got {value!r}")


def parse_duration(value: Any, where: str, default_unit: str = "ms") -> float:
    """Seconds from a Spring duration: ``500`` (default unit), ``"500ms"``, ``"5s"``, ``"PT5S"``."""
    if isinstance(value, bool):
        raise SettingsError(f"{where}: not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value) * _UNIT_S[default_unit]
    text = str(value)
    match = _DURATION.match(text)
    if match:
        return float(match.group(1)) * _UNIT_S[(match.group(2) or default_unit).lower()]
    iso = _ISO_DURATION.match(text.strip())
    if iso and any(iso.groups()):
        hours, minutes, seconds = (float(part or 0) for part in iso.groups())
        return hours * 3600 + minutes * 60 + seconds
    raise SettingsError(f"{where}: not a duration: {value!r}")


def _number(value: Any, where: str, *, minimum: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{where}: not a number: {value!r}") from None
    if number < minimum:
        raise SettingsError(f"{where}: must be >= {minimum:g}, got {number:g}")
    return number


def _int(value: Any, where: str, *, minimum: int = 0) -> int:
    number = _number(value, where, minimum=minimum)
    if number != int(number):
        raise SettingsError(f"{where}: not an integer: {value!r}")
    return int(number)


def _shortcut(text: str, where: str) -> tuple[str, list[str]]:
    """``"Path=/a/**,/b/**"`` -> ``("Path", ["/a/**", "/b/**"])``; ``"X"`` -> ``("X", [])``."""
    name, _, rest = text.partition("=")
    if not name.strip():
        raise SettingsError(f"{where}: empty name in {text!r}")
    return name.strip(), [item.strip() for item in rest.split(",") if item.strip()]


def _predicate(raw: Any, where: str) -> PredicateSpec:
    if isinstance(raw, str):
        name, values = _shortcut(raw, where)
    else:
        spec = _relaxed(raw, where)
        name = str(spec.get("name", ""))
        args = spec.get("args", {})
        values = [str(v) for item in (args.values() if isinstance(args, Mapping) else [args])
                  for v in _list(item, f"{where}.args")]
    canonical = {"path": "Path", "method": "Method"}.get(name.lower())
    if canonical is None:
        raise SettingsError(f"{where}: unsupported predicate {name!r} (Path and Method are)")
    if not values:
        raise SettingsError(f"{where}: {canonical} needs at least one value")
    if canonical == "Path":
        for pattern in values:
            if not pattern.startswith("/"):
                raise SettingsError(f"{where}: path pattern must start with '/': {pattern!r}")
    return PredicateSpec(canonical, tuple(values))


def _filter(raw: Any, where: str) -> FilterSpec:
    if isinstance(raw, str):
        name, values = _shortcut(raw, where)
        return FilterSpec(name, {f"_genkey_{i}": value for i, value in enumerate(values)})
    spec = _relaxed(raw, where)
    args = spec.get("args", {})
    if not isinstance(args, Mapping):
        raise SettingsError(f"{where}.args: expected a mapping")
    return FilterSpec(str(spec.get("name", "")), {str(k): str(v) for k, v in args.items()})


def _route(raw: Any, where: str) -> RouteSettings:
    spec = _relaxed(raw, where)
    route_id = str(spec.get("id") or "")
    uri = str(spec.get("uri") or "")
    if not route_id:
        raise SettingsError(f"{where}.id: missing")
    if not uri:
        raise SettingsError(f"{where}.uri: missing")
    predicates = tuple(_predicate(p, f"{where}.predicates[{i}]")
                       for i, p in enumerate(_list(spec.get("predicates"), f"{where}.predicates")))
    if not any(p.name == "Path" for p in predicates):
        raise SettingsError(f"{where}.predicates: a Path predicate is required")
    filters = tuple(_filter(f, f"{where}.filters[{i}]")
                    for i, f in enumerate(_list(spec.get("filters"), f"{where}.filters")))
    metadata = _relaxed(spec.get("metadata"), f"{where}.metadata")
    return RouteSettings(route_id, uri, predicates, filters, metadata,
                         _int(spec.get("order", 0), f"{where}.order", minimum=-(2**31)))


def _jwt(raw: Any, where: str) -> JwtSettings | None:
    spec = _relaxed(raw, where)
    if not spec:
        return None
    key = spec.get("publickey") or spec.get("publickeypem")
    if not key or "issuer" not in spec:
        raise SettingsError(f"{where}: issuer and public-key are required")
    return JwtSettings(
        issuer=str(spec["issuer"]),
        public_key_pem=str(key),
        leeway_s=parse_duration(spec.get("leeway", 5), f"{where}.leeway", "s"),
        cache_size=_int(spec.get("cachesize", 10_000), f"{where}.cache-size", minimum=1),
    )


def rate_limit_from(args: Mapping[str, Any], where: str) -> RateLimitSettings:
    """Spring's ``redis-rate-limiter.*`` arguments (prefix optional) as RateLimitSettings."""
    spec = {normalise_key(k.removeprefix("redis-rate-limiter.")): v for k, v in args.items()}
    if "replenishrate" not in spec or "burstcapacity" not in spec:
        raise SettingsError(f"{where}: replenishRate and burstCapacity are required")
    limit = RateLimitSettings(
        replenish_rate=_number(spec["replenishrate"], f"{where}.replenishRate", minimum=0.001),
        burst_capacity=_int(spec["burstcapacity"], f"{where}.burstCapacity", minimum=1),
        requested_tokens=_int(spec.get("requestedtokens", 1), f"{where}.requestedTokens",
                              minimum=1),
    )
    if limit.requested_tokens > limit.burst_capacity:
        raise SettingsError(f"{where}: requestedTokens exceeds burstCapacity")
    return limit


def _breaker(raw: Any, where: str) -> BreakerSettings:
    spec = _relaxed(raw, where)
    base = BreakerSettings()
    statuses = spec.get("failurestatuses")
    settings = BreakerSettings(
        window_size=_int(spec.get("windowsize", base.window_size), f"{where}.window-size",
                         minimum=1),
        minimum_calls=_int(spec.get("minimumcalls", base.minimum_calls),
                           f"{where}.minimum-calls", minimum=1),
        failure_rate_threshold=_number(
            spec.get("failureratethreshold", base.failure_rate_threshold),
            f"{where}.failure-rate-threshold", minimum=1),
        consecutive_failures=_int(spec.get("consecutivefailures", base.consecutive_failures),
                                  f"{where}.consecutive-failures", minimum=1),
        open_wait_s=parse_duration(spec.get("openwait", base.open_wait_s), f"{where}.open-wait",
                                   "s"),
        half_open_calls=_int(spec.get("halfopencalls", base.half_open_calls),
                             f"{where}.half-open-calls", minimum=1),
        failure_statuses=(frozenset(_int(s, f"{where}.failure-statuses", minimum=100)
                                    for s in _list(statuses, f"{where}.failure-statuses"))
                          if statuses is not None else base.failure_statuses),
    )
    if settings.minimum_calls > settings.window_size:
        raise SettingsError(f"{where}: minimum-calls exceeds window-size")
    return settings


def _address(text: str, where: str) -> tuple[str, int]:
    host, sep, port = str(text).strip().rpartition(":")
    if not sep or not host:
        raise SettingsError(f"{where}: expected host:port, got {text!r}")
    return host, _int(port, where, minimum=1)


def _redis(raw: Any, where: str) -> RedisSettings:
    spec = _relaxed(raw, where)
    sentinels = tuple(_address(item, f"{where}.sentinels")
                      for item in _list(spec.get("sentinels"), f"{where}.sentinels"))
    url = spec.get("url") or None
    return RedisSettings(
        sentinels=sentinels,
        master=str(spec.get("master", "session")),
        url=str(url) if url else None,
        socket_timeout_s=parse_duration(spec.get("sockettimeout", 1.0), f"{where}.socket-timeout",
                                        "s"),
    )


def _path(tree: Mapping[str, Any], *names: str) -> dict[str, Any]:
    node: Any = tree
    where = ""
    for name in names:
        where = f"{where}.{name}" if where else name
        node = _relaxed(node, where).get(normalise_key(name), {})
    return _relaxed(node, where)


def from_config(tree: Mapping[str, Any]) -> GatewaySettings:
    """GatewaySettings from a configuration tree (the config server's properties, unflattened)."""
    spring = _path(tree, "spring", "cloud", "gateway")
    client = _relaxed(spring.get("httpclient"), "spring.cloud.gateway.httpclient")
    ours = _path(tree, "gateway")
    routes = tuple(_route(r, f"spring.cloud.gateway.routes[{i}]")
                   for i, r in enumerate(_list(spring.get("routes"), "routes")))
    ids = [route.id for route in routes]
    if len(ids) != len(set(ids)):
        raise SettingsError(f"spring.cloud.gateway.routes: duplicate route ids in {ids}")
    limit = ours.get("ratelimit")
    colour = ours.get("colour") or ours.get("color") or None
    defaults = GatewaySettings()
    return GatewaySettings(
        routes=routes,
        public=tuple(str(p) for p in _list(ours.get("public"), "gateway.public")),
        jwt=_jwt(ours.get("jwt"), "gateway.jwt"),
        connect_timeout_s=parse_duration(client.get("connecttimeout", 1000),
                                         "spring.cloud.gateway.httpclient.connect-timeout"),
        response_timeout_s=parse_duration(client.get("responsetimeout", 10_000),
                                          "spring.cloud.gateway.httpclient.response-timeout"),
        retries=_int(ours.get("retries", defaults.retries), "gateway.retries"),
        default_rate_limit=(rate_limit_from(_relaxed(limit, "gateway.rate-limit"),
                                            "gateway.rate-limit") if limit else None),
        rate_limit_sync_s=parse_duration(ours.get("ratelimitsync", 50), "gateway.rate-limit-sync"),
        breaker=_breaker(ours.get("circuitbreaker"), "gateway.circuit-breaker"),
        eject_s=parse_duration(ours.get("eject", defaults.eject_s), "gateway.eject", "s"),
        discovery_refresh_s=parse_duration(
            ours.get("discoveryrefresh", defaults.discovery_refresh_s),
            "gateway.discovery-refresh", "s"),
        colour=str(colour) if colour else None,
        trusted_proxy_hops=_int(ours.get("trustedproxyhops", 0), "gateway.trusted-proxy-hops"),
        pool_max_idle=_int(ours.get("poolmaxidle", defaults.pool_max_idle),
                           "gateway.pool-max-idle"),
        pool_idle_timeout_s=parse_duration(
            ours.get("poolidletimeout", defaults.pool_idle_timeout_s),
            "gateway.pool-idle-timeout", "s"),
        redis=_redis(ours.get("redis"), "gateway.redis"),
        revocation_resync_s=parse_duration(
            ours.get("revocationresync", defaults.revocation_resync_s),
            "gateway.revocation-resync", "s"),
        access_log=str(ours.get("accesslog", True)).lower() not in ("false", "0", "no", "off"),
    )

