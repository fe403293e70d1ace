"""The gateway's adapters: settings bound from the config server's flat properties, instances
from the Eureka client's local copy, the colour filter, command-line overrides, and a settings
refresh swapping the route table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from services.common.eureka import Instance as EurekaInstance
from services.common.properties import flatten
from services.common.settings import bind
from services.gateway.__main__ import _overrides, parse_args
from services.gateway.gateway import Gateway
from services.gateway.instances import Instance, InstanceCatalog, StaticInstances
from services.gateway.settings import from_config
from services.gateway.sources import EurekaInstances, GatewayConfigTree
from tests.gateway_tokens import KeyPair

TREE: dict[str, Any] = {
    "spring": {"cloud": {"gateway": {"routes": [
        {"id": "users", "uri": "lb://user-service", "predicates": ["Path=/api/users/**"],
         "filters": ["StripPrefix=2",
                     {"name": "RequestRateLimiter",
                      "args": {"replenishRate": 5, "burstCapacity": 10}}]},
        {"id": "products", "uri": "lb://product-service",
         "predicates": ["Path=/api/products/**"], "filters": ["StripPrefix=2"]},
    ]}}},
    "gateway": {"public": ["GET,HEAD /api/products/**"], "retries": 1},
}


def test_settings_from_the_config_servers_flat_properties() -> None:
    tree = bind(GatewayConfigTree, flatten(TREE))     # what RefreshableSettings holds
    settings = tree.settings()
    assert [route.id for route in settings.routes] == ["users", "products"]
    assert settings.routes[0].filters[1].args == {"replenishRate": "5", "burstCapacity": "10"}
    assert settings.public == ("GET,HEAD /api/products/**",) and settings.retries == 1


class FakeDiscovery:
    def instances(self, app: str) -> list[EurekaInstance]:
        return [EurekaInstance(app.upper(), f"{app}:{n}", f"127.0.1.{60 + n}", 8080, "UP",
                               {"colour": colour})
                for n, colour in ((1, "blue"), (2, "green"))]


def test_eureka_instances_and_the_colour_filter() -> None:
    source = EurekaInstances(FakeDiscovery())  # type: ignore[arg-type]
    found = asyncio.run(source.instances("USER-SERVICE"))
    assert [i.host for i in found] == ["127.0.1.61", "127.0.1.62"]
    catalog = InstanceCatalog(source, colour="green")
    asyncio.run(catalog.refresh(["USER-SERVICE"]))
    assert [i.instance_id for i in catalog.get("USER-SERVICE")] == ["USER-SERVICE:2"]
    catalog.colour = None
    asyncio.run(catalog.refresh(["USER-SERVICE"]))
    assert len(catalog.get("USER-SERVICE")) == 2


def test_command_line_overrides(tmp_path: Path) -> None:
    keys = KeyPair.generate()
    (tmp_path / "key.pem").write_text(keys.public_pem)
    args = parse_args(["--host", "127.0.1.81", "--port", "8080", "--settings-file", "x.yml",
                       "--colour", "blue", "--sentinels", "127.0.1.22:26379,127.0.3.22:26379",
                       "--session-master", "session", "--jwt-public-key",
                       str(tmp_path / "key.pem"), "--jwt-issuer", "iss"])
    settings = _overrides(from_config(TREE), args)
    assert settings.colour == "blue"
    assert settings.redis.sentinels == (("127.0.1.22", 26379), ("127.0.3.22", 26379))
    assert settings.jwt is not None and settings.jwt.issuer == "iss"
    assert settings.jwt.public_key_pem == keys.public_pem


def test_refresh_swaps_routes_and_refuses_bad_settings() -> None:
    async def scenario() -> None:
        source = StaticInstances({"user-service": [Instance("u1", "127.0.1.61", 8080)]})
        gateway = Gateway(from_config(TREE), source)
        assert [r.id for r in gateway.table.routes] == ["users", "products"]
        changed = {**TREE, "spring": {"cloud": {"gateway": {"routes": [
            {"id": "orders", "uri": "lb://order-service", "predicates": ["Path=/api/orders/**"]},
        ]}}}}
        assert gateway.apply_settings(from_config(changed))
        assert [r.id for r in gateway.table.routes] == ["orders"]
        assert list(gateway.breakers) == ["orders"]
        bad = from_config(TREE)
        object.__setattr__(bad.routes[0], "uri", "ftp://nope")  # compiles badly
        assert not gateway.apply_settings(bad)
        assert [r.id for r in gateway.table.routes] == ["orders"]   # the old table stays
        await gateway.close()

    asyncio.run(scenario())


def test_native_build_is_used_only_when_it_matches_the_sources(tmp_path: Path) -> None:
    import json
    import sys

    from services.gateway import native

    package_path: list[str] = []
    assert not native.activate(tmp_path, package_path)
    assert "no native build" in native.status
    (tmp_path / native.MANIFEST).write_text(json.dumps({"digest": "old sources"}))
    assert not native.activate(tmp_path, package_path)
    assert "stale" in native.status and package_path == []
    (tmp_path / native.MANIFEST).write_text(json.dumps({"digest": native.source_digest()}))
    try:
        assert native.activate(tmp_path, package_path)
        assert package_path == [str(tmp_path / "services" / "gateway")]
    finally:
        sys.path.remove(str(tmp_path))
