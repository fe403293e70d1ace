"""Security groups from the model's rules (§3): one group per role, one rule per permitted flow.

Ingress rules are separate resources (groups refer to each other, and inline references would
form cycles); egress rules are inline, which also replaces EC2's default allow-all egress.
A group with no permitted egress gets the documented placeholder rule (all protocols to
127.0.0.1/32), which allows nothing and removes the default.
"""

from __future__ import annotations

from ipaddress import IPv4Network

from troposphere import GetAtt, Ref, Template, ec2

from stack.aws.metadata import skip_checkov
from stack.aws.naming import logical
from stack.aws.scope import Scope
from stack.model.security import Allow, Group

NO_EGRESS = "127.0.0.1/32"  # an egress rule to loopback: "no egress", per the EC2 docs

GroupRefs = dict[Group, GetAtt]


def add_security_groups(t: Template, scope: Scope, vpc: Ref) -> GroupRefs:
    policy = scope.cloud.security
    groups: dict[Group, ec2.SecurityGroup] = {}
    for group in Group:
        groups[group] = t.add_resource(ec2.SecurityGroup(
            logical(group, "SecurityGroup"),
            GroupDescription=f"{scope.env.stack_name} {group}: least access, see stack/come2us.py",
            VpcId=vpc,
        ))
    refs: GroupRefs = {group: GetAtt(resource, "GroupId") for group, resource in groups.items()}

    for group, resource in groups.items():
        inline = [rule for rule in policy.egress(group) if rule.target != group]
        resource.SecurityGroupEgress = [_egress(rule, refs) for rule in inline] or [
            ec2.SecurityGroupRule(IpProtocol="-1", CidrIp=NO_EGRESS,
                                  Description="no egress: replaces the default allow-all")]
    for rule in policy.rules:
        if rule.source == rule.target and isinstance(rule.target, Group):
            t.add_resource(ec2.SecurityGroupEgress(
                _title(rule, "Egress"), GroupId=refs[rule.target], IpProtocol="tcp",
                FromPort=rule.port, ToPort=rule.port,
                DestinationSecurityGroupId=refs[rule.target], Description=rule.why))
        if not isinstance(rule.target, Group):
            continue
        ingress = t.add_resource(ec2.SecurityGroupIngress(
            _title(rule, "Ingress"), GroupId=refs[rule.target], IpProtocol="tcp",
            FromPort=rule.port, ToPort=rule.port, Description=rule.why,
            **_source(rule.source, refs)))
        if isinstance(rule.source, IPv4Network) and rule.port == scope.cloud.edge.http_port:
            skip_checkov(ingress, "CKV_AWS_260", "port 80 only answers with a redirect to "
                         "HTTPS (the HTTP listener has no other action)")
    return refs


def _title(rule: Allow, kind: str) -> str:
    source = "Internet" if isinstance(rule.source, IPv4Network) else str(rule.source)
    target = "Internet" if isinstance(rule.target, IPv4Network) else str(rule.target)
    return logical(source, "To", target, str(rule.port), kind)


def _source(source: Group | IPv4Network, refs: GroupRefs) -> dict[str, object]:
    if isinstance(source, IPv4Network):
        return {"CidrIp": str(source)}
    return {"SourceSecurityGroupId": refs[source]}


def _egress(rule: Allow, refs: GroupRefs) -> ec2.SecurityGroupRule:
    target = rule.target
    where = ({"CidrIp": str(target)} if isinstance(target, IPv4Network)
             else {"DestinationSecurityGroupId": refs[target]})
    return ec2.SecurityGroupRule(IpProtocol="tcp", FromPort=rule.port, ToPort=rule.port,
                                 Description=rule.why, **where)
