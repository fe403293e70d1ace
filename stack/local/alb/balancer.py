"""ALB operations as HAProxy runtime-API commands: the `LoadBalancer` of the local cloud.

Registration. HAProxy starts a dynamic server in maintenance and, once enabled, considers it
up before any check has run; an ALB target gets no traffic until it has passed the healthy
threshold. So a target is added, its checks enabled, moved to drain (out of load balancing),
forced down, and only then made ready: it takes requests after `rise` passing checks, as an
ALB target leaves ``initial``.

Deregistration. The target is put in drain at once (no new requests; requests in flight
finish), and a timer removes it after the deregistration delay (maintenance, remaining sessions
cut as an ALB cuts them, ``del server``). The caller does not wait. Pending removals are also
written down, so any later call — from this process or another — finishes a removal whose
timer died with its process.

The forward action (`switch`, `set_weights`) is one map entry that every request reads once;
``set map`` replaces it in one step, so each request sees the old action or the new one.

What must outlive HAProxy — the forward action and the registered targets — is kept in a small
JSON file in the workspace (`ListenerStore`); the component renders the map from it before
HAProxy starts and registers the targets again once it answers.
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stack.local.alb.config import (
    ACTIVE_KEY,
    forward_action,
    parse_forward_action,
    render_listener_map,
    server_options,
)
from stack.local.alb.runtime_api import (
    CheckResult,
    OpState,
    RuntimeApi,
    RuntimeApiError,
    RuntimeApiUnavailable,
    ServerState,
    ServerStats,
)
from stack.local.alb.targets import Target, TargetHealth, heavier, normalised_weights
from stack.model.edge import Colour
from stack.model.load_balancer import LocalLoadBalancer

log = logging.getLogger(__name__)

# Registration forces the new server down once (see the module docstring): a server whose
# count of UP -> DOWN transitions is still this has never been healthy since it was registered.
REGISTRATION_DOWN_TRANSITIONS = 1
# A removal whose timer should have run this long ago is finished by whoever calls next.
SWEEP_GRACE_S = 1.0
# `del server` waits until HAProxy has released the server's connections.
REMOVAL_PATIENCE_S = 3.0
FULL_WEIGHT = 100  # a switch forwards everything to one colour: weights 100 / 0


class TargetConflict(ValueError):
    """A target id is already registered in the group, at another address."""


@dataclass
class ListenerState:
    """What the ALB must remember across HAProxy restarts."""

    active: Colour = Colour.BLUE
    weights: dict[Colour, int] = field(
        default_factory=lambda: {Colour.BLUE: FULL_WEIGHT, Colour.GREEN: 0})
    targets: list[Target] = field(default_factory=list)
    # "group/target_id" -> when its removal is due (Unix time), for targets being drained
    draining: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({
            "active": self.active.value,
            "weights": {colour.value: weight for colour, weight in self.weights.items()},
            "targets": [asdict(target) for target in self.targets],
            "draining": self.draining,
        }, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ListenerState:
        raw = json.loads(text)
        return cls(
            active=Colour(raw["active"]),
            weights=normalised_weights({Colour(c): int(w) for c, w in raw["weights"].items()}),
            targets=[Target(**item) for item in raw["targets"]],
            draining={str(k): float(v) for k, v in raw.get("draining", {}).items()},
        )


class ListenerStore:
    """`ListenerState` in a JSON file, changed under an exclusive lock (several processes —
    the control plane, the CLI, a test — may drive the same ALB)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_suffix(".lock")

    def read(self) -> ListenerState:
        try:
            return ListenerState.from_json(self.path.read_text())
        except FileNotFoundError:
            return ListenerState()
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{self.path} is not a listener state file ({err}); remove it to "
                             f"start from blue with no targets") from err

    @contextmanager
    def update(self) -> Iterator[ListenerState]:
        """Read, let the caller change, write back atomically — all under the file lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read()
            yield state
            scratch = self.path.with_suffix(".tmp")
            scratch.write_text(state.to_json())
            scratch.replace(self.path)


def key_of(group: str, target_id: str) -> str:
    return f"{group}/{target_id}"


def classify(row: ServerState, stats: ServerStats | None, removing: bool) -> TargetHealth:
    """ELBv2's target health from what HAProxy says about one server.

    ``removing``: a deregistration is pending for it (its drain may have reached maintenance).
    """
    if row.admin.draining or (removing and row.admin.in_maintenance):
        return TargetHealth.DRAINING
    if row.admin.in_maintenance:
        return TargetHealth.UNUSED
    if row.op_state in (OpState.RUNNING, OpState.STARTING):
        return TargetHealth.HEALTHY
    if row.op_state is OpState.STOPPING:
        return TargetHealth.DRAINING  # up, but refusing new requests
    was_up = stats is not None and stats.down_transitions > REGISTRATION_DOWN_TRANSITIONS
    if was_up or row.check_result is CheckResult.FAILED:
        return TargetHealth.UNHEALTHY
    return TargetHealth.INITIAL


class RuntimeLoadBalancer:
    """`LoadBalancer` over HAProxy's runtime API; usable from any process of the workspace."""

    def __init__(self, lb: LocalLoadBalancer, api: RuntimeApi, store: ListenerStore,
                 map_path: Path, clock: Callable[[], float] = time.time) -> None:
        self.lb = lb
        self.api = api
        self.store = store
        self.map_path = map_path
        self.clock = clock
        self._lock = threading.RLock()

    # -- target groups --------------------------------------------------------------------

    def group_of(self, service: str, colour: Colour) -> str:
        return self.lb.group_of(service, colour)

    def _check_group(self, group: str) -> None:
        if group not in self.lb.target_groups:
            raise KeyError(f"no target group {group!r}; known: {list(self.lb.target_groups)}")

    def _server(self, group: str, target_id: str) -> ServerState | None:
        return next((row for row in self.api.servers_state(group) if row.server == target_id),
                    None)

    def register(self, target: Target) -> None:
        self._check_group(target.group)
        with self._lock:
            self._sweep()
            existing = self._server(target.group, target.target_id)
            if existing is None:
                try:
                    self._add(target)
                except RuntimeApiError as err:
                    if "already exists" not in err.answer.lower():
                        raise
                    existing = self._server(target.group, target.target_id)  # a racing caller
            if existing is not None:
                self._register_existing(target, existing)
            with self.store.update() as state:
                state.draining.pop(key_of(target.group, target.target_id), None)
                if target not in state.targets:
                    state.targets = [t for t in state.targets if (t.group, t.target_id)
                                     != (target.group, target.target_id)] + [target]

    def _add(self, target: Target) -> None:
        group, name = target.group, target.target_id
        self.api.add_server(group, name, target.host, target.port,
                            server_options(self.lb.health))
        try:
            self.api.enable_health(group, name)
            self.api.set_server_state(group, name, "drain")  # out of maintenance, no traffic
            self.api.set_server_health(group, name, "down")  # now `rise` checks must pass
            self.api.set_server_state(group, name, "ready")
        except RuntimeApiError:
            self._remove_now(group, name)
            raise

    def _register_existing(self, target: Target, existing: ServerState) -> None:
        if (existing.address, existing.port) != (target.host, target.port):
            raise TargetConflict(
                f"{target.target_id} is registered in {target.group} at "
                f"{existing.address}:{existing.port}, not {target.address}: deregister it first")
        if existing.admin.draining or existing.admin.in_maintenance:
            # Registered again while draining: back in service, as it was before.
            self.api.set_server_state(target.group, target.target_id, "ready")

    def deregister(self, target: Target) -> None:
        self._check_group(target.group)
        with self._lock:
            self._sweep()
            key = key_of(target.group, target.target_id)
            with self.store.update() as state:
                state.targets = [t for t in state.targets
                                 if (t.group, t.target_id) != (target.group, target.target_id)]
                existing = self._server(target.group, target.target_id)
                if existing is None or key in state.draining:
                    return
                self.api.set_server_state(target.group, target.target_id, "drain")
                due = self.clock() + self.lb.deregistration_delay_s
                state.draining[key] = due
        timer = threading.Timer(self.lb.deregistration_delay_s, self._finish_removal,
                                args=(target.group, target.target_id, due))
        timer.daemon = True
        timer.start()

    def _finish_removal(self, group: str, target_id: str, due: float) -> None:
        """The deregistration delay is over: remove the target unless it came back."""
        key = key_of(group, target_id)
        try:
            with self._lock, self.store.update() as state:
                if state.draining.get(key) != due:
                    return  # registered again, or already removed by a sweep
                self._remove_now(group, target_id)
                del state.draining[key]
        except (RuntimeApiError, OSError) as err:
            log.warning("alb: could not finish deregistering %s: %s", key, err)

    def _sweep(self) -> None:
        """Finish removals whose timers did not run (their process ended)."""
        state = self.store.read()
        overdue = [key for key, due in state.draining.items()
                   if due + SWEEP_GRACE_S < self.clock()]
        for key in overdue:
            group, _, target_id = key.partition("/")
            self._finish_removal(group, target_id, state.draining[key])

    def _remove_now(self, group: str, target_id: str) -> None:
        """Maintenance, cut what is left, delete; a server already gone is fine."""
        try:
            self.api.set_server_state(group, target_id, "maint")
        except RuntimeApiError as err:
            if "no such server" in err.answer.lower():
                return
            raise
        self.api.shutdown_sessions(group, target_id)
        deadline = time.monotonic() + REMOVAL_PATIENCE_S
        while True:
            try:
                self.api.del_server(group, target_id)
                return
            except RuntimeApiUnavailable:
                raise
            except RuntimeApiError:
                # HAProxy keeps a deleted server's idle connections briefly; they go soon.
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    def health(self, group: str) -> dict[str, TargetHealth]:
        self._check_group(group)
        with self._lock:
            self._sweep()
        rows = self.api.servers_state(group)
        stats = {row.server: row for row in self.api.server_stats(group)}
        removing = self.store.read().draining
        return {row.server: classify(row, stats.get(row.server),
                                     key_of(group, row.server) in removing)
                for row in rows}

    def registered(self) -> list[Target]:
        return list(self.store.read().targets)

    def restore(self) -> None:
        """Register again every target remembered (after HAProxy started afresh)."""
        for target in self.registered():
            self.register(target)

    # -- the listener ---------------------------------------------------------------------

    def active_colour(self) -> Colour:
        """What the listener forwards to now; while HAProxy is down, what it will at start."""
        try:
            value = self.api.get_map(self.map_path, ACTIVE_KEY)
        except RuntimeApiUnavailable:
            value = None
        if value is None:
            return self.store.read().active
        return parse_forward_action(value)[0]

    def weights(self) -> dict[Colour, int]:
        return dict(self.store.read().weights)

    def switch(self, colour: Colour) -> None:
        self._forward(colour, {colour: FULL_WEIGHT, colour.other: 0})

    def set_weights(self, weights: Mapping[Colour, int]) -> None:
        full = normalised_weights(weights)
        with self._lock:
            self._forward(heavier(full, self.store.read().active), full)

    def _forward(self, active: Colour, weights: dict[Colour, int]) -> None:
        with self._lock, self.store.update() as state:
            self.api.set_map(self.map_path, ACTIVE_KEY, forward_action(active, weights))
            state.active, state.weights = active, weights
            write_listener_map(self.map_path, state)

    def prepare_start(self) -> None:
        """Before HAProxy starts: the map from what was remembered; no removal is pending
        (a new HAProxy has no servers)."""
        with self.store.update() as state:
            state.draining.clear()
            write_listener_map(self.map_path, state)


def write_listener_map(path: Path, state: ListenerState) -> None:
    """The map file HAProxy reads at start; kept equal to the live map for people to read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(render_listener_map(state.active, state.weights))
    scratch.replace(path)
