"""The instance registry: leases, status overrides, eviction and the delta, as Eureka keeps them.

Plain classes with no HTTP and an injectable clock, so every rule below is unit-tested with a
fake clock. The rules are Eureka's (``AbstractInstanceRegistry``, ``Lease``, the status override
rules of ``PeerAwareInstanceRegistryImpl``), with two deliberate differences:

- **A lease expires ``duration`` after its last renewal.** Eureka's ``Lease.renew`` adds the
  duration once too often, so its instances really expire after twice the duration (a bug its
  source admits to and keeps for compatibility). Here an instance that stops heartbeating is gone
  within lease + eviction interval, which is the bound the features state.
- **The per-run eviction cap belongs to self-preservation.** Eureka evicts at most 15 % of the
  registry per eviction run even with self-preservation off; here the cap applies only when
  self-preservation is on, so an AZ outage locally evicts all of its instances in one run.

The registry is not thread-safe: the server calls it from its event loop only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from services.discovery.models import (
    ActionType,
    Application,
    Applications,
    InstanceInfo,
    InstanceStatus,
    LeaseInfo,
    reconcile_hashcode,
)

log = logging.getLogger(__name__)

Clock = Callable[[], int]
"""Milliseconds since the epoch; Eureka's timestamps are wall-clock milliseconds too."""

# Eureka counts renewals per minute to decide whether self-preservation holds back evictions.
RENEWAL_WINDOW_MS = 60_000


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """The registry's policy; defaults are scaled down from Eureka's for local use.

    ``lease_duration_s`` and ``renewal_interval_s`` apply to instances whose document has no
    leaseInfo; ``renewal_interval_s`` is also the interval the self-preservation threshold
    expects instances to renew at (Eureka's ``expectedClientRenewalIntervalSeconds``).
    """

    lease_duration_s: int = 5
    renewal_interval_s: int = 1
    self_preservation: bool = False
    renewal_percent_threshold: float = 0.85
    delta_retention_s: float = 180.0

    def __post_init__(self) -> None:
        if self.lease_duration_s < 1:
            raise ValueError(f"lease duration must be at least 1 s, got {self.lease_duration_s}")
        if self.renewal_interval_s < 1:
            raise ValueError(
                f"renewal interval must be at least 1 s, got {self.renewal_interval_s}")
        if not 0.0 < self.renewal_percent_threshold <= 1.0:
            raise ValueError("renewal percent threshold must be in (0, 1], "
                             f"got {self.renewal_percent_threshold}")
        if self.delta_retention_s <= 0:
            raise ValueError(f"delta retention must be positive, got {self.delta_retention_s}")


class Lease:
    """How long an instance stays registered without renewing, and its timestamps (epoch ms)."""

    __slots__ = ("duration_ms", "eviction_ts", "holder", "last_renewal_ts", "registration_ts",
                 "service_up_ts")

    def __init__(self, holder: InstanceInfo, duration_s: int, now: int) -> None:
        self.holder = holder
        self.duration_ms = duration_s * 1000
        self.registration_ts = now
        self.last_renewal_ts = now
        self.eviction_ts = 0
        self.service_up_ts = 0

    def renew(self, now: int) -> None:
        self.last_renewal_ts = now

    def cancel(self, now: int) -> None:
        if self.eviction_ts <= 0:
            self.eviction_ts = now

    def service_up(self, now: int) -> None:
        if self.service_up_ts == 0:
            self.service_up_ts = now

    def is_expired(self, now: int, additional_ms: int = 0) -> bool:
        return self.eviction_ts > 0 or now > self.last_renewal_ts + self.duration_ms + additional_ms

    def decorated(self) -> InstanceInfo:
        """A copy of the holder whose leaseInfo carries this lease's timestamps, for answers."""
        requested = self.holder.lease
        return self.holder.copy(LeaseInfo(
            renewal_interval_s=requested.renewal_interval_s,
            duration_s=requested.duration_s,
            registration_ts=self.registration_ts,
            last_renewal_ts=self.last_renewal_ts,
            eviction_ts=self.eviction_ts,
            service_up_ts=self.service_up_ts,
        ))


