"""How every business service starts, runs and stops: the same lifecycle in each folder.

A service provides its settings model, its schema and migrations, and a function that adds its
routes and background work to a `ServiceRuntime`; `serve` does the rest:

1. command line: ``--host --port --config-url --discovery-url … --profile``;
2. JSON logs; settings from the config server (retried; exit 78 naming the URL when it stays
   unreachable), refreshable over the Kafka bus;
3. the database schema migrated (Alembic, under an advisory lock);
4. a FastAPI app with the shared error shape, request ids, ``/metrics``, liveness
   (``/actuator/health``) and readiness (``/actuator/health/readiness``, which runs the
   service's dependency checks);
5. registration with discovery once it serves, heartbeats, and on SIGTERM: cancel the
   registration first (traffic stops), then finish in-flight requests, then close.

The platform's addresses come from the config server's ``come2us-platform`` source
(`PlatformSettings`); secrets (the database URLs with their password, the JWT private key) come
from the environment, as ECS would inject them from Secrets Manager.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from services.common.bus import BusListener
from services.common.calls import ServiceCalls
from services.common.database import Database
from services.common.errors import install_error_handlers
from services.common.eureka import DiscoveryClient, Registration
from services.common.logs import RequestIdMiddleware, configure_logging
from services.common.metrics import MetricsMiddleware, metrics_endpoint
from services.common.settings import RefreshableSettings, load_or_exit
from services.common.task import task_metadata

log = logging.getLogger("come2us.runtime")

REDIS_TIMEOUT_S = 1.0


class SessionRedisSettings(BaseModel):
    master: str = "session"
    sentinels: list[str] = Field(default_factory=list)


class CacheRedisSettings(BaseModel):
    url: str = ""


class KafkaSettings(BaseModel):
    bootstrap_servers: str = ""


class JwtSettings(BaseModel):
    issuer: str = ""


class PlatformSettings(BaseModel):
    """The ``come2us.*`` keys the runtime serves from the stack model."""

    region: str = ""
    aws_endpoint: str = ""
    image_bucket: str = ""
    session_redis: SessionRedisSettings = SessionRedisSettings()
    cache_redis: CacheRedisSettings = CacheRedisSettings()
    kafka: KafkaSettings = KafkaSettings()
    jwt: JwtSettings = JwtSettings()


class EurekaInstanceSettings(BaseModel):
    lease_renewal_interval_in_seconds: float = 1.0
    lease_expiration_duration_in_seconds: int = 5


class EurekaClientSettings(BaseModel):
    registry_fetch_interval_seconds: float = 1.0


class EurekaSettings(BaseModel):
    instance: EurekaInstanceSettings = EurekaInstanceSettings()
    client: EurekaClientSettings = EurekaClientSettings()


class ServiceSettings(BaseModel):
    """What every service's settings model includes (extend it with the service's own keys)."""

    come2us: PlatformSettings = PlatformSettings()
    eureka: EurekaSettings = EurekaSettings()


S = TypeVar("S", bound=ServiceSettings)
Check = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True)
class Launch:
    host: str
    port: int
    config_url: str
    discovery_urls: tuple[str, ...]
    profile: str
    label: str | None

    @property
    def instance_id(self) -> str:
        return f"{self.host}:{self.port}"


def parse_launch(program: str, argv: Sequence[str] | None = None) -> Launch:
    parser = argparse.ArgumentParser(prog=f"python -m services.{program}")
    parser.add_argument("--host", required=True, help="loopback address to bind")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config-url", default=os.environ.get("COME2US_CONFIG_URL"),
                        help="config server base URL (default: $COME2US_CONFIG_URL)")
    parser.add_argument("--discovery-url", action="append", default=[],
                        help="discovery base URL …/eureka; repeat for each server")
    parser.add_argument("--profile", default=os.environ.get("COME2US_PROFILE", "local"))
    parser.add_argument("--label", default=None, help="config branch, tag or commit")
    args = parser.parse_args(argv)
    if not args.config_url:
        parser.error("--config-url (or COME2US_CONFIG_URL) is required")
    discovery = args.discovery_url or [
        u for u in os.environ.get("COME2US_DISCOVERY_URLS", "").split(",") if u]
    return Launch(args.host, args.port, args.config_url, tuple(discovery), args.profile,
                  args.label)


def secret(name: str) -> str:
    """A secret from the environment; its absence stops the service with a clear message."""
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"the environment variable {name} is not set: the runtime injects "
                         f"it (locally the control plane, on AWS the task definition's secrets)")
    return value


@dataclass
class ServiceRuntime(Generic[S]):
    """Everything a running service instance has; routes and workers take what they need."""

    name: str
    launch: Launch
    settings: RefreshableSettings[S]
    database: Database | None = None
    checks: dict[str, Check] = field(default_factory=dict)
    starting: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    stopping: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    _discovery: DiscoveryClient | None = None
    _calls: ServiceCalls | None = None
    _session_redis: Redis | None = None
    _cache_redis: Redis | None = None

    @property
    def platform(self) -> PlatformSettings:
        return self.settings.value.come2us

    @property
    def discovery(self) -> DiscoveryClient:
        if self._discovery is None:
            timing = self.settings.value.eureka
            self._discovery = DiscoveryClient(
                self.launch.discovery_urls,
                Registration(
                    app=self.name, instance_id=f"{self.name}:{self.launch.instance_id}",
                    host=self.launch.host, port=self.launch.port, metadata=self.metadata,
                    renewal_interval_s=timing.instance.lease_renewal_interval_in_seconds,
                    lease_duration_s=timing.instance.lease_expiration_duration_in_seconds,
                    health_check_url=f"http://{self.launch.instance_id}/actuator/health"),
                refresh_interval_s=timing.client.registry_fetch_interval_seconds)
        return self._discovery

    @property
    def calls(self) -> ServiceCalls:
        if self._calls is None:
            self._calls = ServiceCalls(self.discovery)
        return self._calls

    def session_redis(self) -> Redis:
        """The session Redis master, through Sentinel (follows a failover by itself)."""
        if self._session_redis is None:
            group = self.platform.session_redis
            sentinels = [(h, int(p)) for h, _, p in (a.rpartition(":") for a in group.sentinels)]
            sentinel = Sentinel(sentinels, socket_timeout=REDIS_TIMEOUT_S)  # type: ignore[no-untyped-call]
            self._session_redis = sentinel.master_for(
                group.master, socket_timeout=REDIS_TIMEOUT_S, decode_responses=True)
        assert self._session_redis is not None
        return self._session_redis

    def cache_redis(self) -> Redis:
        """The cache Redis; callers must treat its absence as a miss, never as an error."""
        if self._cache_redis is None:
            self._cache_redis = Redis.from_url(
                self.platform.cache_redis.url, socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S, decode_responses=True)
        return self._cache_redis

    async def readiness(self) -> dict[str, str]:
        """Each dependency check's problem; empty when the instance may take traffic."""
        results = await asyncio.gather(*(check() for check in self.checks.values()))
        return {name: problem for name, problem in zip(self.checks, results, strict=True)
                if problem}

    async def close(self) -> None:
        for client in (self._session_redis, self._cache_redis):
            if client is not None:
                await client.aclose()
        if self._calls is not None:
            await self._calls.close()
        if self.database is not None:
            await self.database.close()


