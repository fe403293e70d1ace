"""The config server's own settings, from its command line.

It is the one service that cannot load its settings from the config server, so they come from
arguments the runtime passes (see ``__main__``); everything is validated here, before anything
binds or reads git, so a wrong argument ends the process with a message and not a stack trace.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_PORT = 8888  # Spring Cloud Config Server's customary port
DEFAULT_SEARCH_PATH = "config-repo"
DEFAULT_LABEL = "main"
# Spring Cloud Bus's default destination (spring.cloud.bus.destination), i.e. the Kafka topic.
DEFAULT_BUS_TOPIC = "springCloudBus"
SERVICE_NAME = "config-server"


class ConfigServerSettings(BaseModel):
    """Where to listen, which repository and folder to serve, and where the bus is."""

    model_config = ConfigDict(frozen=True)

    host: IPv4Address
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    repo: str = Field(min_length=1, description="path or file:// URI of a git repository")
    search_path: str = DEFAULT_SEARCH_PATH
    default_label: str = Field(DEFAULT_LABEL, min_length=1)
    kafka: str | None = Field(None, description="Kafka bootstrap servers; None: no bus")
    bus_topic: str = Field(DEFAULT_BUS_TOPIC, min_length=1)
    platform_file: Path | None = Field(
        None, description="YAML of platform properties the runtime derives from the stack model")

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, host: IPv4Address) -> IPv4Address:
        """The server has no authentication and can trigger refreshes: keep it off networks.

        Locally every server binds its own loopback address in its AZ's range. A container
        target, where a security group is the boundary, would have to lift this on purpose.
        """
        if not host.is_loopback:
            raise ValueError(f"{host} is not a loopback address; the config server has no "
                             f"authentication and binds only loopback addresses")
        return host
