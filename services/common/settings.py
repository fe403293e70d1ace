"""Settings from the config server: every service loads its typed settings here at start.

A service describes its settings as a pydantic model and calls `load_settings`, which asks the
config server for the service's Environment (``GET {url}/{application}/{profiles}[/{label}]``),
merges the property sources by precedence, and binds the result to the model the way Spring
Boot's relaxed binding does (``rate-limit.replenish-rate`` fills ``rate_limit.replenish_rate``;
``10s`` fills a ``timedelta``; ``"a,b"`` fills a list).

The config server may be starting, or down: the fetch is retried with exponential backoff, and
then `ConfigUnavailable` says which URL failed, how often, and the last error. `load_or_exit`
turns that into a message on stderr and a non-zero exit, so ``python -m services.x`` fails
clearly instead of running on defaults nobody chose.

`RefreshableSettings` holds settings that may change while the service runs: the refresh bus
(`services.common.bus.BusListener`) reloads them and swaps the value in one assignment, so a
reader sees the old or the new settings, never a mix.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Generic, TypeVar, Union, get_args, get_origin
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from services.common.properties import FlatProperties, flatten, merge, unflatten

log = logging.getLogger("come2us.settings")

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

DEFAULT_ATTEMPTS = 6
DEFAULT_TIMEOUT_S = 2.0
# sysexits.h EX_CONFIG: the supervisor's log tells "no configuration" from a crash.
EXIT_CONFIG_UNAVAILABLE = 78

Sleep = Callable[[float], None]


class ConfigError(RuntimeError):
    """Settings could not be loaded; the message says from where and why."""


class ConfigUnavailable(ConfigError):
    """The config server did not answer usefully within the attempts allowed."""


class ConfigRejected(ConfigError):
    """The config server answered, but with a refusal retrying will not change (e.g. 404)."""


class SettingsInvalid(ConfigError):
    """The configuration was served but does not fit the service's settings model."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between attempts: ``initial_s``, times ``factor``, at most ``max_s``.

    The defaults wait 0.25 + 0.5 + 1 + 2 + 4 s between six attempts (~8 s): long enough for a
    config server that is still starting, short enough that a missing one is reported quickly.
    """

    initial_s: float = 0.25
    factor: float = 2.0
    max_s: float = 4.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0 = the first retry)."""
        return float(min(self.max_s, self.initial_s * self.factor ** retry))


@dataclass(frozen=True)
class ConfigLocation:
    """Which Environment to ask for: server URL, application, profiles, optional label."""

    config_url: str
    application: str
    profiles: tuple[str, ...]
    label: str | None = None

    @property
    def environment_url(self) -> str:
        path = f"/{quote(self.application, safe='')}/{quote(','.join(self.profiles), safe=',')}"
        if self.label is not None:  # Spring's "(_)" stands for "/" inside a label
            path += "/" + quote(self.label.replace("/", "(_)"), safe="()")
        return self.config_url.rstrip("/") + path


