"""Steps of features/compliance.feature: each sentence is a question to a synthesized template.

Templates are written by `stack.aws.synth.write` (what `come2us synth` writes) into a scratch
folder, once per environment per test session, and read back through `TemplateQuery`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import given, parsers, then

from stack.aws.query import TemplateQuery
from stack.aws.rollout import Rollout
from stack.aws.synth import write
from stack.come2us import ENVIRONMENTS, come2us, environment
from stack.model.edge import Colour


class Templates:
    """The synthesized templates of the session, written on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._read: dict[str, TemplateQuery] = {}

    def of(self, name: str) -> TemplateQuery:
        if name not in self._read:
            path = write(come2us(), environment(name), Rollout.only(Colour.BLUE), self.folder)
            self._read[name] = TemplateQuery.from_file(path)
        return self._read[name]


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("cloudformation"))


@given(parsers.parse("the synthesized template of {name}"), target_fixture="template")
def synthesized(templates: Templates, name: str) -> TemplateQuery:
    return templates.of(name)


@given("the synthesized templates of all environments", target_fixture="every_template")
def synthesized_all(templates: Templates) -> dict[str, TemplateQuery]:
    return {name: templates.of(name) for name in ENVIRONMENTS}


def load_balancer_groups(template: TemplateQuery) -> set[str]:
    name, _ = template.one("AWS::ElasticLoadBalancingV2::LoadBalancer")
    return template.groups_of(name)


def tasks_groups(template: TemplateQuery) -> set[str]:
    groups = {group for name in template.of_type("AWS::ECS::Service")
              for group in template.groups_of(name)}
    assert groups, "no ECS service in the template"
    return groups


# -- reachability -------------------------------------------------------------------------------


@then("no security group but the load balancer's admits traffic from an address range")
def only_alb_from_ranges(template: TemplateQuery) -> None:
    exposed = {rule.group for rule in template.ingress() if rule.from_range}
    assert exposed <= load_balancer_groups(template), f"reachable from a range: {exposed}"


@then("the load balancer's security group admits the internet on ports 80 and 443 only")
def alb_ports(template: TemplateQuery) -> None:
    groups = load_balancer_groups(template)
    ports = {port for rule in template.ingress() if rule.group in groups and rule.from_internet
             for port in rule.ports}
    assert ports == {80, 443}, f"the internet reaches the load balancer on {sorted(ports)}"


@then("no database or cache is publicly accessible")
def nothing_public(template: TemplateQuery) -> None:
    for name, props in template.of_type("AWS::RDS::DBInstance").items():
        assert props.get("PubliclyAccessible") is False, f"{name} may be public"
    for name, props in template.of_type("AWS::EC2::Subnet").items():
        assert props.get("MapPublicIpOnLaunch") is False, f"{name} hands out public addresses"


def admits_only_tasks(template: TemplateQuery, resource_type: str) -> None:
    found = template.of_type(resource_type)
    assert found, f"no {resource_type} in the template"
    tasks = tasks_groups(template)
    for name in found:
        groups = template.groups_of(name)
        sources = {source for group in groups for source in template.sources_into(group)}
        assert sources and sources <= tasks, f"{name} admits {sources}, not only {tasks}"


@then("every RDS instance admits only the tasks' security group")
def rds_only_tasks(template: TemplateQuery) -> None:
    admits_only_tasks(template, "AWS::RDS::DBInstance")


@then("both Redis replication groups admit only the tasks' security group")
def redis_only_tasks(template: TemplateQuery) -> None:
    assert len(template.of_type("AWS::ElastiCache::ReplicationGroup")) == 2
    admits_only_tasks(template, "AWS::ElastiCache::ReplicationGroup")


@then("the Kafka cluster admits only the tasks' security group")
def kafka_only_tasks(template: TemplateQuery) -> None:
    admits_only_tasks(template, "AWS::MSK::Cluster")


@then("the tasks admit only the load balancer and each other")
def tasks_admit(template: TemplateQuery) -> None:
    tasks = tasks_groups(template)
    sources = {source for group in tasks for source in template.sources_into(group)}
    assert sources == tasks | load_balancer_groups(template), sources


# -- availability -------------------------------------------------------------------------------


@then("the RDS writer is Multi-AZ")
def rds_multi_az(template: TemplateQuery) -> None:
    writers = {name: props for name, props in template.of_type("AWS::RDS::DBInstance").items()
               if "SourceDBInstanceIdentifier" not in props}
    assert len(writers) == 1, sorted(writers)
    assert all(props.get("MultiAZ") is True for props in writers.values()), writers


def replication_group(template: TemplateQuery, model_name: str) -> dict[str, object]:
    """The replication group rendered from the model's store of that name."""
    wanted = environment(template.template["Metadata"]["Come2us"]["Environment"]).physical(
        model_name)
    for props in template.of_type("AWS::ElastiCache::ReplicationGroup").values():
        if props.get("ReplicationGroupId") == wanted:
            return props
    raise AssertionError(f"no replication group {wanted}")


