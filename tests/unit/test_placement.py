"""Zones: each owns a loopback /24, and hands out host addresses 2..254 of it."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from stack.model.placement import seoul


def test_an_address_is_the_host_number_inside_the_zones_range() -> None:
    az_b = seoul().zone("AZ-b")

    assert az_b.address(2) == IPv4Address("127.0.2.2")
    assert az_b.address(254) == IPv4Address("127.0.2.254")


@pytest.mark.parametrize("host", [-1, 0, 1, 255, 256])
def test_a_host_number_outside_2_to_254_is_refused(host: int) -> None:
    with pytest.raises(ValueError) as refused:
        seoul().zone("AZ-a").address(host)

    assert str(refused.value) == f"host number {host} is outside 2..254 for AZ-a"


def test_the_region_has_two_zones_and_a_regional_range() -> None:
    region = seoul()

    assert [str(zone.loopback) for zone in region.zones] == ["127.0.1.0/24", "127.0.2.0/24"]
    assert region.zone("region").is_region
    assert str(region.zone("region").loopback) == "127.0.3.0/24"


def test_an_unknown_zone_label_names_the_known_ones() -> None:
    with pytest.raises(KeyError) as refused:
        seoul().zone("AZ-c")

    assert refused.value.args[0] == "no zone labelled 'AZ-c'; known: ['AZ-a', 'AZ-b', 'region']"