class RenewOutcome(Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    """Unknown instance, or the client's copy is newer: the client must register again."""
    CONFLICT = "conflict"
    """A peer replicated an older copy than ours: it should take ``Renewal.instance`` instead."""


@dataclass(frozen=True, slots=True)
class Renewal:
    outcome: RenewOutcome
    instance: InstanceInfo | None = None


@dataclass(frozen=True, slots=True)
class _Change:
    at_ms: int
    instance: InstanceInfo


class _RenewalRate:
    """Renewals counted per window; reports the last complete window (Eureka's MeasuredRate)."""

    def __init__(self, now: int) -> None:
        self._window_start = now
        self._current = 0
        self._last = 0

    def _roll(self, now: int) -> None:
        if now - self._window_start >= RENEWAL_WINDOW_MS:
            windows = (now - self._window_start) // RENEWAL_WINDOW_MS
            # A gap of more than one window means the window before now saw no renewals.
            self._last = self._current if windows == 1 else 0
            self._current = 0
            self._window_start += windows * RENEWAL_WINDOW_MS

    def add(self, now: int) -> None:
        self._roll(now)
        self._current += 1

    def last_window(self, now: int) -> int:
        self._roll(now)
        return self._last


class Registry:
    """Eureka's registry: application name -> instance id -> lease.

    Every mutating call says whether it came from a peer (``replication``), because Eureka's
    status rules trust a client and a peer differently. Answers are copies.
    """

    def __init__(self, settings: RegistrySettings | None = None, clock: Clock = wall_clock_ms
                 ) -> None:
        self.settings = settings or RegistrySettings()
        self._clock = clock
        self._apps: dict[str, dict[str, Lease]] = {}
        self._overrides: dict[str, InstanceStatus] = {}
        self._changes: deque[_Change] = deque()
        self._version = 0
        self._expected_clients = 0
        self._renewals = _RenewalRate(clock())

    # -- changes -------------------------------------------------------------------------------

    def register(self, info: InstanceInfo, *, replication: bool = False) -> InstanceInfo:
        """Register (or re-register) ``info``; returns what the registry now holds."""
        now = self._clock()
        # What Eureka's InstanceInfo defaults to when a document leaves these out.
        if info.last_dirty_ts <= 0:
            info.last_dirty_ts = now
        if info.lease.duration_s <= 0:
            info.lease.duration_s = self.settings.lease_duration_s
        if info.lease.renewal_interval_s <= 0:
            info.lease.renewal_interval_s = self.settings.renewal_interval_s
        leases = self._apps.setdefault(info.app, {})
        existing = leases.get(info.instance_id)
        registrant = info
        if existing is not None:
            # Keep the copy with the newer dirty timestamp; on a tie the incoming one wins.
            if existing.holder.last_dirty_ts > info.last_dirty_ts:
                log.warning("registration older than the registered copy; keeping ours",
                            extra=self._fields(info, replication))
                registrant = existing.holder
        else:
            self._expected_clients += 1
        duration = registrant.lease.duration_s
        lease = Lease(registrant, duration, now)
        if existing is not None:
            lease.service_up_ts = existing.service_up_ts
        leases[registrant.instance_id] = lease
        if (registrant.overridden_status is not InstanceStatus.UNKNOWN
                and registrant.instance_id not in self._overrides):
            self._overrides[registrant.instance_id] = registrant.overridden_status
        override = self._overrides.get(registrant.instance_id)
        if override is not None:
            registrant.overridden_status = override
        registrant.status = self._resolve_status(registrant, existing, replication)
        if registrant.status is InstanceStatus.UP:
            lease.service_up(now)
        self._changed(lease, ActionType.ADDED, now)
        log.info("instance registered", extra={
            **self._fields(registrant, replication), "event": "registered",
            "status": registrant.status.value, "lease_duration_s": duration,
            "host": registrant.host_name, "port": registrant.port})
        return lease.decorated()

    def renew(self, app: str, instance_id: str, *, replication: bool = False,
              last_dirty_ts: int | None = None,
              overridden_status: InstanceStatus | None = None) -> Renewal:
        """A heartbeat. NOT_FOUND tells the client to register again (Eureka answers 404)."""
        now = self._clock()
        lease = self._lease(app, instance_id)
        if lease is None:
            return Renewal(RenewOutcome.NOT_FOUND)
        info = lease.holder
        status = self._resolve_status(info, lease, replication)
        if status is InstanceStatus.UNKNOWN:
            # Typically a status override was deleted: the client must re-register its status.
            return Renewal(RenewOutcome.NOT_FOUND)
        info.status = status
        self._renewals.add(now)
        lease.renew(now)
        if last_dirty_ts is None or last_dirty_ts == info.last_dirty_ts:
            return Renewal(RenewOutcome.OK)
        if last_dirty_ts > info.last_dirty_ts:
            # The sender has a newer copy than ours: have it registered again.
            if (replication and overridden_status is not None
                    and overridden_status is not InstanceStatus.UNKNOWN):
                self.store_overridden_status(app, instance_id, overridden_status)
            return Renewal(RenewOutcome.NOT_FOUND)
        if replication:
            return Renewal(RenewOutcome.CONFLICT, lease.decorated())
        return Renewal(RenewOutcome.OK)

    def cancel(self, app: str, instance_id: str, *, replication: bool = False) -> bool:
        """Remove an instance that is shutting down; False when it was not registered."""
        removed = self._remove(app.upper(), instance_id)
        if removed is not None:
            log.info("instance cancelled", extra={
                **self._fields(removed, replication), "event": "cancelled"})
        return removed is not None

    def update_status(self, app: str, instance_id: str, status: InstanceStatus,
                      last_dirty_ts: int | None = None, *, replication: bool = False) -> bool:
        """Override an instance's status (``PUT .../status?value=``); False when unknown.

        The override outlives re-registrations and heartbeats until it is deleted, which is how
        an operator takes an instance out of traffic while it keeps running.
        """
        now = self._clock()
        lease = self._lease(app, instance_id)
        if lease is None:
            return False
        lease.renew(now)
        info = lease.holder
        if info.status is not status:
            if status is InstanceStatus.UP:
                lease.service_up(now)
            self._overrides[instance_id] = status
            info.overridden_status = status
            info.status = status
            if last_dirty_ts is not None and last_dirty_ts > info.last_dirty_ts:
                info.last_dirty_ts = last_dirty_ts
            self._changed(lease, ActionType.MODIFIED, now)
            log.info("instance status overridden", extra={
                **self._fields(info, replication), "event": "status_overridden",
                "status": status.value})
        return True

    def delete_status_override(self, app: str, instance_id: str,
                               status: InstanceStatus = InstanceStatus.UNKNOWN,
                               last_dirty_ts: int | None = None, *,
                               replication: bool = False) -> bool:
        """Drop an override; the instance takes ``status`` until it tells its own again."""
        now = self._clock()
        lease = self._lease(app, instance_id)
        if lease is None:
            return False
        lease.renew(now)
        info = lease.holder
        if self._overrides.pop(instance_id, None) is not None:
            info.overridden_status = InstanceStatus.UNKNOWN
            info.status = status
            if last_dirty_ts is not None and last_dirty_ts > info.last_dirty_ts:
                info.last_dirty_ts = last_dirty_ts
            self._changed(lease, ActionType.MODIFIED, now)
            log.info("instance status override removed", extra={
                **self._fields(info, replication), "event": "status_override_removed",
                "status": status.value})
        return True

    def update_metadata(self, app: str, instance_id: str, entries: Mapping[str, str]
                        ) -> InstanceInfo | None:
        """Add or replace metadata entries, then re-register (as Eureka does, so peers follow)."""
        lease = self._lease(app, instance_id)
        if lease is None:
            return None
        info = lease.holder.copy()
        info.metadata.update(entries)
        return self.register(info, replication=False)

    def store_overridden_status(self, app: str, instance_id: str, status: InstanceStatus) -> None:
        """Adopt a peer's override we did not know about (e.g. after this server restarted)."""
        if self._overrides.get(instance_id) is status:
            return
        self._overrides[instance_id] = status
        lease = self._lease(app, instance_id)
        if lease is not None:
            lease.holder.overridden_status = status

    def evict(self, additional_ms: int = 0) -> list[InstanceInfo]:
        """Remove instances whose lease expired; returns them.

        ``additional_ms`` extends every lease by how late the eviction task ran, so a server
        that was paused (and could not take heartbeats) does not then evict everyone.
        """
        now = self._clock()
        self._prune_changes(now)
        if not self.lease_expiration_enabled():
            log.debug("lease expiration held back by self-preservation")
            return []
        expired = [lease for leases in self._apps.values() for lease in leases.values()
                   if lease.is_expired(now, additional_ms)]
        if self.settings.self_preservation and expired:
            size = self.size
            limit = size - int(size * self.settings.renewal_percent_threshold)
            if len(expired) > limit:
                # Random, as Eureka does, so one application is not wiped out before the others.
                expired = random.sample(expired, limit)
        evicted: list[InstanceInfo] = []
        for lease in expired:
            info = lease.holder
            overdue_ms = now - (lease.last_renewal_ts + lease.duration_ms)
            removed = self._remove(info.app, info.instance_id)
            if removed is not None:
                evicted.append(removed)
                log.warning("instance evicted: lease expired", extra={
                    **self._fields(removed, False), "event": "evicted",
                    "lease_duration_s": lease.duration_ms // 1000,
                    "last_renewal_ts": lease.last_renewal_ts, "overdue_ms": overdue_ms})
        return evicted

    # -- self-preservation ---------------------------------------------------------------------

    @property
    def renewal_threshold(self) -> int:
        """Renewals per minute below which self-preservation stops evictions."""
        per_minute = 60.0 / self.settings.renewal_interval_s
        return int(self._expected_clients * per_minute * self.settings.renewal_percent_threshold)

    def lease_expiration_enabled(self) -> bool:
        """Whether expired leases may be evicted now (always, unless self-preservation is on).

        With self-preservation on, Eureka stops evicting when fewer renewals arrived in the last
        minute than expected: the server assumes it is the one cut off, not its clients.
        """
        if not self.settings.self_preservation:
            return True
        threshold = self.renewal_threshold
        return threshold > 0 and self._renewals.last_window(self._clock()) > threshold

    # -- queries -------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return sum(len(leases) for leases in self._apps.values())

    @property
    def version(self) -> int:
        """Bumped on every change clients see in the delta (registrations, cancels, statuses)."""
        return self._version

    def instance(self, app: str, instance_id: str) -> InstanceInfo | None:
        lease = self._lease(app, instance_id)
        if lease is None or (lease.is_expired(self._clock()) and self.lease_expiration_enabled()):
            return None
        return lease.decorated()

    def instances_by_id(self, instance_id: str) -> list[InstanceInfo]:
        now = self._clock()
        expiring = self.lease_expiration_enabled()
        return [leases[instance_id].decorated() for leases in self._apps.values()
                if instance_id in leases and not (expiring and leases[instance_id].is_expired(now))]

    def application(self, app: str) -> Application | None:
        leases = self._apps.get(app.upper())
        if not leases:
            return None
        return Application(app.upper(), tuple(lease.decorated() for lease in leases.values()))

    def applications(self) -> Applications:
        """The whole registry, every status included (clients filter UP themselves)."""
        apps = tuple(Application(name, tuple(lease.decorated() for lease in leases.values()))
                     for name, leases in self._apps.items() if leases)
        return Applications(1, self._hashcode(), apps)

    def delta(self) -> Applications:
        """What changed within the retention window, latest state per instance, with the hash
        of the *whole* registry so a client can tell whether applying the delta made it right.
        """
        self._prune_changes(self._clock())
        latest: dict[tuple[str, str], InstanceInfo] = {}
        for change in self._changes:
            latest[(change.instance.app, change.instance.instance_id)] = change.instance
        by_app: dict[str, list[InstanceInfo]] = {}
        for (app, _), instance in latest.items():
            by_app.setdefault(app, []).append(instance.copy())
        apps = tuple(Application(name, tuple(instances)) for name, instances in by_app.items())
        return Applications(self._version, self._hashcode(), apps)

    def vip(self, address: str, *, secure: bool = False) -> Applications:
        """Instances whose (secure) VIP address list contains ``address``, grouped by app."""
        grouped: list[Application] = []
        for name, leases in self._apps.items():
            matching = tuple(
                lease.decorated() for lease in leases.values()
                if address in _vip_names(lease.holder.secure_vip_address if secure
                                         else lease.holder.vip_address))
            if matching:
                grouped.append(Application(name, matching))
        instances = [instance for app in grouped for instance in app.instances]
        return Applications(-1, reconcile_hashcode(instances), tuple(grouped))

    # -- internals -----------------------------------------------------------------------------

    def _lease(self, app: str, instance_id: str) -> Lease | None:
        leases = self._apps.get(app.upper())
        return None if leases is None else leases.get(instance_id)

    def _remove(self, app: str, instance_id: str) -> InstanceInfo | None:
        now = self._clock()
        leases = self._apps.get(app)
        lease = None if leases is None else leases.pop(instance_id, None)
        self._overrides.pop(instance_id, None)
        if lease is None:
            return None
        if leases is not None and not leases:
            del self._apps[app]
        self._expected_clients = max(0, self._expected_clients - 1)
        lease.cancel(now)
        self._changed(lease, ActionType.DELETED, now)
        return lease.holder.copy()

    def _changed(self, lease: Lease, action: ActionType, now: int) -> None:
        lease.holder.action_type = action
        lease.holder.last_updated_ts = now
        self._version += 1
        self._changes.append(_Change(now, lease.decorated()))
        self._prune_changes(now)

    def _prune_changes(self, now: int) -> None:
        horizon = now - int(self.settings.delta_retention_s * 1000)
        while self._changes and self._changes[0].at_ms < horizon:
            self._changes.popleft()

    def _hashcode(self) -> str:
        return reconcile_hashcode(
            [lease.holder for leases in self._apps.values() for lease in leases.values()])

    def _resolve_status(self, info: InstanceInfo, existing: Lease | None,
                        replication: bool) -> InstanceStatus:
        """Eureka's status rules, first match wins.

        1. DOWN, STARTING or UNKNOWN from the instance (or a peer) is believed as is.
        2. An operator's override wins over UP / OUT_OF_SERVICE.
        3. A client (not a peer) saying UP does not undo an UP / OUT_OF_SERVICE already held.
        4. Otherwise the instance's own status.
        """
        if info.status not in (InstanceStatus.UP, InstanceStatus.OUT_OF_SERVICE):
            return info.status
        override = self._overrides.get(info.instance_id)
        if override is not None:
            return override
        if (not replication and existing is not None
                and existing.holder.status in (InstanceStatus.UP, InstanceStatus.OUT_OF_SERVICE)):
            return existing.holder.status
        return info.status

    @staticmethod
    def _fields(info: InstanceInfo, replication: bool) -> dict[str, object]:
        return {"app": info.app, "instance_id": info.instance_id, "replication": replication}


def _vip_names(addresses: str | None) -> Iterable[str]:
    return () if not addresses else addresses.split(",")


async def evict_periodically(registry: Registry, interval_s: float) -> None:
    """Run `Registry.evict` every ``interval_s`` until cancelled (Eureka's EvictionTask).

    When a run comes late (the server was paused or busy), the delay is added to every lease
    for that run: heartbeats could not be taken during the pause either.
    """
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        await asyncio.sleep(interval_s)
        now = loop.time()
        late_ms = max(0, int((now - last - interval_s) * 1000))
        last = now
        try:
            registry.evict(late_ms)
        except Exception:  # the next run must still happen
            log.exception("eviction run failed", extra={"event": "eviction_failed"})
