"""The Eureka client every COME2US Python service uses to register and to find the others.

Two layers:

- `EurekaClient` makes Eureka's REST calls (register, renew, cancel, fetch the registry or its
  delta), trying each discovery URL in turn until one answers — so losing one discovery server
  (or its AZ) costs a client one refused connection, not an outage.
- `DiscoveryClient` is what a service holds for its lifetime: it registers the service's
  instance, heartbeats it (registering again whenever the server answers 404, e.g. after the
  server restarted or evicted it), keeps a local copy of the registry refreshed every few
  seconds, and cancels the registration on stop. Looking up instances reads the local copy and
  never waits on the network, which is what a gateway needs on its request path::

      registration = Registration(app="user-service", instance_id="user-service:127.0.1.61:8081",
                                  host="127.0.1.61", port=8081,
                                  metadata={"colour": "blue", "zone": "AZ-a"})
      async with DiscoveryClient(["http://127.0.1.51:8761/eureka",
                                  "http://127.0.2.51:8761/eureka"], registration) as discovery:
          for instance in discovery.instances("product-service"):   # UP instances only
              print(instance.url, instance.metadata.get("zone"))

Registry answers are read as JSON (``Accept: application/json``), as Java clients read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)

UP = "UP"
DOWN = "DOWN"
STARTING = "STARTING"
OUT_OF_SERVICE = "OUT_OF_SERVICE"
STATUSES = frozenset({UP, DOWN, STARTING, OUT_OF_SERVICE, "UNKNOWN"})

_JSON = "application/json"
_DEFAULT_DATA_CENTER = {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
                        "name": "MyOwn"}


@dataclass(frozen=True, slots=True)
class Instance:
    """A registered instance as a caller needs it. ``app`` is upper-case, as Eureka keeps it."""

    app: str
    instance_id: str
    host: str
    port: int
    status: str
    # Compared but not hashed (a dict cannot be), so instances still work as set members.
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def url(self) -> str:
        """``http://host:port``, the base URL to call the instance at."""
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Registration:
    """What a service tells discovery about itself.

    The lease is scaled down for local use: a heartbeat every second, evicted 5 s after the last
    one. The health and status URLs default to ``/health`` and ``/actuator/info`` on the instance.
    """

    app: str
    instance_id: str
    host: str
    port: int
    status: str = UP
    metadata: Mapping[str, str] = field(default_factory=dict)
    health_check_url: str | None = None
    status_page_url: str | None = None
    home_page_url: str | None = None
    renewal_interval_s: float = 1.0
    lease_duration_s: int = 5

    def __post_init__(self) -> None:
        if not self.app or not self.instance_id or not self.host:
            raise ValueError("a registration needs an app, an instance id and a host")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1-65535, got {self.port}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, got {self.status!r}")
        if not 0 < self.renewal_interval_s < self.lease_duration_s:
            # A lease shorter than the heartbeat interval would expire between heartbeats.
            raise ValueError(f"heartbeat interval ({self.renewal_interval_s} s) must be shorter "
                             f"than the lease ({self.lease_duration_s} s)")

    def document(self, last_dirty_ms: int, status: str | None = None) -> dict[str, Any]:
        """The Eureka instance document (``{"instance": {...}}``) for this registration."""
        base = f"http://{self.host}:{self.port}"
        timestamp = str(last_dirty_ms)
        return {"instance": {
            "instanceId": self.instance_id,
            "hostName": self.host,
            "app": self.app.upper(),
            "ipAddr": self.host,
            "status": status or self.status,
            "overriddenStatus": "UNKNOWN",
            "port": {"$": self.port, "@enabled": "true"},
            "securePort": {"$": 443, "@enabled": "false"},
            "countryId": 1,
            "dataCenterInfo": dict(_DEFAULT_DATA_CENTER),
            "leaseInfo": {"renewalIntervalInSecs": max(1, math.ceil(self.renewal_interval_s)),
                          "durationInSecs": self.lease_duration_s},
            "metadata": dict(self.metadata),
            "homePageUrl": self.home_page_url or f"{base}/",
            "statusPageUrl": self.status_page_url or f"{base}/actuator/info",
            "healthCheckUrl": self.health_check_url or f"{base}/health",
            "vipAddress": self.app.lower(),
            "secureVipAddress": self.app.lower(),
            "isCoordinatingDiscoveryServer": "false",
            "lastUpdatedTimestamp": timestamp,
            "lastDirtyTimestamp": timestamp,
        }}


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """A registry answer: instances per (upper-case) app, plus Eureka's reconcile fields.

    For a delta, ``deleted`` lists the instances removed since; ``hashcode`` is always that of
    the whole registry, so applying a delta can be checked (`local_hashcode`).
    """

    version: str
    hashcode: str
    apps: Mapping[str, tuple[Instance, ...]]
    deleted: tuple[Instance, ...] = ()


