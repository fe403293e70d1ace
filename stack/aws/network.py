"""The VPC (§3): subnets per AZ, the internet gateway, NAT gateways, routes, flow logs.

Each private subnet routes to the internet through the NAT gateway of its own AZ when that AZ
has one (prod), else through the first AZ's (dev, stage: one NAT, §10).
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Template, ec2, iam

from stack.aws.encryption import Key
from stack.aws.iam_documents import allow, assume_role, document
from stack.aws.loggroups import add_log_group
from stack.aws.metadata import pin_to_zone
from stack.aws.naming import logical
from stack.aws.scope import Scope
from stack.model.network import Tier


@dataclass(frozen=True)
class NetworkRefs:
    vpc: Ref
    subnets: dict[str, Ref]  # by the model's subnet name: public-a, private-b, …

    def subnet(self, tier: Tier, zone_label: str, scope: Scope) -> Ref:
        return self.subnets[scope.layout.subnet(tier, zone_label).name]

    def tier(self, tier: Tier, scope: Scope) -> list[Ref]:
        return [self.subnets[subnet.name] for subnet in scope.layout.tier(tier)]


def add_network(t: Template, scope: Scope, key: Key) -> NetworkRefs:
    layout = scope.layout
    vpc = t.add_resource(ec2.VPC("Vpc", CidrBlock=str(layout.cidr), EnableDnsHostnames=True,
                                 EnableDnsSupport=True))
    gateway = t.add_resource(ec2.InternetGateway("InternetGateway"))
    attachment = t.add_resource(ec2.VPCGatewayAttachment(
        "InternetGatewayAttachment", VpcId=Ref(vpc), InternetGatewayId=Ref(gateway)))

    subnets: dict[str, Ref] = {}
    for subnet in layout.subnets:
        resource = t.add_resource(pin_to_zone(ec2.Subnet(
            logical("Subnet", subnet.name),
            VpcId=Ref(vpc),
            CidrBlock=str(subnet.cidr),
            AvailabilityZone=subnet.zone.name,
            MapPublicIpOnLaunch=False,  # nothing gets a public address unless it asks
        )))
        subnets[subnet.name] = Ref(resource)

    public_routes = t.add_resource(ec2.RouteTable("PublicRouteTable", VpcId=Ref(vpc)))
    t.add_resource(ec2.Route("PublicDefaultRoute", RouteTableId=Ref(public_routes),
                             DestinationCidrBlock="0.0.0.0/0", GatewayId=Ref(gateway),
                             DependsOn=attachment.title))
    for subnet in layout.tier(Tier.PUBLIC):
        t.add_resource(ec2.SubnetRouteTableAssociation(
            logical("Subnet", subnet.name, "Routes"),
            SubnetId=subnets[subnet.name], RouteTableId=Ref(public_routes)))

    nats: dict[str, Ref] = {}
    for zone in layout.nat_zones:
        letter = zone.label.removeprefix("AZ-")
        address = t.add_resource(ec2.EIP(logical("Nat", letter, "Address"), Domain="vpc",
                                         DependsOn=attachment.title))
        nat = t.add_resource(ec2.NatGateway(
            logical("Nat", letter, "Gateway"),
            AllocationId=GetAtt(address, "AllocationId"),
            SubnetId=subnets[layout.subnet(Tier.PUBLIC, zone.label).name],
        ))
        nats[zone.label] = Ref(nat)
    for subnet in layout.tier(Tier.PRIVATE):
        routes = t.add_resource(ec2.RouteTable(logical("Subnet", subnet.name, "RouteTable"),
                                               VpcId=Ref(vpc)))
        t.add_resource(ec2.Route(
            logical("Subnet", subnet.name, "DefaultRoute"), RouteTableId=Ref(routes),
            DestinationCidrBlock="0.0.0.0/0",
            NatGatewayId=nats[layout.nat_zone_for(subnet.zone).label]))
        t.add_resource(ec2.SubnetRouteTableAssociation(
            logical("Subnet", subnet.name, "Routes"),
            SubnetId=subnets[subnet.name], RouteTableId=Ref(routes)))

    _add_flow_log(t, scope, key, Ref(vpc))
    return NetworkRefs(vpc=Ref(vpc), subnets=subnets)


def _add_flow_log(t: Template, scope: Scope, key: Key, vpc: Ref) -> None:
    """Rejected connections only: the record of what the security groups refuse, at a
    fraction of the log volume (and cost, §10) of recording every flow."""
    group = add_log_group(t, scope, key, "VpcFlowLogGroup", f"/come2us/{scope.env.name}/vpc-flow")
    role = t.add_resource(iam.Role(
        "VpcFlowLogRole",
        AssumeRolePolicyDocument=assume_role("vpc-flow-logs.amazonaws.com"),
        Policies=[iam.Policy(PolicyName="write-flow-logs", PolicyDocument=document(allow(
            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            GetAtt(group, "Arn"))))],
    ))
    t.add_resource(ec2.FlowLog(
        "VpcFlowLog", ResourceId=vpc, ResourceType="VPC", TrafficType="REJECT",
        LogDestinationType="cloud-watch-logs", LogGroupName=Ref(group),
        DeliverLogsPermissionArn=GetAtt(role, "Arn")))
