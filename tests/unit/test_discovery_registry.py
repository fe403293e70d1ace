"""The registry's rules with a fake clock: leases, renewals, overrides, eviction, delta."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.discovery.models import (
    ActionType,
    InstanceInfo,
    InstanceStatus,
    LeaseInfo,
    reconcile_hashcode,
)
from services.discovery.registry import (
    RENEWAL_WINDOW_MS,
    Registry,
    RegistrySettings,
    RenewOutcome,
)

START_MS = 1_700_000_000_000


@dataclass
class FakeClock:
    now: int = START_MS

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


def instance(app: str = "user-service", instance_id: str = "u1", *,
             status: InstanceStatus = InstanceStatus.UP, duration_s: int = 0,
             last_dirty_ts: int = 0, vip: str | None = None) -> InstanceInfo:
    return InstanceInfo(
        instance_id=instance_id, app=app.upper(), host_name="127.0.1.61", ip_addr="127.0.1.61",
        lease=LeaseInfo(renewal_interval_s=0, duration_s=duration_s), status=status, port=8081,
        last_dirty_ts=last_dirty_ts, vip_address=vip, metadata={"zone": "AZ-a"})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(clock: FakeClock) -> Registry:
    return Registry(RegistrySettings(lease_duration_s=5), clock)


def test_register_fills_lease_defaults_and_timestamps(registry: Registry, clock: FakeClock) -> None:
    registered = registry.register(instance())
    assert registered.app == "USER-SERVICE"
    assert registered.lease.duration_s == 5  # the settings' default: the document had none
    assert registered.lease.renewal_interval_s == 1
    assert registered.lease.registration_ts == START_MS
    assert registered.lease.service_up_ts == START_MS
    assert registered.last_dirty_ts == START_MS
    assert registered.action_type is ActionType.ADDED
    assert registry.instance("user-service", "u1") is not None  # names are case-insensitive


def test_the_document_lease_duration_wins_over_the_default(registry: Registry) -> None:
    assert registry.register(instance(duration_s=9)).lease.duration_s == 9


def test_renew_keeps_the_lease_alive_and_unknown_renewals_are_not_found(
        registry: Registry, clock: FakeClock) -> None:
    registry.register(instance())
    clock.advance(4)
    assert registry.renew("USER-SERVICE", "u1").outcome is RenewOutcome.OK
    clock.advance(4)
    assert registry.evict() == []  # 8 s after registering, 4 s after the renewal
    held = registry.instance("USER-SERVICE", "u1")
    assert held is not None and held.lease.last_renewal_ts == START_MS + 4000
    assert registry.renew("USER-SERVICE", "nobody").outcome is RenewOutcome.NOT_FOUND


def test_an_instance_that_stops_renewing_is_evicted_after_its_lease(
        registry: Registry, clock: FakeClock) -> None:
    registry.register(instance())
    clock.advance(5)
    assert registry.evict() == []  # exactly at the lease's end it still holds
    clock.advance(0.001)
    evicted = registry.evict()
    assert [i.instance_id for i in evicted] == ["u1"]
    assert registry.application("USER-SERVICE") is None
    assert registry.renew("USER-SERVICE", "u1").outcome is RenewOutcome.NOT_FOUND


def test_a_late_eviction_run_extends_leases_by_its_delay(
        registry: Registry, clock: FakeClock) -> None:
    registry.register(instance())
    clock.advance(6)
    assert registry.evict(additional_ms=2000) == []
    assert len(registry.evict()) == 1


def test_cancel_removes_and_is_false_for_unknown(registry: Registry) -> None:
    registry.register(instance())
    assert registry.cancel("user-service", "u1") is True
    assert registry.cancel("user-service", "u1") is False
    assert registry.applications().applications == ()


def test_renewal_with_a_newer_dirty_timestamp_asks_for_registration(
        registry: Registry) -> None:
    registry.register(instance(last_dirty_ts=100))
    assert registry.renew("USER-SERVICE", "u1", last_dirty_ts=100).outcome is RenewOutcome.OK
    assert registry.renew("USER-SERVICE", "u1", last_dirty_ts=200).outcome \
        is RenewOutcome.NOT_FOUND
    # An older copy from a client is fine; from a peer it is a conflict carrying ours.
    assert registry.renew("USER-SERVICE", "u1", last_dirty_ts=50).outcome is RenewOutcome.OK
    conflict = registry.renew("USER-SERVICE", "u1", last_dirty_ts=50, replication=True)
    assert conflict.outcome is RenewOutcome.CONFLICT
    assert conflict.instance is not None and conflict.instance.last_dirty_ts == 100


def test_an_older_registration_does_not_replace_a_newer_one(registry: Registry) -> None:
    registry.register(instance(last_dirty_ts=200, status=InstanceStatus.UP))
    registry.register(instance(last_dirty_ts=100, status=InstanceStatus.DOWN))
    held = registry.instance("USER-SERVICE", "u1")
    assert held is not None
    assert held.status is InstanceStatus.UP and held.last_dirty_ts == 200


def test_status_override_outlives_registration_and_heartbeats(
        registry: Registry) -> None:
    registry.register(instance())
    assert registry.update_status("USER-SERVICE", "u1", InstanceStatus.OUT_OF_SERVICE)
    registry.register(instance(last_dirty_ts=START_MS + 1))  # the client re-registers as UP
    assert registry.renew("USER-SERVICE", "u1").outcome is RenewOutcome.OK
    held = registry.instance("USER-SERVICE", "u1")
    assert held is not None
    assert held.status is InstanceStatus.OUT_OF_SERVICE
    assert held.overridden_status is InstanceStatus.OUT_OF_SERVICE
    assert not registry.update_status("USER-SERVICE", "nobody", InstanceStatus.UP)


def test_deleting_the_override_makes_the_client_register_its_own_status(
        registry: Registry) -> None:
    registry.register(instance())
    registry.update_status("USER-SERVICE", "u1", InstanceStatus.OUT_OF_SERVICE)
    assert registry.delete_status_override("USER-SERVICE", "u1")
    held = registry.instance("USER-SERVICE", "u1")
    assert held is not None and held.status is InstanceStatus.UNKNOWN
    # UNKNOWN after a deleted override: the next heartbeat is told to register again ...
    assert registry.renew("USER-SERVICE", "u1").outcome is RenewOutcome.NOT_FOUND
    # ... and the registration's UP is taken, since no override is left.
    registry.register(instance(last_dirty_ts=START_MS + 1))
    held = registry.instance("USER-SERVICE", "u1")
    assert held is not None and held.status is InstanceStatus.UP


def test_a_client_going_down_or_starting_is_believed(registry: Registry) -> None:
    registry.register(instance())
    registry.register(instance(status=InstanceStatus.DOWN, last_dirty_ts=START_MS + 1))
    held = registry.instance("USER-SERVICE", "u1")
    assert held is not None and held.status is InstanceStatus.DOWN


def test_metadata_update_adds_entries_and_keeps_the_rest(registry: Registry) -> None:
    registry.register(instance())
    updated = registry.update_metadata("user-service", "u1", {"colour": "green"})
    assert updated is not None and updated.metadata == {"zone": "AZ-a", "colour": "green"}
    assert registry.update_metadata("user-service", "nobody", {"a": "b"}) is None


def test_delta_has_the_latest_change_per_instance_and_the_full_hashcode(
        registry: Registry, clock: FakeClock) -> None:
    registry.register(instance(instance_id="u1"))
    registry.register(instance(instance_id="u2"))
    clock.advance(1)
    registry.update_status("USER-SERVICE", "u1", InstanceStatus.OUT_OF_SERVICE)
    registry.cancel("USER-SERVICE", "u2")
    delta = registry.delta()
    actions = {i.instance_id: (i.action_type, i.status)
               for app in delta.applications for i in app.instances}
    assert actions == {"u1": (ActionType.MODIFIED, InstanceStatus.OUT_OF_SERVICE),
                       "u2": (ActionType.DELETED, InstanceStatus.UP)}
    assert delta.hashcode == "OUT_OF_SERVICE_1_"
    assert delta.version == registry.version == 4


def test_delta_forgets_changes_older_than_its_retention(clock: FakeClock) -> None:
    registry = Registry(RegistrySettings(delta_retention_s=30), clock)
    registry.register(instance())
    clock.advance(31)
    assert registry.delta().applications == ()
    assert registry.applications().applications[0].instances[0].instance_id == "u1"


def test_hashcode_counts_instances_per_status_sorted_by_name(registry: Registry) -> None:
    registry.register(instance(instance_id="a"))
    registry.register(instance(instance_id="b"))
    registry.register(instance(app="order-service", instance_id="c",
                               status=InstanceStatus.DOWN))
    assert registry.applications().hashcode == "DOWN_1_UP_2_"
    assert reconcile_hashcode([]) == ""


def test_vips_group_instances_by_their_vip_address_lists(registry: Registry) -> None:
    registry.register(instance(instance_id="a", vip="users,accounts"))
    registry.register(instance(app="order-service", instance_id="b", vip="orders"))
    found = registry.vip("accounts")
    assert [(app.name, [i.instance_id for i in app.instances]) for app in found.applications] \
        == [("USER-SERVICE", ["a"])]
    assert registry.vip("nothing").applications == ()


def test_answers_are_copies(registry: Registry) -> None:
    registry.register(instance())
    answer = registry.instance("USER-SERVICE", "u1")
    assert answer is not None
    answer.metadata["zone"] = "AZ-b"
    answer.status = InstanceStatus.DOWN
    held = registry.instance("USER-SERVICE", "u1")
    assert held is not None and held.metadata["zone"] == "AZ-a"
    assert held.status is InstanceStatus.UP


class TestSelfPreservation:
    """With self-preservation on, too few renewals in the last minute stop evictions."""

    @pytest.fixture
    def registry(self, clock: FakeClock) -> Registry:
        return Registry(RegistrySettings(lease_duration_s=5, renewal_interval_s=1,
                                         self_preservation=True), clock)

    def test_evictions_stop_when_renewals_fall_below_the_threshold(
            self, registry: Registry, clock: FakeClock) -> None:
        for name in ("a", "b"):
            registry.register(instance(instance_id=name))
        # Two instances renewing every second: 120 a minute against a threshold of 102.
        for _ in range(60):
            clock.advance(1)
            registry.renew("USER-SERVICE", "a")
            registry.renew("USER-SERVICE", "b")
        assert registry.renewal_threshold == 102
        assert registry.lease_expiration_enabled()
        # Both go silent (the server is the one cut off, it assumes); a minute later the last
        # complete window saw no renewals, and nothing is evicted.
        clock.advance(RENEWAL_WINDOW_MS / 1000)
        assert not registry.lease_expiration_enabled()
        assert registry.evict() == []
        assert registry.size == 2

    def test_without_expected_renewals_nothing_expires(self, registry: Registry,
                                                       clock: FakeClock) -> None:
        assert registry.renewal_threshold == 0
        assert not registry.lease_expiration_enabled()

    def test_at_most_fifteen_percent_are_evicted_per_run(self, clock: FakeClock) -> None:
        registry = Registry(RegistrySettings(self_preservation=True), clock)
        for index in range(20):
            registry.register(instance(instance_id=f"i{index}"))
        for _ in range(60):
            clock.advance(1)
            for index in range(20):
                registry.renew("USER-SERVICE", f"i{index}")
        for index in range(10):  # half of them die
            registry.cancel("USER-SERVICE", f"i{index}")  # (not counted as silent)
        clock.advance(6)
        assert registry.lease_expiration_enabled()
        assert len(registry.evict()) == 10 - int(10 * 0.85)


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="lease duration"):
        RegistrySettings(lease_duration_s=0)
    with pytest.raises(ValueError, match="percent"):
        RegistrySettings(renewal_percent_threshold=1.5)