class DiscoveryUnavailable(ConnectionError):
    """No discovery URL answered; the message says what each one did."""


class EurekaClient:
    """Eureka's REST calls against a list of discovery servers.

    Each call goes to the server that answered last, then to the others in order, until one
    answers; a refused connection, a timeout or a 5xx moves on, any other answer (a 404
    included) is final. ``urls`` are Eureka service URLs such as ``http://h:8761/eureka``.
    """

    def __init__(self, urls: Sequence[str], *, http: httpx.AsyncClient | None = None,
                 timeout_s: float = 2.0) -> None:
        if not urls:
            raise ValueError("at least one discovery URL is needed")
        self.urls = [url.rstrip("/") for url in urls]
        self._http = http or httpx.AsyncClient(timeout=timeout_s)
        self._owns_http = http is None
        self._preferred = 0

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def register(self, registration: Registration, *, last_dirty_ms: int,
                       status: str | None = None) -> None:
        response = await self._call(
            "POST", f"/apps/{quote(registration.app.upper(), safe='')}",
            json=registration.document(last_dirty_ms, status))
        if response.status_code != 204:
            raise DiscoveryUnavailable(
                f"registration of {registration.instance_id} refused: "
                f"HTTP {response.status_code} {response.text[:200]}")

    async def renew(self, app: str, instance_id: str, *, status: str = UP,
                    last_dirty_ms: int | None = None) -> bool:
        """A heartbeat; False when the server does not know the instance (register again)."""
        params = {"status": status}
        if last_dirty_ms is not None:
            params["lastDirtyTimestamp"] = str(last_dirty_ms)
        response = await self._call("PUT", self._instance_path(app, instance_id), params=params)
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    async def cancel(self, app: str, instance_id: str) -> bool:
        """Deregister; False when the server did not know the instance."""
        response = await self._call("DELETE", self._instance_path(app, instance_id))
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    async def fetch_registry(self, *, delta: bool = False) -> RegistrySnapshot:
        """The whole registry, every status included — or, with ``delta``, what changed lately."""
        response = await self._call("GET", "/apps/delta" if delta else "/apps/")
        response.raise_for_status()
        return _parse_applications(response.json())

    def _instance_path(self, app: str, instance_id: str) -> str:
        return f"/apps/{quote(app.upper(), safe='')}/{quote(instance_id, safe='')}"

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        order = [self._preferred, *(i for i in range(len(self.urls)) if i != self._preferred)]
        failures: list[str] = []
        for index in order:
            url = self.urls[index] + path
            try:
                response = await self._http.request(
                    method, url, headers={"Accept": _JSON}, **kwargs)
            except httpx.TransportError as error:
                failures.append(f"{url}: {type(error).__name__} {error}".rstrip())
                continue
            if response.status_code >= 500:
                failures.append(f"{url}: HTTP {response.status_code}")
                continue
            self._preferred = index
            return response
        raise DiscoveryUnavailable("no discovery server answered: " + "; ".join(failures))


