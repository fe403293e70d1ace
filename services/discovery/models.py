"""The entities of the Eureka protocol: an instance's registration document and its lease.

The fields are Eureka's ``InstanceInfo``/``LeaseInfo``/``DataCenterInfo``, named the Python way;
`codec` maps them to and from the wire names (``hostName``, ``overriddenStatus``, ...). Optional
text fields stay ``None`` when a client did not send them, because Eureka omits absent fields
from its answers rather than writing empty strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

DEFAULT_DATA_CENTER_CLASS = "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
AMAZON_DATA_CENTER_CLASS = "com.netflix.appinfo.AmazonInfo"
AMAZON = "Amazon"


class InstanceStatus(StrEnum):
    """Eureka's instance states, in Eureka's declaration order."""

    UP = "UP"
    DOWN = "DOWN"
    STARTING = "STARTING"
    OUT_OF_SERVICE = "OUT_OF_SERVICE"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def lenient(cls, value: str | None) -> InstanceStatus:
        """Eureka's ``InstanceStatus.toEnum``: anything unrecognised reads as UNKNOWN."""
        try:
            return cls((value or "").upper())
        except ValueError:
            return cls.UNKNOWN


class ActionType(StrEnum):
    """What last happened to an instance, as the delta reports it to clients."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(slots=True)
class LeaseInfo:
    """The lease as clients see it: what they asked for and the server's timestamps (epoch ms)."""

    renewal_interval_s: int
    duration_s: int
    registration_ts: int = 0
    last_renewal_ts: int = 0
    eviction_ts: int = 0
    service_up_ts: int = 0


@dataclass(slots=True)
class DataCenterInfo:
    """Where the instance runs; only Amazon's carries metadata on the wire."""

    name: str = "MyOwn"
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        # Eureka rewrites the class from the name whatever the client sent.
        return AMAZON_DATA_CENTER_CLASS if self.name == AMAZON else DEFAULT_DATA_CENTER_CLASS


@dataclass(slots=True)
class InstanceInfo:
    """One registered instance of an application (Eureka's ``InstanceInfo``).

    ``app`` is always upper-case: Eureka treats application names case-insensitively by storing
    them upper-cased. ``lease`` holds what the client sent until the registry decorates a copy
    with the lease's timestamps for an answer.
    """

    instance_id: str
    app: str
    host_name: str
    ip_addr: str
    lease: LeaseInfo
    status: InstanceStatus = InstanceStatus.UP
    overridden_status: InstanceStatus = InstanceStatus.UNKNOWN
    port: int = 7001
    port_enabled: bool = True
    secure_port: int = 7002
    secure_port_enabled: bool = False
    country_id: int = 1
    data_center: DataCenterInfo = field(default_factory=DataCenterInfo)
    metadata: dict[str, str] = field(default_factory=dict)
    sid: str | None = None
    app_group_name: str | None = None
    home_page_url: str | None = None
    status_page_url: str | None = None
    health_check_url: str | None = None
    secure_health_check_url: str | None = None
    vip_address: str | None = None
    secure_vip_address: str | None = None
    is_coordinating_discovery_server: bool = False
    last_updated_ts: int = 0
    last_dirty_ts: int = 0
    action_type: ActionType | None = None
    asg_name: str | None = None

    def copy(self, lease: LeaseInfo | None = None) -> InstanceInfo:
        """A copy that shares nothing mutable, optionally with another lease.

        Answers and the delta queue hold copies, so they do not change when the registry does.
        """
        return replace(
            self,
            lease=replace(self.lease) if lease is None else lease,
            data_center=DataCenterInfo(self.data_center.name, dict(self.data_center.metadata)),
            metadata=dict(self.metadata),
        )


@dataclass(frozen=True, slots=True)
class Application:
    """All instances of one application name."""

    name: str
    instances: tuple[InstanceInfo, ...]


@dataclass(frozen=True, slots=True)
class Applications:
    """A registry answer: the applications plus the two fields clients reconcile with.

    ``version`` is ``versions__delta`` on the wire; ``hashcode`` is ``apps__hashcode``, the
    count of instances per status (``DOWN_1_UP_3_``) clients compare with their local copy.
    """

    version: int
    hashcode: str
    applications: tuple[Application, ...]


def reconcile_hashcode(instances: list[InstanceInfo] | tuple[InstanceInfo, ...]) -> str:
    """Eureka's ``apps__hashcode``: ``STATUS_count_`` for each status present, sorted by name."""
    counts: dict[str, int] = {}
    for instance in instances:
        counts[instance.status.value] = counts.get(instance.status.value, 0) + 1
    return "".join(f"{status}_{counts[status]}_" for status in sorted(counts))
