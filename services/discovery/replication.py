"""Peer replication: every change a client makes on one discovery server reaches the others.

This is Eureka's ``PeerAwareInstanceRegistryImpl`` and ``PeerEurekaNode`` over the same REST
calls clients use, marked with ``x-netflix-discovery-replication: true`` so that the receiving
server applies the change without passing it on again (no replication loops) and applies the
status rules meant for peers. What Eureka does, and so what this does:

- registrations, heartbeats, cancellations and status changes are replicated; evictions are
  not (each server evicts on its own clock);
- a replicated heartbeat that the peer answers 404 (it does not know the instance, e.g. it
  restarted) is followed by a registration of our copy; a 409 means the peer's copy is newer,
  and we take it;
- at start-up a server copies the whole registry from the first peer that answers.

Each peer has its own queue, drained in order by one task, so a slow or dead peer never delays
a client's answer. A change that cannot be delivered is dropped, not retried: the heartbeats
that follow every second repair the peer (404 -> registration) once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import quote

import httpx

from services.discovery.codec import (
    JSON_MEDIA_TYPE,
    DocumentError,
    instance_json,
    parse_applications_json,
    parse_instance_json,
)
from services.discovery.models import InstanceInfo, InstanceStatus
from services.discovery.registry import Registry, Renewal, RenewOutcome

log = logging.getLogger(__name__)

REPLICATION_HEADER = "x-netflix-discovery-replication"


class Action(Enum):
    REGISTER = "register"
    HEARTBEAT = "heartbeat"
    CANCEL = "cancel"
    STATUS_UPDATE = "status_update"
    DELETE_STATUS_OVERRIDE = "delete_status_override"


@dataclass(frozen=True, slots=True)
class ReplicationTask:
    """One change to pass on. ``instance`` is our copy at the time of the change."""

    action: Action
    app: str
    instance_id: str
    instance: InstanceInfo | None = None
    status: InstanceStatus | None = None
    # A heartbeat is worthless once the next one is due (monotonic seconds); None: never stale.
    expires_at: float | None = None


class PeerNode:
    """One peer server: its queue of changes and the task that sends them in order."""

    def __init__(self, url: str, http: httpx.AsyncClient, registry: Registry,
                 queue_size: int) -> None:
        self.url = url
        self._http = http
        self._registry = registry
        self._queue: asyncio.Queue[ReplicationTask] = asyncio.Queue(queue_size)
        self._reachable: bool | None = None
        self.dropped = 0

    def submit(self, task: ReplicationTask) -> None:
        try:
            self._queue.put_nowait(task)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("replication queue full: dropping changes for a peer", extra={
                    "event": "replication_dropped", "peer": self.url, "dropped": self.dropped})

    async def run(self) -> None:
        """Send queued changes until cancelled."""
        while True:
            task = await self._queue.get()
            try:
                if task.expires_at is not None and time.monotonic() > task.expires_at:
                    continue
                await self.send(task)
            except Exception:  # one bad change must not stop replication to this peer
                log.exception("replication failed", extra={
                    "event": "replication_failed", "peer": self.url,
                    "action": task.action.value, "app": task.app,
                    "instance_id": task.instance_id})
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until everything queued so far has been sent (or dropped)."""
        await self._queue.join()

    async def send(self, task: ReplicationTask) -> None:
        try:
            response = await self._request(task)
        except httpx.HTTPError as error:
            self._mark(False, f"{type(error).__name__}: {error}")
            return
        self._mark(True, f"HTTP {response.status_code}")
        if task.action is Action.HEARTBEAT:
            await self._after_heartbeat(task, response)
        elif response.status_code >= 400 and response.status_code != 404:
            log.warning("peer refused a replicated change", extra={
                "event": "replication_refused", "peer": self.url, "action": task.action.value,
                "app": task.app, "instance_id": task.instance_id,
                "status": response.status_code, "body": response.text[:200]})

    async def _request(self, task: ReplicationTask) -> httpx.Response:
        headers = {REPLICATION_HEADER: "true", "Accept": JSON_MEDIA_TYPE}
        app_url = f"{self.url}/apps/{quote(task.app, safe='')}"
        instance_url = f"{app_url}/{quote(task.instance_id, safe='')}"
        info = task.instance
        if task.action is Action.REGISTER:
            assert info is not None
            return await self._http.post(
                app_url, json={"instance": instance_json(info)}, headers=headers)
        if task.action is Action.CANCEL:
            return await self._http.delete(instance_url, headers=headers)
        assert info is not None
        params: dict[str, str] = {"lastDirtyTimestamp": str(info.last_dirty_ts)}
        if task.action is Action.HEARTBEAT:
            params["status"] = info.status.value
            if info.overridden_status is not InstanceStatus.UNKNOWN:
                params["overriddenstatus"] = info.overridden_status.value
            return await self._http.put(instance_url, params=params, headers=headers)
        assert task.status is not None
        params["value"] = task.status.value
        if task.action is Action.STATUS_UPDATE:
            return await self._http.put(f"{instance_url}/status", params=params, headers=headers)
        return await self._http.delete(f"{instance_url}/status", params=params, headers=headers)

    async def _after_heartbeat(self, task: ReplicationTask, response: httpx.Response) -> None:
        if response.status_code == 404 and task.instance is not None:
            # The peer lost the instance (restart, missed registration): give it our copy.
            await self.send(ReplicationTask(Action.REGISTER, task.app, task.instance_id,
                                            task.instance))
        elif response.status_code == 409:
            # The peer's copy is newer than ours: take it, override included.
            try:
                theirs = parse_instance_json(response.content)
            except DocumentError as error:
                log.warning("peer sent an unreadable instance with a 409", extra={
                    "event": "replication_refused", "peer": self.url, "error": str(error)})
                return
            if theirs.overridden_status is not InstanceStatus.UNKNOWN:
                self._registry.store_overridden_status(theirs.app, theirs.instance_id,
                                                       theirs.overridden_status)
            self._registry.register(theirs, replication=True)

    def _mark(self, reachable: bool, seen: str) -> None:
        """Log a peer going away or coming back once, not once per heartbeat."""
        if reachable == self._reachable:
            return
        self._reachable = reachable
        if reachable:
            log.info("peer reachable", extra={"event": "peer_up", "peer": self.url})
        else:
            log.warning("peer unreachable; its changes are dropped until it answers",
                        extra={"event": "peer_down", "peer": self.url, "error": seen})


