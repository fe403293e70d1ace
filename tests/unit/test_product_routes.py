"""The product service's place at the edge: which of its paths the gateway routes, and how.

config-repo/gateway.yml as the gateway compiles it: every resource of the product service is
routed (StripPrefix=1), the catalogue's GETs are public, and nothing reaches its ``/internal``
routes — those are for other services, through discovery.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.gateway.routes import RouteTable, compile_routes, strip_prefix
from services.gateway.settings import from_config

GATEWAY_FILE = Path(__file__).resolve().parents[2] / "config-repo" / "gateway.yml"
RESOURCES = ("products", "stores", "categories", "reviews", "cart", "delivery-policies")
PUBLIC_READS = ("products", "stores", "categories", "reviews")


@pytest.fixture(scope="module")
def table() -> RouteTable:
    return compile_routes(from_config(yaml.safe_load(GATEWAY_FILE.read_text())))


@pytest.mark.parametrize("resource", RESOURCES)
def test_each_resource_reaches_the_product_service_without_the_api_prefix(
        table: RouteTable, resource: str) -> None:
    route = table.match(b"POST", f"/api/{resource}/1")
    assert route is not None and route.target.app == "PRODUCT-SERVICE"
    assert strip_prefix(f"/api/{resource}/1".encode(), route.strip) == f"/{resource}/1".encode()
    assert table.match(b"GET", f"/api/{resource}") is route


def test_the_catalogue_is_public_to_read_and_nothing_else_is(table: RouteTable) -> None:
    for resource in PUBLIC_READS:
        assert table.is_public(b"GET", f"/api/{resource}/7")
        assert not table.is_public(b"POST", f"/api/{resource}/7")
    assert not table.is_public(b"GET", "/api/cart")
    assert not table.is_public(b"GET", "/api/delivery-policies/7")


@pytest.mark.parametrize("path", ["/api/internal/carts/u1", "/api/internal/stock/reservations",
                                  "/internal/carts/u1", "/api/product/internal/carts/u1"])
def test_no_gateway_route_leads_to_the_internal_routes(table: RouteTable, path: str) -> None:
    route = table.match(b"GET", path)
    forwarded = strip_prefix(path.encode(), route.strip) if route is not None else b""
    assert not forwarded.startswith(b"/internal"), f"{path} would reach {forwarded!r}"
    for route in table.routes:
        for pattern in route.paths.patterns:
            stripped = strip_prefix(pattern.encode(), route.strip)
            assert not stripped.startswith(b"/internal"), f"{route.id}: {pattern}"