def create_app(runtime: ServiceRuntime[Any], title: str) -> FastAPI:
    """A FastAPI app with the platform's shared behaviour; the service adds its routers."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform = runtime.platform
        bus = BusListener(platform.kafka.bootstrap_servers, runtime.name,
                          runtime.launch.instance_id, [runtime.settings])
        for start in runtime.starting:
            await start()
        await bus.start()
        await runtime.discovery.start()
        log.info("%s serving at %s", runtime.name, runtime.launch.instance_id)
        try:
            yield
        finally:
            await runtime.discovery.stop()  # first: the gateway stops routing here
            await bus.stop()
            for stop in reversed(runtime.stopping):
                await stop()
            await runtime.close()

    app = FastAPI(title=title, lifespan=lifespan)
    app.add_middleware(MetricsMiddleware, service=runtime.name)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)

    @app.get("/actuator/health", tags=["operations"], summary="Liveness")
    async def liveness() -> dict[str, str]:
        return {"status": "UP"}

    @app.get("/actuator/health/readiness", tags=["operations"], summary="Readiness",
             response_model=None)
    async def readiness() -> JSONResponse:
        problems = await runtime.readiness()
        body = {"status": "DOWN" if problems else "UP", "problems": problems}
        return JSONResponse(body, status_code=503 if problems else 200)

    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    return app


def serve(name: str, settings_model: type[S],
          build: Callable[[ServiceRuntime[S]], FastAPI], *, schema: str | None = None,
          migrations: Path | None = None, argv: Sequence[str] | None = None) -> None:
    """Run a service until SIGTERM; see the module docstring for what happens in between."""
    launch = parse_launch(name.removesuffix("-service"), argv)
    configure_logging(name)
    settings = load_or_exit(lambda: RefreshableSettings.load(
        settings_model, name, launch.profile, launch.config_url, label=launch.label),
        program=name)
    runtime = ServiceRuntime(name, launch, settings, metadata=task_metadata())
    if schema is not None:
        runtime.database = Database(secret("COME2US_DATABASE_URL"),
                                    secret("COME2US_DATABASE_READER_URL"), schema)
        if migrations is not None:
            runtime.database.migrate(migrations)
        runtime.checks["database"] = runtime.database.check
    app = build(runtime)
    uvicorn.run(app, host=launch.host, port=launch.port, loop="uvloop", http="httptools",
                log_config=None, access_log=False, server_header=False,
                timeout_graceful_shutdown=10)
