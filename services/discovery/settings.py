"""The discovery server's settings: one typed object, built from the command line.

Discovery starts before the config server (services find the config server through it), so
unlike the other services it takes its settings from arguments, not from configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from services.discovery.registry import RegistrySettings

EUREKA_PATH = "/eureka"


def eureka_service_url(url: str) -> str:
    """A peer's Eureka service URL in one spelling: ``http://host:port/eureka``, no trailing /.

    Accepts what people write in Spring's ``defaultZone`` (``http://h:8761/eureka/``) and the
    bare ``http://h:8761``.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"peer URL {url!r} must look like http://host:port/eureka")
    path = parts.path.rstrip("/") or EUREKA_PATH
    return f"{parts.scheme}://{parts.netloc}{path}"


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    """Where the server listens, who its peers are, and the registry's lease policy."""

    host: str = "127.0.0.1"
    port: int = 8761
    peers: tuple[str, ...] = ()
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    eviction_interval_s: float = 1.0
    # Peers are on loopback: a peer that takes longer than this is treated as down.
    peer_timeout_s: float = 2.0
    # Changes waiting for one peer; beyond this the oldest news is dropped (heartbeats repair it).
    replication_queue_size: int = 10_000
    max_document_bytes: int = 64 * 1024
    service_name: str = "discovery"
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1-65535, got {self.port}")
        if self.eviction_interval_s <= 0:
            raise ValueError(f"eviction interval must be positive, got {self.eviction_interval_s}")
        if self.peer_timeout_s <= 0:
            raise ValueError(f"peer timeout must be positive, got {self.peer_timeout_s}")
        if self.replication_queue_size < 1 or self.max_document_bytes < 1:
            raise ValueError("queue size and document size limits must be positive")
        own = self.url
        # A server listed among its own peers (one peer list shared by both) is skipped, as
        # Eureka skips its own URL, instead of replicating to itself.
        peers = tuple(dict.fromkeys(
            peer for peer in (eureka_service_url(p) for p in self.peers) if peer != own))
        object.__setattr__(self, "peers", peers)

    @property
    def url(self) -> str:
        """This server's Eureka service URL, the form clients and peers are given."""
        return f"http://{self.host}:{self.port}{EUREKA_PATH}"