@then("the session Redis has a replica in the other AZ with automatic failover")
def session_redis_ha(template: TemplateQuery) -> None:
    group = replication_group(template, come2us().data.session_redis.name)
    zones = group["PreferredCacheClusterAZs"]
    assert group["NumCacheClusters"] == 2 and isinstance(zones, list) and len(set(zones)) == 2
    assert group["AutomaticFailoverEnabled"] is True and group["MultiAZEnabled"] is True


@then("the cache Redis is a single node with cluster mode disabled")
def cache_redis_single(template: TemplateQuery) -> None:
    group = replication_group(template, come2us().data.cache_redis.name)
    assert group["NumCacheClusters"] == 1 and group["ClusterMode"] == "disabled", group


# -- logs ---------------------------------------------------------------------------------------


@then(parsers.parse("every log group keeps its logs for {days:d} days"))
def log_retention(template: TemplateQuery, days: int) -> None:
    groups = template.of_type("AWS::Logs::LogGroup")
    assert groups
    wrong = {name: props.get("RetentionInDays") for name, props in groups.items()
             if props.get("RetentionInDays") != days}
    assert not wrong, f"log groups not kept {days} days: {wrong}"


@then("every container writes its log to a log group of the template")
def container_logs(template: TemplateQuery) -> None:
    written = template.log_groups_written_by_tasks()
    assert written <= set(template.of_type("AWS::Logs::LogGroup")), written


@then(parsers.parse("the access logs expire after {days:d} days"))
def access_logs_expire(template: TemplateQuery, days: int) -> None:
    name, _ = template.one("AWS::ElasticLoadBalancingV2::LoadBalancer")
    attributes = {a["Key"]: a["Value"]
                  for a in template.properties(name)["LoadBalancerAttributes"]}
    bucket = template.properties(str(attributes["access_logs.s3.bucket"]["Ref"]))
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert [rule.get("ExpirationInDays") for rule in rules] == [days], rules


# -- images -------------------------------------------------------------------------------------


@then("the bucket behind the CloudFront distribution is versioned with a lifecycle")
def images_versioned(template: TemplateQuery) -> None:
    buckets = template.distribution_buckets()
    assert len(buckets) == 1, buckets
    props = template.properties(buckets.pop())
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    assert props["LifecycleConfiguration"]["Rules"], "no lifecycle rule"


@then("only the CloudFront distribution may read it")
def images_private(template: TemplateQuery) -> None:
    bucket = template.distribution_buckets().pop()
    blocks = template.properties(bucket)["PublicAccessBlockConfiguration"]
    assert all(blocks.values()), blocks
    policies = [props for props in template.of_type("AWS::S3::BucketPolicy").values()
                if props["Bucket"] == {"Ref": bucket}]
    allowed = [statement["Principal"] for policy in policies
               for statement in policy["PolicyDocument"]["Statement"]
               if statement["Effect"] == "Allow"]
    assert allowed == [{"Service": "cloudfront.amazonaws.com"}], allowed


# -- scaling ------------------------------------------------------------------------------------


@then(parsers.parse("the scalable target of {service} allows {low:d} to {high:d} tasks"))
def scalable_target(template: TemplateQuery, service: str, low: int, high: int) -> None:
    deployed = template.ecs_services()
    targets = [t for t in template.scalable_targets()
               if t.service in deployed and t.service.rsplit("-", 1)[0] == service]
    assert targets, f"no scalable target for {service}"
    assert {(t.min_tasks, t.max_tasks) for t in targets} == {(low, high)}, targets


@then(parsers.parse("{service} is scaled {how}"))
def scaled_how(template: TemplateQuery, service: str, how: str) -> None:
    targets = [t for t in template.scalable_targets() if t.service.rsplit("-", 1)[0] == service]
    policies = [p for t in targets for p in template.scaling_policies_of(t.logical_id)]
    if how == "by hand only":
        assert targets and not policies, policies
    else:
        assert how == "on CPU" and len(policies) == len(targets), policies


@then("every ECS service has a scalable target with the model's min and max tasks")
def every_service_bounded(every_template: dict[str, TemplateQuery]) -> None:
    specs = {spec.name: spec for spec in come2us().compute.services}
    for name, template in every_template.items():
        targets = {t.service: t for t in template.scalable_targets()}
        assert set(targets) == set(template.ecs_services()), name
        for service, target in targets.items():
            scaling = specs[service.rsplit("-", 1)[0]].scaling
            assert (target.min_tasks, target.max_tasks) == (
                scaling.min_tasks, scaling.max_tasks), f"{name}: {target}"


# -- NAT ----------------------------------------------------------------------------------------


@then(parsers.parse("there are {count:d} NAT gateways, each in a different AZ"))
def nat_count(template: TemplateQuery, count: int) -> None:
    zones = template.nat_gateway_zones()
    assert len(zones) == count and len(set(zones.values())) == count, zones


@then(parsers.parse("every private subnet routes through {whose} NAT gateway"))
def nat_routes(template: TemplateQuery, whose: str) -> None:
    routes = template.private_routes()
    nat_zones = template.nat_gateway_zones()
    assert len(routes) == 2, routes
    if whose == "the one":
        assert len(set(routes.values())) == 1, routes
    else:
        assert whose == "its own AZ's"
        for subnet, nat in routes.items():
            assert template.subnet_zone({"Ref": subnet}) == nat_zones[nat], (subnet, nat)
