"""Questions asked of a rendered template: who may reach what, how each thing is configured.

The compliance feature and the unit tests read templates through this class, so they state
facts about the JSON CloudFormation receives — not about the model the JSON came from.
References are followed the way CloudFormation would (``Ref``, ``Fn::GetAtt … GroupId``);
anything the class cannot resolve is reported as it is, never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

Resource = dict[str, Any]
NO_EGRESS = "127.0.0.1/32"


@dataclass(frozen=True)
class Ingress:
    """One permitted inbound flow: into ``group`` from ``source`` (a group id or a range)."""

    group: str
    source: str
    from_port: int
    to_port: int
    from_range: bool

    @property
    def from_internet(self) -> bool:
        return self.from_range and IPv4Network(self.source).prefixlen == 0

    @property
    def ports(self) -> range:
        return range(self.from_port, self.to_port + 1)


@dataclass(frozen=True)
class ScalableTarget:
    service: str  # the ECS service's name, e.g. user-service-blue
    min_tasks: int
    max_tasks: int
    logical_id: str


def _logical(value: Any) -> str:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` points at; a literal stays as it is."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value


class TemplateQuery:
    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.resources: dict[str, Resource] = template.get("Resources", {})

    @classmethod
    def from_file(cls, path: Path) -> TemplateQuery:
        return cls(json.loads(path.read_text()))

    # -- lookup ---------------------------------------------------------------------------------

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Properties of every resource of a type, by logical id."""
        return {name: resource.get("Properties", {})
                for name, resource in sorted(self.resources.items())
                if resource["Type"] == resource_type}

    def one(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.of_type(resource_type)
        if len(found) != 1:
            raise AssertionError(f"expected one {resource_type}, found {sorted(found)}")
        return next(iter(found.items()))

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resources[logical_id].get("Properties", {})
        return properties

    # -- security groups ----------------------------------------------------------------------

    def ingress(self) -> list[Ingress]:
        """Every inbound rule: inline in a group, or a separate SecurityGroupIngress."""
        rules: list[tuple[str, dict[str, Any]]] = []
        for name, props in self.of_type("AWS::EC2::SecurityGroup").items():
            rules += [(name, rule) for rule in props.get("SecurityGroupIngress", [])]
        for props in self.of_type("AWS::EC2::SecurityGroupIngress").values():
            rules.append((_logical(props["GroupId"]), props))
        found = []
        for group, rule in rules:
            if rule.get("IpProtocol") in ("-1", -1):
                from_port, to_port = 0, 65535
            else:
                from_port, to_port = int(rule["FromPort"]), int(rule["ToPort"])
            if "CidrIp" in rule or "CidrIpv6" in rule:
                source, from_range = str(rule.get("CidrIp") or rule["CidrIpv6"]), True
                if ":" in source:
                    source = "0.0.0.0/0" if source == "::/0" else source
            else:
                source = _logical(rule.get("SourceSecurityGroupId") or
                                  rule.get("SourcePrefixListId"))
                from_range = False
            found.append(Ingress(group, source, from_port, to_port, from_range))
        return found

    def groups_of(self, logical_id: str) -> set[str]:
        """The security groups a resource is placed in, wherever its type keeps them."""
        props = self.properties(logical_id)
        candidates: list[Any] = []
        for key in ("SecurityGroups", "SecurityGroupIds", "VPCSecurityGroups"):
            candidates += props.get(key, [])
        candidates += props.get("BrokerNodeGroupInfo", {}).get("SecurityGroups", [])
        network = props.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {})
        candidates += network.get("SecurityGroups", [])
        for interface in props.get("NetworkInterfaces", []):
            candidates += interface.get("GroupSet", [])
        return {_logical(group) for group in candidates}

    def sources_into(self, group: str) -> set[str]:
        return {rule.source for rule in self.ingress() if rule.group == group}

    def egress_of(self, group: str) -> list[dict[str, Any]]:
        """Outbound rules of a group, without the placeholder that means "none"."""
        inline = self.properties(group).get("SecurityGroupEgress", [])
        separate = [props for props in self.of_type("AWS::EC2::SecurityGroupEgress").values()
                    if _logical(props["GroupId"]) == group]
        return [rule for rule in [*inline, *separate] if rule.get("CidrIp") != NO_EGRESS]

    # -- compute --------------------------------------------------------------------------------

    def scalable_targets(self) -> list[ScalableTarget]:
        targets = []
        for name, props in self.of_type("AWS::ApplicationAutoScaling::ScalableTarget").items():
            resource_id = props["ResourceId"]
            if not isinstance(resource_id, str) or not resource_id.startswith("service/"):
                raise AssertionError(f"{name}: cannot read the ECS service of {resource_id!r}")
            targets.append(ScalableTarget(resource_id.rsplit("/", 1)[1],
                                          int(props["MinCapacity"]), int(props["MaxCapacity"]),
                                          name))
        return targets

    def scaling_policies_of(self, target_logical_id: str) -> list[str]:
        return [name for name, props
                in self.of_type("AWS::ApplicationAutoScaling::ScalingPolicy").items()
                if _logical(props.get("ScalingTargetId")) == target_logical_id]

    def ecs_services(self) -> dict[str, dict[str, Any]]:
        """ECS services by their ServiceName."""
        return {props["ServiceName"]: props
                for props in self.of_type("AWS::ECS::Service").values()}

    def log_groups_written_by_tasks(self) -> set[str]:
        """What every container's awslogs driver writes to: logical ids, or literal names."""
        found = set()
        for props in self.of_type("AWS::ECS::TaskDefinition").values():
            for container in props["ContainerDefinitions"]:
                options = container.get("LogConfiguration", {}).get("Options", {})
                found.add(_logical(options.get("awslogs-group")))
        return found

    # -- network --------------------------------------------------------------------------------

    def subnet_zone(self, subnet: Any) -> str:
        return str(self.properties(_logical(subnet))["AvailabilityZone"])

    def nat_gateway_zones(self) -> dict[str, str]:
        """Each NAT gateway's AZ, by logical id."""
        return {name: self.subnet_zone(props["SubnetId"])
                for name, props in self.of_type("AWS::EC2::NatGateway").items()}

    def private_routes(self) -> dict[str, str]:
        """For each subnet whose default route goes to a NAT gateway: that NAT's logical id."""
        nat_of_table = {_logical(props["RouteTableId"]): _logical(props["NatGatewayId"])
                        for props in self.of_type("AWS::EC2::Route").values()
                        if "NatGatewayId" in props}
        return {_logical(props["SubnetId"]): nat_of_table[_logical(props["RouteTableId"])]
                for props in self.of_type("AWS::EC2::SubnetRouteTableAssociation").values()
                if _logical(props["RouteTableId"]) in nat_of_table}

    # -- storage --------------------------------------------------------------------------------

    def distribution_buckets(self) -> set[str]:
        """The S3 buckets (logical ids) that CloudFront distributions serve."""
        found = set()
        for props in self.of_type("AWS::CloudFront::Distribution").values():
            for origin in props["DistributionConfig"]["Origins"]:
                found.add(_logical(origin["DomainName"]))
        return found