class PeerAwareRegistry:
    """The registry as the HTTP API sees it: client changes are applied, then replicated.

    Changes that arrive from a peer (``replication=True``) are applied only.
    """

    def __init__(self, registry: Registry, peers: Sequence[str], http: httpx.AsyncClient,
                 queue_size: int = 10_000) -> None:
        self.registry = registry
        self.http = http
        self.peers = [PeerNode(url, http, registry, queue_size) for url in peers]

    def register(self, info: InstanceInfo, *, replication: bool) -> InstanceInfo:
        registered = self.registry.register(info, replication=replication)
        if not replication:
            self._replicate(ReplicationTask(Action.REGISTER, registered.app,
                                            registered.instance_id, registered))
        return registered

    def renew(self, app: str, instance_id: str, *, replication: bool,
              last_dirty_ts: int | None = None,
              overridden_status: InstanceStatus | None = None) -> Renewal:
        renewal = self.registry.renew(app, instance_id, replication=replication,
                                      last_dirty_ts=last_dirty_ts,
                                      overridden_status=overridden_status)
        if renewal.outcome is RenewOutcome.NOT_FOUND or replication or not self.peers:
            return renewal
        ours = self.registry.instance(app, instance_id)
        if ours is not None:
            # Ours, not what the client sent: a peer must end up with the registry's view.
            due = time.monotonic() + ours.lease.renewal_interval_s
            self._replicate(ReplicationTask(Action.HEARTBEAT, ours.app, instance_id, ours,
                                            expires_at=due))
        return renewal

    def cancel(self, app: str, instance_id: str, *, replication: bool) -> bool:
        cancelled = self.registry.cancel(app, instance_id, replication=replication)
        if cancelled and not replication:
            self._replicate(ReplicationTask(Action.CANCEL, app.upper(), instance_id))
        return cancelled

    def update_status(self, app: str, instance_id: str, status: InstanceStatus,
                      last_dirty_ts: int | None, *, replication: bool) -> bool:
        updated = self.registry.update_status(app, instance_id, status, last_dirty_ts,
                                              replication=replication)
        self._replicate_status(Action.STATUS_UPDATE, app, instance_id, status,
                               updated and not replication)
        return updated

    def delete_status_override(self, app: str, instance_id: str, status: InstanceStatus,
                               last_dirty_ts: int | None, *, replication: bool) -> bool:
        deleted = self.registry.delete_status_override(app, instance_id, status, last_dirty_ts,
                                                       replication=replication)
        self._replicate_status(Action.DELETE_STATUS_OVERRIDE, app, instance_id, status,
                               deleted and not replication)
        return deleted

    def update_metadata(self, app: str, instance_id: str, entries: Mapping[str, str]
                        ) -> bool:
        registered = self.registry.update_metadata(app, instance_id, entries)
        if registered is None:
            return False
        self._replicate(ReplicationTask(Action.REGISTER, registered.app, instance_id,
                                        registered))
        return True

    async def sync_from_peers(self) -> int:
        """Copy the registry of the first peer that answers; returns how many instances.

        Eureka does this before it opens for traffic, so a restarted server answers with the
        whole registry at once instead of filling up as heartbeats come in.
        """
        for peer in self.peers:
            try:
                response = await self.http.get(
                    f"{peer.url}/apps", headers={"Accept": JSON_MEDIA_TYPE})
                response.raise_for_status()
                instances = parse_applications_json(response.content)
            except (httpx.HTTPError, DocumentError) as error:
                log.info("peer did not answer the start-up sync", extra={
                    "event": "sync_skipped", "peer": peer.url,
                    "error": f"{type(error).__name__}: {error}"})
                continue
            for instance in instances:
                self.registry.register(instance, replication=True)
            log.info("registry copied from a peer", extra={
                "event": "synced", "peer": peer.url, "instances": len(instances)})
            return len(instances)
        if self.peers:
            log.info("no peer answered: starting with an empty registry",
                     extra={"event": "sync_skipped", "peers": [p.url for p in self.peers]})
        return 0

    async def run(self) -> None:
        """Run every peer's sender until cancelled."""
        senders = [asyncio.create_task(peer.run(), name=f"replicate-to-{peer.url}")
                   for peer in self.peers]
        try:
            if senders:
                await asyncio.gather(*senders)
            else:
                await asyncio.Event().wait()
        finally:
            for sender in senders:
                sender.cancel()
            for sender in senders:
                with contextlib.suppress(asyncio.CancelledError):
                    await sender

    def _replicate_status(self, action: Action, app: str, instance_id: str,
                          status: InstanceStatus, replicate: bool) -> None:
        if not replicate:
            return
        ours = self.registry.instance(app, instance_id)
        if ours is not None:
            self._replicate(ReplicationTask(action, ours.app, instance_id, ours, status))

    def _replicate(self, task: ReplicationTask) -> None:
        for peer in self.peers:
            peer.submit(task)