class DiscoveryClient:
    """Registers one instance, keeps it alive, and keeps a local copy of the registry.

    ``registration`` may be None for a client that only looks others up. ``on_change`` is
    called after a refresh that changed the local copy (a gateway rebuilds its pools there).
    Errors talking to discovery are logged (once per outage) and retried on the next tick; they
    never stop the service.
    """

    def __init__(self, urls: Sequence[str], registration: Registration | None = None, *,
                 refresh_interval_s: float = 1.0, use_delta: bool = True,
                 http: httpx.AsyncClient | None = None, timeout_s: float = 2.0,
                 on_change: Callable[[], None] | None = None) -> None:
        if refresh_interval_s <= 0:
            raise ValueError(f"refresh interval must be positive, got {refresh_interval_s}")
        self.eureka = EurekaClient(urls, http=http, timeout_s=timeout_s)
        self.registration = registration
        self.refresh_interval_s = refresh_interval_s
        self.use_delta = use_delta
        self.on_change = on_change
        self._status = registration.status if registration else UP
        self._last_dirty_ms = 0
        self._registered = False
        self._apps: dict[str, dict[str, Instance]] = {}
        self._have_full_copy = False
        self._tasks: list[asyncio.Task[None]] = []
        self._failing: set[str] = set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.stop()

    @property
    def registered(self) -> bool:
        """Whether the last word from discovery was that our registration is in place."""
        return self._registered

    def instances(self, app: str) -> list[Instance]:
        """The UP instances of ``app`` (any case) in the local copy, ordered by instance id."""
        found = self._apps.get(app.upper())
        if not found:
            return []
        return sorted((i for i in found.values() if i.status == UP),
                      key=lambda instance: instance.instance_id)

    async def start(self) -> None:
        """Register and fetch the registry once, then keep both up to date in the background."""
        if self.registration is not None:
            await self._register()
        await self.refresh()
        if self.registration is not None:
            self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="eureka-heartbeat"))
        self._tasks.append(asyncio.create_task(self._refresh_loop(), name="eureka-refresh"))

    async def stop(self) -> None:
        """Stop the background work and cancel the registration (traffic stops at once)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.registration is not None and self._registered:
            try:
                await self.eureka.cancel(self.registration.app, self.registration.instance_id)
            except (DiscoveryUnavailable, httpx.HTTPError) as error:
                log.warning("could not cancel the registration", extra={
                    "event": "eureka_cancel_failed", "error": str(error)})
            self._registered = False
        await self.eureka.aclose()

    async def update_status(self, status: str) -> None:
        """Tell discovery our status changed (e.g. OUT_OF_SERVICE before draining)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, got {status!r}")
        self._status = status
        if self.registration is not None:
            await self._register()

    async def refresh(self) -> None:
        """Bring the local copy up to date now (a delta when possible, else the whole registry)."""
        try:
            if self.use_delta and self._have_full_copy:
                delta = await self.eureka.fetch_registry(delta=True)
                changed = self._apply_delta(delta)
                if local_hashcode(self._apps) != delta.hashcode:
                    changed = self._replace(await self.eureka.fetch_registry()) or changed
            else:
                changed = self._replace(await self.eureka.fetch_registry())
        except (DiscoveryUnavailable, httpx.HTTPError, ValueError) as error:
            self._failed("refresh", error)
            return
        self._recovered("refresh")
        if changed and self.on_change is not None:
            self.on_change()

    async def _register(self) -> None:
        assert self.registration is not None
        # A newer dirty timestamp tells servers (and their peers) this copy supersedes theirs.
        self._last_dirty_ms = max(self._last_dirty_ms + 1, time.time_ns() // 1_000_000)
        try:
            await self.eureka.register(self.registration, last_dirty_ms=self._last_dirty_ms,
                                       status=self._status)
        except (DiscoveryUnavailable, httpx.HTTPError) as error:
            self._registered = False
            self._failed("register", error)
            return
        self._registered = True
        self._recovered("register")
        log.info("registered with discovery", extra={
            "event": "eureka_registered", "app": self.registration.app.upper(),
            "instance_id": self.registration.instance_id, "status": self._status})

    async def _heartbeat_loop(self) -> None:
        assert self.registration is not None
        while True:
            await asyncio.sleep(self.registration.renewal_interval_s)
            if not self._registered:
                await self._register()
                continue
            try:
                known = await self.eureka.renew(
                    self.registration.app, self.registration.instance_id, status=self._status,
                    last_dirty_ms=self._last_dirty_ms)
            except (DiscoveryUnavailable, httpx.HTTPError) as error:
                self._failed("heartbeat", error)
                continue
            self._recovered("heartbeat")
            if not known:
                log.info("discovery lost our registration; registering again",
                         extra={"event": "eureka_reregister",
                                "instance_id": self.registration.instance_id})
                await self._register()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval_s)
            await self.refresh()

    def _replace(self, snapshot: RegistrySnapshot) -> bool:
        fresh = {app: {i.instance_id: i for i in instances}
                 for app, instances in snapshot.apps.items()}
        changed = fresh != self._apps
        self._apps = fresh
        self._have_full_copy = True
        return changed

    def _apply_delta(self, delta: RegistrySnapshot) -> bool:
        changed = False
        for app, instances in delta.apps.items():
            known = self._apps.setdefault(app, {})
            for instance in instances:
                if known.get(instance.instance_id) != instance:
                    known[instance.instance_id] = instance
                    changed = True
        for instance in delta.deleted:
            known = self._apps.get(instance.app, {})
            if known.pop(instance.instance_id, None) is not None:
                changed = True
                if not known:
                    self._apps.pop(instance.app, None)
        return changed

    def _failed(self, what: str, error: Exception) -> None:
        if what not in self._failing:
            self._failing.add(what)
            log.warning(f"discovery {what} failed; retrying", extra={
                "event": "eureka_unavailable", "operation": what, "error": str(error)})

    def _recovered(self, what: str) -> None:
        if what in self._failing:
            self._failing.discard(what)
            log.info(f"discovery {what} works again", extra={
                "event": "eureka_available", "operation": what})


