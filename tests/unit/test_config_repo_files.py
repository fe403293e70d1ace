"""The project's own config-repo/ as the services read it: every file parses, and the gateway
accepts what the config server would serve it (routes, public list, limits, breaker).

Served from the working tree (copied into a scratch repository), so a change is checked before
it is committed to the branch `come2us up` serves.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.common.properties import unflatten
from services.config.formats import merged_properties
from services.config.repository import (
    EnvironmentRepository,
    GitRepository,
    load_platform_source,
)
from services.gateway.routes import compile_routes
from services.gateway.settings import from_config
from stack.come2us import come2us
from stack.local.services import ServiceWiring
from stack.local.workspace import Workspace
from tests.scratch_git import ScratchRepo

CONFIG_REPO = Path(__file__).resolve().parents[2] / "config-repo"
API_PREFIXES = ("users", "auth", "products", "orders", "payments", "ai")


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> EnvironmentRepository:
    scratch = ScratchRepo(tmp_path_factory.mktemp("project-config"))
    shutil.copytree(CONFIG_REPO, scratch.path / "config-repo")
    scratch.git("add", "config-repo")
    scratch.commit({}, "config-repo of the working tree")
    return EnvironmentRepository(GitRepository(scratch.path), "config-repo", "main")


def test_every_file_is_served(repository: EnvironmentRepository) -> None:
    for path in sorted(CONFIG_REPO.glob("*.y*ml")):
        application = path.stem.split("-local")[0]
        environment = repository.find_one(application, "local")
        served = [source.name.rsplit("/", 1)[1] for source in environment.property_sources]
        assert path.name in served


def test_gateway_accepts_its_configuration(repository: EnvironmentRepository) -> None:
    tree = unflatten(merged_properties(repository.find_one("gateway", "local"), resolve=False))
    settings = from_config(tree)
    table = compile_routes(settings)
    for prefix in API_PREFIXES:
        route = table.match(b"GET", f"/api/{prefix}/1")
        assert route is not None, f"no route for /api/{prefix}/**"
        assert route.target.app is not None  # lb://, found through discovery
        assert route.strip == 1  # /api/users/1 reaches user-service as /users/1
    assert table.is_public(b"POST", "/api/auth/login")
    assert table.is_public(b"GET", "/api/products/42")
    assert not table.is_public(b"POST", "/api/orders/1")
    payments = table.match(b"POST", "/api/payments/1")
    assert payments is not None and payments.retries == 0  # a payment is never replayed


def test_shared_settings_name_the_bus_topic(repository: EnvironmentRepository) -> None:
    shared = merged_properties(repository.find_one("any-service", "local"))
    assert shared["spring.cloud.bus.destination"] == "springCloudBus"


def test_the_platform_source_carries_the_models_discovery_timing(tmp_path: Path) -> None:
    model = come2us()
    workspace = Workspace(tmp_path)
    workspace.ensure()
    source = load_platform_source(ServiceWiring(model, workspace).platform_file())
    timing = model.compute.discovery
    assert source.source["eureka.instance.lease-expiration-duration-in-seconds"] == timing.lease_s
    assert (source.source["eureka.instance.lease-renewal-interval-in-seconds"]
            == timing.renewal_interval_s)
    assert source.source["gateway.jwt.public-key"].startswith("-----BEGIN PUBLIC KEY-----")
