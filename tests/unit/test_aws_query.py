"""The template query helper, and proof that the compliance steps fail on a wrong template."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from stack.aws.query import TemplateQuery
from stack.aws.rollout import Rollout
from stack.aws.template import render, to_json
from stack.come2us import come2us, environment
from stack.model.edge import Colour
from steps import compliance

RENDERED = {name: to_json(render(come2us(), environment(name), Rollout.only(Colour.BLUE)))
            for name in ("dev", "prod")}


def query(name: str = "dev", change: Callable[[dict[str, Any]], None] | None = None
          ) -> TemplateQuery:
    doc = json.loads(RENDERED[name])
    if change:
        change(doc["Resources"])
    return TemplateQuery(copy.deepcopy(doc))


def test_ingress_is_read_from_separate_rule_resources() -> None:
    rules = query().ingress()
    internet = {(r.group, r.from_port) for r in rules if r.from_internet}
    assert internet == {("AlbSecurityGroup", 80), ("AlbSecurityGroup", 443)}
    assert query().sources_into("DatabaseSecurityGroup") == {"TasksSecurityGroup"}


def test_groups_are_found_wherever_a_type_keeps_them() -> None:
    q = query()
    assert q.groups_of("DatabaseWriter") == {"DatabaseSecurityGroup"}
    assert q.groups_of("SessionRedis") == {"RedisSecurityGroup"}
    assert q.groups_of("Kafka") == {"KafkaSecurityGroup"}
    assert q.groups_of("UserServiceBlueService") == {"TasksSecurityGroup"}
    assert q.groups_of("Bastion") == {"BastionSecurityGroup"}
    assert q.groups_of("LoadBalancer") == {"AlbSecurityGroup"}


def test_stores_have_no_egress_and_the_tasks_only_what_the_model_allows() -> None:
    q = query()
    assert q.egress_of("DatabaseSecurityGroup") == []
    ports = sorted(rule["FromPort"] for rule in q.egress_of("TasksSecurityGroup"))
    model = come2us()
    assert 443 in ports and model.data.postgres.writer.port in ports
    assert {spec.port for spec in model.compute.services} <= set(ports)


def test_scalable_targets_name_their_ecs_service() -> None:
    targets = {t.service: (t.min_tasks, t.max_tasks) for t in query().scalable_targets()}
    assert targets["product-service-blue"] == (1, 6)
    assert set(targets) == set(query().ecs_services())


def test_nat_gateways_and_routes() -> None:
    prod = query("prod")
    assert sorted(prod.nat_gateway_zones().values()) == ["ap-northeast-2a", "ap-northeast-2b"]
    assert prod.private_routes() == {"SubnetPrivateA": "NatAGateway",
                                     "SubnetPrivateB": "NatBGateway"}
    assert set(query("dev").private_routes().values()) == {"NatAGateway"}


# -- the compliance steps catch a wrong template ---------------------------------------------


def open_database(resources: dict[str, Any]) -> None:
    resources["LeakIngress"] = {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {
        "GroupId": {"Fn::GetAtt": ["DatabaseSecurityGroup", "GroupId"]}, "IpProtocol": "tcp",
        "FromPort": 5432, "ToPort": 5432, "CidrIp": "0.0.0.0/0"}}


def bastion_to_database(resources: dict[str, Any]) -> None:
    resources["BastionToDatabase"] = {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {
        "GroupId": {"Fn::GetAtt": ["DatabaseSecurityGroup", "GroupId"]}, "IpProtocol": "tcp",
        "FromPort": 5432, "ToPort": 5432,
        "SourceSecurityGroupId": {"Fn::GetAtt": ["BastionSecurityGroup", "GroupId"]}}}


def ssh_to_alb(resources: dict[str, Any]) -> None:
    rule = copy.deepcopy(resources["InternetToAlb443Ingress"])
    rule["Properties"].update(FromPort=22, ToPort=22)
    resources["InternetToAlb22Ingress"] = rule


def single_az_database(resources: dict[str, Any]) -> None:
    resources["DatabaseWriter"]["Properties"]["MultiAZ"] = False


def week_of_logs(resources: dict[str, Any]) -> None:
    resources["GatewayLogGroup"]["Properties"]["RetentionInDays"] = 7


def unversioned_images(resources: dict[str, Any]) -> None:
    resources["ImageBucket"]["Properties"]["VersioningConfiguration"]["Status"] = "Suspended"


def wider_product_scaling(resources: dict[str, Any]) -> None:
    resources["ProductServiceBlueScalableTarget"]["Properties"]["MaxCapacity"] = 10


@pytest.mark.parametrize(("change", "step", "args"), [
    (open_database, compliance.only_alb_from_ranges, ()),
    (ssh_to_alb, compliance.alb_ports, ()),
    (bastion_to_database, compliance.rds_only_tasks, ()),
    (single_az_database, compliance.rds_multi_az, ()),
    (week_of_logs, compliance.log_retention, (30,)),
    (unversioned_images, compliance.images_versioned, ()),
    (wider_product_scaling, compliance.scalable_target, ("product-service", 1, 6)),
])
def test_each_compliance_step_fails_on_a_template_that_breaks_it(
        change: Callable[[dict[str, Any]], None], step: Callable[..., None],
        args: tuple[Any, ...]) -> None:
    step(query(), *args)  # the real template passes
    with pytest.raises(AssertionError):
        step(query(change=change), *args)