def local_hashcode(apps: Mapping[str, Mapping[str, Instance]]) -> str:
    """Eureka's ``apps__hashcode`` of a local copy: ``STATUS_count_`` per status, by name."""
    counts: dict[str, int] = {}
    for instances in apps.values():
        for instance in instances.values():
            counts[instance.status] = counts.get(instance.status, 0) + 1
    return "".join(f"{status}_{counts[status]}_" for status in sorted(counts))


def _parse_applications(document: Any) -> RegistrySnapshot:
    """Read Eureka's JSON ``applications`` answer (a lone app or instance may be an object)."""
    if not isinstance(document, dict) or not isinstance(document.get("applications"), dict):
        raise ValueError("not a Eureka applications document")
    body = document["applications"]
    apps: dict[str, tuple[Instance, ...]] = {}
    deleted: list[Instance] = []
    for app in _as_list(body.get("application")):
        kept: list[Instance] = []
        for raw in _as_list(app.get("instance") if isinstance(app, dict) else None):
            instance = _parse_instance(raw)
            if raw.get("actionType") == "DELETED":
                deleted.append(instance)
            else:
                kept.append(instance)
        if kept:
            name = str(app.get("name", kept[0].app)).upper()
            apps[name] = tuple(kept)
    return RegistrySnapshot(str(body.get("versions__delta", "")),
                            str(body.get("apps__hashcode", "")), apps, tuple(deleted))


def _parse_instance(raw: Any) -> Instance:
    if not isinstance(raw, dict):
        raise ValueError("an instance in the registry answer is not an object")
    port = raw.get("port")
    number = port.get("$") if isinstance(port, dict) else port
    metadata = raw.get("metadata")
    return Instance(
        app=str(raw.get("app", "")).upper(),
        instance_id=str(raw.get("instanceId") or raw.get("hostName", "")),
        host=str(raw.get("hostName") or raw.get("ipAddr", "")),
        port=int(number) if number is not None else 0,
        status=str(raw.get("status", "UNKNOWN")),
        metadata={str(k): str(v) for k, v in metadata.items() if k != "@class"}
        if isinstance(metadata, dict) else {},
    )


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]
