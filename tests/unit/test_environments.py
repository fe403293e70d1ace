"""The environments are small overlays on one model, and the model refuses what the seed forbids."""

from __future__ import annotations

from dataclasses import fields, replace
from ipaddress import IPv4Network

import pytest

from stack.come2us import ENVIRONMENTS, LOCAL_HEALTH, come2us, environment
from stack.model.environment import Environment, Sizes, Usage
from stack.model.network import Tier, VpcLayout
from stack.model.security import INTERNET, Allow, Group, SecurityPolicy


def layout(name: str) -> VpcLayout:
    model = come2us()
    return environment(name).layout(model.cloud.network, model.region)


def test_the_three_environments_exist() -> None:
    assert list(ENVIRONMENTS) == ["dev", "stage", "prod"]
    with pytest.raises(KeyError, match="no environment 'qa'; known: dev, stage, prod"):
        environment("qa")


@pytest.mark.parametrize(("name", "nat_gateways"), [("dev", 1), ("stage", 1), ("prod", 2)])
def test_one_nat_in_dev_and_stage_one_per_az_in_prod(name: str, nat_gateways: int) -> None:
    vpc = layout(name)
    assert vpc.nat_gateways == nat_gateways
    assert [zone.label for zone in vpc.nat_zones] == ["AZ-a", "AZ-b"][:nat_gateways]


def test_private_subnets_use_their_own_azs_nat_when_there_is_one() -> None:
    prod, dev = layout("prod"), layout("dev")
    for subnet in prod.tier(Tier.PRIVATE):
        assert prod.nat_zone_for(subnet.zone) == subnet.zone
    assert {dev.nat_zone_for(s.zone).label for s in dev.tier(Tier.PRIVATE)} == {"AZ-a"}


def test_each_environment_overlays_only_what_differs() -> None:
    """An overlay names a handful of values; sizes and usage default to the small ones."""
    default_sizes, default_usage = Sizes(), Usage()
    assert environment("dev").sizes == default_sizes
    assert environment("stage").sizes == default_sizes
    prod = environment("prod")
    changed = {f.name for f in fields(Sizes)
               if getattr(prod.sizes, f.name) != getattr(default_sizes, f.name)}
    assert changed == {"database_class", "database_storage_gib", "session_redis_node",
                       "cache_redis_node", "kafka_broker", "kafka_storage_gib"}
    assert prod.usage != default_usage and prod.deletion_protection
    assert not environment("dev").deletion_protection


def test_the_environments_vpcs_do_not_overlap() -> None:
    ranges = [env.vpc_cidr for env in ENVIRONMENTS.values()]
    for i, one in enumerate(ranges):
        assert all(not one.overlaps(other) for other in ranges[i + 1:])


def test_each_vpc_has_a_public_and_a_private_subnet_per_az() -> None:
    for name in ENVIRONMENTS:
        vpc = layout(name)
        assert [(s.name, s.zone.name) for s in vpc.subnets] == [
            ("public-a", "ap-northeast-2a"), ("public-b", "ap-northeast-2b"),
            ("private-a", "ap-northeast-2a"), ("private-b", "ap-northeast-2b")]
        assert all(s.cidr.subnet_of(vpc.cidr) for s in vpc.subnets)
    dev = layout("dev")
    assert str(dev.subnet(Tier.PUBLIC, "AZ-a").cidr) == "10.10.0.0/24"
    assert str(dev.subnet(Tier.PRIVATE, "AZ-b").cidr) == "10.10.32.0/20"


def test_a_nat_count_beyond_the_azs_is_refused() -> None:
    model = come2us()
    wrong = replace(environment("prod"), nat_gateways=3)
    with pytest.raises(ValueError, match="3 NAT gateways for 2 AZs"):
        wrong.layout(model.cloud.network, model.region)


def test_a_vpc_too_small_for_the_plan_is_refused() -> None:
    model = come2us()
    tiny = replace(environment("dev"), vpc_cidr=IPv4Network("10.10.0.0/20"))
    with pytest.raises(ValueError, match="too small"):
        tiny.layout(model.cloud.network, model.region)


def test_physical_names_are_scoped_to_the_environment() -> None:
    dev = environment("dev")
    assert dev.physical("come2us-db") == "come2us-dev-db"
    assert dev.physical("session-redis") == "come2us-dev-session-redis"
    assert isinstance(dev, Environment) and dev.stack_name == "come2us-dev"


def test_only_the_load_balancer_may_be_reached_from_an_address_range() -> None:
    rules = come2us().cloud.security.rules
    exposed = {rule.target for rule in rules if isinstance(rule.source, IPv4Network)}
    assert exposed == {Group.ALB}
    with pytest.raises(ValueError, match="only the ALB may take traffic from a network range, "
                                         "not database"):
        SecurityPolicy(rules=(*rules, Allow(INTERNET, Group.DATABASE, 5432, "a mistake")))


def test_the_stores_are_reached_only_from_the_tasks_on_the_models_ports() -> None:
    model = come2us()
    policy = model.cloud.security
    assert {(r.source, r.port) for r in policy.ingress(Group.DATABASE)} == {
        (Group.TASKS, model.data.postgres.writer.port)}
    assert {(r.source, r.port) for r in policy.ingress(Group.REDIS)} == {
        (Group.TASKS, model.data.session_redis.primary.port)}
    assert {r.source for r in policy.ingress(Group.KAFKA)} == {Group.TASKS}
    assert policy.egress(Group.DATABASE) == ()


def test_the_aws_layer_must_name_existing_services_and_zones() -> None:
    model = come2us()
    edge = replace(model.cloud.edge, entry_service="nginx",
                   blue_green=replace(model.cloud.edge.blue_green, green_zone="AZ-a"))
    broken = replace(model, cloud=replace(model.cloud, edge=edge))
    with pytest.raises(ValueError) as refused:
        broken.validate()
    assert "the ALB forwards to 'nginx', which is not a service" in str(refused.value)
    assert "blue and green share an AZ" in str(refused.value)


def test_the_local_model_is_unchanged_by_the_aws_layer() -> None:
    """The local runtime's values stay the local ones: AWS timings live in the AWS layer."""
    model = come2us()
    assert {spec.health for spec in model.compute.services} == {LOCAL_HEALTH}
    assert model.cloud.tasks.health.interval_s == 15.0
    assert model.cloud.tasks.health.path == model.compute.service("gateway").health.path