def fetch_environment(
    location: ConfigLocation,
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: Backoff = Backoff(),
    sleep: Sleep = time.sleep,
    transport: httpx.BaseTransport | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """The Environment JSON, retrying connection failures, timeouts and 5xx answers."""
    url = location.environment_url
    began = time.monotonic()
    last_error = "no attempt made"
    with httpx.Client(transport=transport, timeout=timeout_s) as client:
        for attempt in range(max(1, attempts)):
            if attempt:
                sleep(backoff.delay(attempt - 1))
            try:
                response = client.get(url, headers={"Accept": "application/json"})
            except httpx.TransportError as error:
                last_error = f"{type(error).__name__}: {error}"
                log.warning("config server %s: attempt %d/%d failed: %s",
                            location.config_url, attempt + 1, attempts, last_error)
                continue
            if response.status_code >= 500:
                last_error = f"HTTP {response.status_code}: {_message(response)}"
                log.warning("config server %s: attempt %d/%d failed: %s",
                            location.config_url, attempt + 1, attempts, last_error)
                continue
            if response.status_code != 200:
                raise ConfigRejected(f"config server {location.config_url} refused GET {url}: "
                                     f"HTTP {response.status_code}: {_message(response)}")
            try:
                body = response.json()
            except ValueError as error:
                raise ConfigRejected(f"config server {location.config_url} answered GET {url} "
                                     f"with something that is not JSON: {error}") from error
            if not isinstance(body, dict) or not isinstance(body.get("propertySources"), list):
                raise ConfigRejected(f"config server {location.config_url} answered GET {url} "
                                     f"without propertySources: is it a Spring config server?")
            return body
    elapsed = time.monotonic() - began
    raise ConfigUnavailable(
        f"config server {location.config_url} is unavailable: GET {url} failed "
        f"{max(1, attempts)} times in {elapsed:.1f} s; last error: {last_error}"
    )


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return str(body)[:200]


def environment_properties(environment: Mapping[str, Any]) -> FlatProperties:
    """The Environment's property sources merged: most specific first wins, lists whole."""
    sources = environment.get("propertySources") or []
    return merge(source.get("source") or {} for source in sources)


def bind(model: type[T], properties: Mapping[str, Any]) -> T:
    """Flat properties into ``model`` with Spring's relaxed names; raises ValidationError."""
    return model.model_validate(_relax_model(unflatten(properties), model))


def load_settings(
    model: type[T],
    application: str,
    profiles: str | Sequence[str],
    config_url: str,
    *,
    label: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: Backoff = Backoff(),
    sleep: Sleep = time.sleep,
    transport: httpx.BaseTransport | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> T:
    """Fetch ``application``'s settings for ``profiles`` ("a,b" or a list) and bind them."""
    names = profiles.split(",") if isinstance(profiles, str) else list(profiles)
    location = ConfigLocation(config_url, application,
                              tuple(name.strip() for name in names if name.strip()) or ("default",),
                              label)
    environment = fetch_environment(location, attempts=attempts, backoff=backoff, sleep=sleep,
                                    transport=transport, timeout_s=timeout_s)
    try:
        settings = bind(model, environment_properties(environment))
    except ValidationError as error:
        raise SettingsInvalid(
            f"settings of {application} (profiles {','.join(location.profiles)}, version "
            f"{environment.get('version')}) from {location.environment_url} do not fit "
            f"{model.__name__}: {error}"
        ) from error
    log.info("loaded settings of %s from %s (label %s, version %s)", application,
             location.environment_url, environment.get("label"), environment.get("version"))
    return settings


def load_or_exit(load: Callable[[], R], *, program: str) -> R:
    """For ``__main__`` modules: run ``load``; on a ConfigError print it and exit 78.

    ``settings = load_or_exit(lambda: load_settings(...), program="gateway")``
    """
    try:
        return load()
    except ConfigError as error:
        print(f"{program}: cannot start: {error}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG_UNAVAILABLE) from None


def changed_keys(old: BaseModel, new: BaseModel) -> list[str]:
    """The dotted keys whose values differ between two settings objects (added or removed too)."""
    before = flatten(old.model_dump(mode="json"))
    after = flatten(new.model_dump(mode="json"))
    return sorted(key for key in before.keys() | after.keys()
                  if before.get(key, _MISSING) != after.get(key, _MISSING))


_MISSING = object()

ChangeCallback = Callable[[T, T], None]


class RefreshableSettings(Generic[T]):
    """Settings that the refresh bus may replace while the service runs.

    Read ``.value`` each time it is needed (never keep a copy of a field); register
    ``on_change(callback)`` for things that must be rebuilt when settings change, such as a
    connection pool. A refresh that fails leaves the current value in place.
    """

    def __init__(self, value: T, loader: Callable[[], T] | None = None, *,
                 name: str = "settings") -> None:
        self._value = value
        self._loader = loader
        self.name = name
        self._callbacks: list[ChangeCallback[T]] = []
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    @classmethod
    def load(
        cls,
        model: type[T],
        application: str,
        profiles: str | Sequence[str],
        config_url: str,
        *,
        label: str | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        refresh_attempts: int = 3,
        backoff: Backoff = Backoff(),
        sleep: Sleep = time.sleep,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> RefreshableSettings[T]:
        """Load now (with ``attempts``); later refreshes reload with ``refresh_attempts``."""
        def load(tries: int) -> T:
            return load_settings(model, application, profiles, config_url, label=label,
                                 attempts=tries, backoff=backoff, sleep=sleep,
                                 transport=transport, timeout_s=timeout_s)

        return cls(load(attempts), lambda: load(refresh_attempts), name=application)

    @property
    def value(self) -> T:
        return self._value

    def on_change(self, callback: ChangeCallback[T]) -> Callable[[], None]:
        """Call ``callback(old, new)`` after each change; returns a function that unregisters."""
        with self._lock:
            self._callbacks.append(callback)

        def unregister() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unregister

    def refresh(self) -> list[str]:
        """Reload from the source and apply; the changed keys ([] if none). Raises ConfigError.

        Refreshes are serialised so that a slow, older reload never overwrites a newer one.
        """
        if self._loader is None:
            raise ConfigError(f"{self.name}: these settings have no source to reload from")
        with self._refreshing:
            return self.replace(self._loader())

    def replace(self, new: T) -> list[str]:
        """Swap in ``new`` and tell the callbacks; nothing happens if no value changed."""
        with self._lock:
            old = self._value
            changed = changed_keys(old, new)
            if not changed:
                return []
            self._value = new
            callbacks = list(self._callbacks)
        log.info("settings of %s changed: %s", self.name, ", ".join(changed))
        for callback in callbacks:
            try:
                callback(old, new)
            except Exception:
                log.exception("a settings change callback of %s failed", self.name)
        return changed


# --- Spring Boot's relaxed binding, guided by the model's field types -----------------------

_DURATION = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h|d)\s*")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
                   "d": 86400.0}
_SEQUENCES = (list, tuple, set, frozenset, Sequence, Iterable)
_MAPPINGS = (dict, Mapping)


def _canonical(name: str) -> str:
    """Spring's relaxed form: ``rate-limit``, ``rate_limit``, ``rateLimit`` are one name."""
    return name.replace("-", "").replace("_", "").lower()


def _relax_model(tree: Mapping[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    fields: dict[str, tuple[str, Any]] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        fields[_canonical(name)] = (key, info.annotation)
        if info.alias:
            fields[_canonical(info.alias)] = (key, info.annotation)
    relaxed: dict[str, Any] = {}
    for key, value in tree.items():
        match = fields.get(_canonical(key))
        if match is None:
            relaxed[key] = value  # the model's own config decides: ignore (default) or forbid
        else:
            relaxed[match[0]] = _relax(value, match[1])
    return relaxed


def _relax(value: Any, annotation: Any) -> Any:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _relax(value, args[0])
    if origin is Union or origin is types.UnionType:
        options = [arg for arg in args if arg is not type(None)]
        if len(options) == 1:
            return _relax(value, options[0])
        for option in options:
            if isinstance(value, Mapping) and _is_model(option):
                return _relax(value, option)
        return value
    if _is_model(annotation) and isinstance(value, Mapping):
        return _relax_model(value, annotation)
    if origin in _SEQUENCES:
        if isinstance(value, str):  # Spring binds "a, b" to a list
            value = [part.strip() for part in value.split(",")] if value.strip() else []
        if isinstance(value, list):
            item = args[0] if args else Any
            return [_relax(element, item) for element in value]
        return value
    if origin in _MAPPINGS and isinstance(value, Mapping):
        item = args[1] if len(args) == 2 else Any
        return {key: _relax(element, item) for key, element in value.items()}
    if annotation is timedelta and isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is not None:  # Spring's "500ms" / "10s" / "2m" duration style
            return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2)])
    return value


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
