"""After a deploy, ask the cloud about every resource of the template, one by one.

A stack that says CREATE_COMPLETE has only said that CloudFormation finished; on the emulator
it is no proof at all (moto skips types silently and drops properties). So each resource of the
template is looked up with the describe call of its own service and its key properties are
compared with the template's — the VPC's range, a subnet's AZ, a listener's default target
group, a service's load balancer and subnets, a bucket's versioning, an alarm's threshold. A
resource type the endpoint has no API for is reported as ``not emulated`` with the reason,
never counted as present.

The checks are the same for AWS and the emulator; only the emulator deploy runs them after
every update (on AWS CloudFormation's own status is trusted, and a check can be run by hand).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from stack.aws.deployed import DeployedStack, Unresolvable

OK = "ok"
MISSING = "missing"
DIFFERS = "differs"
NOT_EMULATED = "not emulated"
UNCHECKED = "unchecked"


@dataclass(frozen=True)
class Check:
    logical_id: str
    resource_type: str
    status: str
    detail: str = ""


@dataclass
class VerificationReport:
    stack: str
    checks: list[Check] = field(default_factory=list)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status in (MISSING, DIFFERS, UNCHECKED)]

    @property
    def not_emulated(self) -> list[Check]:
        return [c for c in self.checks if c.status == NOT_EMULATED]

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)

    def summary(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "resources": len(self.checks),
            "ok": self.count(OK),
            "not_emulated": {c.logical_id: c.detail for c in self.not_emulated},
            "problems": {c.logical_id: f"{c.status}: {c.detail}" for c in self.problems},
        }


class Missing(LookupError):
    """The resource is not there."""


PropertyGaps = Mapping[tuple[str, str], str]  # (type, property) → why it is not emulated


class Context:
    """One resource under check: its template properties, resolved on demand, and findings."""

    def __init__(self, deployed: DeployedStack, logical: str,
                 property_gaps: PropertyGaps | None = None) -> None:
        self.d = deployed
        self.logical = logical
        self.type = deployed.type_of(logical)
        self.props: dict[str, Any] = deployed.resources[logical].get("Properties", {})
        self.problems: list[str] = []
        self.skipped: list[str] = []
        self.gaps = property_gaps or {}

    def client(self, service: str) -> Any:
        return self.d.clients(service)

    @property
    def pid(self) -> str:
        try:
            return self.d.physical_id(self.logical)
        except Unresolvable:
            raise Missing("no physical id: the resource was not created") from None

    def get(self, key: str, default: Any = None) -> Any:
        """A property, resolved; ``default`` when absent."""
        if key not in self.props:
            return default
        return self.d.resolve(self.props[key])

    def expect(self, what: str, wanted: Any, seen: Any) -> None:
        if wanted is None:
            return
        gap = self.gaps.get((self.type, what))
        if gap is not None:
            self.skipped.append(f"{what} (not emulated: {gap})")
            return
        if _normal(wanted) != _normal(seen):
            self.problems.append(f"{what}: template {wanted!r}, deployed {seen!r}")

    def expect_prop(self, key: str, seen: Any) -> None:
        try:
            wanted = self.get(key)
        except Unresolvable as err:
            self.skipped.append(f"{key}: {err}")
            return
        self.expect(key, wanted, seen)


def _normal(value: Any) -> Any:
    """Compare as CloudFormation does: numbers and booleans may arrive as strings."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(float(value))
    if isinstance(value, str):
        try:
            return str(float(value))
        except ValueError:
            return value.lower() if value.lower() in ("true", "false") else value
    if isinstance(value, list):
        return sorted(json.dumps(_normal(v), sort_keys=True) for v in value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


Checker = Callable[[Context], None]
CHECKERS: dict[str, Checker] = {}


def checks(*types: str) -> Callable[[Checker], Checker]:
    def register(function: Checker) -> Checker:
        for kind in types:
            CHECKERS[kind] = function
        return function
    return register


def verify(deployed: DeployedStack, not_emulated: Mapping[str, str] | None = None,
           property_gaps: PropertyGaps | None = None) -> VerificationReport:
    """Check every resource of the deployed template; ``not_emulated`` maps resource types the
    endpoint cannot create to the reason, ``property_gaps`` the properties it cannot set."""
    report = VerificationReport(deployed.name)
    gaps = not_emulated or {}
    for logical, resource in sorted(deployed.resources.items()):
        kind = resource["Type"]
        if kind in gaps:
            report.checks.append(Check(logical, kind, NOT_EMULATED, gaps[kind]))
            continue
        checker = CHECKERS.get(kind)
        if checker is None:
            report.checks.append(Check(logical, kind, UNCHECKED, "no describe check for this type"))
            continue
        context = Context(deployed, logical, property_gaps)
        try:
            checker(context)
        except Missing as err:
            report.checks.append(Check(logical, kind, MISSING, str(err)))
            continue
        except ClientError as err:
            report.checks.append(Check(logical, kind, MISSING, _client_error(err)))
            continue
        if context.problems:
            report.checks.append(Check(logical, kind, DIFFERS, "; ".join(context.problems)))
        else:
            report.checks.append(Check(logical, kind, OK, "; ".join(
                f"not compared: {s}" for s in context.skipped)))
    return report


def _client_error(err: ClientError) -> str:
    error = err.response.get("Error", {})
    return f"{error.get('Code', '')}: {error.get('Message', '')}"


def _one(items: list[Any], what: str) -> Any:
    if not items:
        raise Missing(f"{what} not found")
    return items[0]


# -- network ----------------------------------------------------------------------------------


@checks("AWS::EC2::VPC")
def _vpc(c: Context) -> None:
    vpc = _one(c.client("ec2").describe_vpcs(VpcIds=[c.pid])["Vpcs"], "VPC")
    c.expect_prop("CidrBlock", vpc["CidrBlock"])


@checks("AWS::EC2::Subnet")
def _subnet(c: Context) -> None:
    subnet = _one(c.client("ec2").describe_subnets(SubnetIds=[c.pid])["Subnets"], "subnet")
    c.expect_prop("CidrBlock", subnet["CidrBlock"])
    c.expect_prop("AvailabilityZone", subnet["AvailabilityZone"])
    c.expect_prop("VpcId", subnet["VpcId"])


@checks("AWS::EC2::InternetGateway")
def _gateway(c: Context) -> None:
    _one(c.client("ec2").describe_internet_gateways(
        InternetGatewayIds=[c.pid])["InternetGateways"], "internet gateway")


@checks("AWS::EC2::VPCGatewayAttachment")
def _attachment(c: Context) -> None:
    gateway = _one(c.client("ec2").describe_internet_gateways(
        InternetGatewayIds=[c.get("InternetGatewayId")])["InternetGateways"], "internet gateway")
    attached = [a["VpcId"] for a in gateway.get("Attachments", [])]
    if c.get("VpcId") not in attached:
        raise Missing(f"the gateway is attached to {attached}, not {c.get('VpcId')}")


@checks("AWS::EC2::EIP")
def _address(c: Context) -> None:
    address = _one(c.client("ec2").describe_addresses(PublicIps=[c.pid])["Addresses"], "EIP")
    c.expect_prop("Domain", address.get("Domain"))


@checks("AWS::EC2::NatGateway")
def _nat(c: Context) -> None:
    nat = _one(c.client("ec2").describe_nat_gateways(
        NatGatewayIds=[c.pid])["NatGateways"], "NAT gateway")
    c.expect_prop("SubnetId", nat["SubnetId"])


@checks("AWS::EC2::RouteTable")
def _route_table(c: Context) -> None:
    table = _one(c.client("ec2").describe_route_tables(
        RouteTableIds=[c.pid])["RouteTables"], "route table")
    c.expect_prop("VpcId", table["VpcId"])


def _table(c: Context) -> dict[str, Any]:
    found: dict[str, Any] = _one(c.client("ec2").describe_route_tables(
        RouteTableIds=[c.get("RouteTableId")])["RouteTables"], "route table")
    return found


@checks("AWS::EC2::Route")
def _route(c: Context) -> None:
    destination = c.get("DestinationCidrBlock")
    routes = [r for r in _table(c)["Routes"] if r.get("DestinationCidrBlock") == destination]
    route = _one(routes, f"route to {destination}")
    for key in ("GatewayId", "NatGatewayId"):
        if key in c.props:
            c.expect_prop(key, route.get(key))


@checks("AWS::EC2::SubnetRouteTableAssociation")
def _association(c: Context) -> None:
    subnets = [a.get("SubnetId") for a in _table(c).get("Associations", [])]
    if c.get("SubnetId") not in subnets:
        raise Missing(f"subnet {c.get('SubnetId')} is not associated with the route table")


def _permission(rule: dict[str, Any]) -> set[tuple[str, int, int, str]]:
    """An EC2 permission as (protocol, from, to, peer) tuples."""
    protocol = str(rule.get("IpProtocol"))
    low, high = int(rule.get("FromPort", -1)), int(rule.get("ToPort", -1))
    if protocol == "-1":
        low = high = -1
    peers = [r["CidrIp"] for r in rule.get("IpRanges", [])] + \
        [g["GroupId"] for g in rule.get("UserIdGroupPairs", [])]
    return {(protocol, low, high, peer) for peer in peers}


def template_rule(c: Context, rule: dict[str, Any]) -> tuple[str, int, int, str]:
    protocol = str(c.d.resolve(rule["IpProtocol"]))
    peer = next(c.d.resolve(rule[k]) for k in ("CidrIp", "SourceSecurityGroupId",
                                                "DestinationSecurityGroupId") if k in rule)
    if protocol == "-1":
        return protocol, -1, -1, str(peer)
    return protocol, int(rule["FromPort"]), int(rule["ToPort"]), str(peer)


def egress_rules(deployed: DeployedStack, logical: str) -> set[tuple[str, int, int, str]]:
    """The egress a group must have: its inline rules and the separate egress resources."""
    context = Context(deployed, logical)
    wanted = {template_rule(context, rule)
              for rule in context.props.get("SecurityGroupEgress", [])}
    group = deployed.physical_id(logical)
    for other, props in deployed.of_type("AWS::EC2::SecurityGroupEgress"):
        rule_context = Context(deployed, other)
        if rule_context.get("GroupId") == group:
            wanted.add(template_rule(rule_context, props))
    return wanted


def _group(c: Context, group_id: str) -> dict[str, Any]:
    found: dict[str, Any] = _one(c.client("ec2").describe_security_groups(
        GroupIds=[group_id])["SecurityGroups"], f"security group {group_id}")
    return found


@checks("AWS::EC2::SecurityGroup")
def _security_group(c: Context) -> None:
    group = _group(c, c.pid)
    c.expect_prop("VpcId", group.get("VpcId"))
    seen = set().union(*(_permission(r) for r in group.get("IpPermissionsEgress", [])))
    c.expect("egress", sorted(egress_rules(c.d, c.logical)), sorted(seen))


@checks("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")
def _group_rule(c: Context) -> None:
    group = _group(c, c.get("GroupId"))
    key = "IpPermissions" if "Ingress" in c.d.type_of(c.logical) else "IpPermissionsEgress"
    seen = set().union(*(_permission(r) for r in group.get(key, [])))
    wanted = template_rule(c, c.props)
    if wanted not in seen:
        raise Missing(f"rule {wanted} not in {key} of {c.get('GroupId')}")


@checks("AWS::EC2::FlowLog")
def _flow_log(c: Context) -> None:
    log = _one(c.client("ec2").describe_flow_logs(FlowLogIds=[c.pid])["FlowLogs"], "flow log")
    c.expect_prop("TrafficType", log.get("TrafficType"))
    c.expect_prop("ResourceId", log.get("ResourceId"))


@checks("AWS::EC2::Instance")
def _instance(c: Context) -> None:
    reservations = c.client("ec2").describe_instances(InstanceIds=[c.pid])["Reservations"]
    instance = _one([i for r in reservations for i in r["Instances"]], "instance")
    c.expect_prop("InstanceType", instance["InstanceType"])
    interfaces = c.get("NetworkInterfaces") or [{}]
    c.expect("SubnetId", c.get("SubnetId") or interfaces[0].get("SubnetId"),
             instance.get("SubnetId"))


@checks("AWS::EC2::Volume")
def _volume(c: Context) -> None:
    volume = _one(c.client("ec2").describe_volumes(VolumeIds=[c.pid])["Volumes"], "volume")
    c.expect_prop("Size", volume["Size"])
    c.expect_prop("AvailabilityZone", volume["AvailabilityZone"])
    c.expect_prop("Encrypted", volume["Encrypted"])


@checks("AWS::EC2::VolumeAttachment")
def _volume_attachment(c: Context) -> None:
    volume = _one(c.client("ec2").describe_volumes(VolumeIds=[c.get("VolumeId")])["Volumes"],
                  "volume")
    attached = [a["InstanceId"] for a in volume.get("Attachments", [])]
    if c.get("InstanceId") not in attached:
        raise Missing(f"the volume is attached to {attached}, not {c.get('InstanceId')}")


# -- compute and edge ---------------------------------------------------------------------


@checks("AWS::ECR::Repository")
def _repository(c: Context) -> None:
    repository = _one(c.client("ecr").describe_repositories(
        repositoryNames=[c.pid])["repositories"], "repository")
    c.expect_prop("ImageTagMutability", repository.get("imageTagMutability"))


@checks("AWS::ECS::Cluster")
def _cluster(c: Context) -> None:
    cluster = _one(c.client("ecs").describe_clusters(clusters=[c.pid])["clusters"], "cluster")
    c.expect("status", "ACTIVE", cluster["status"])


@checks("AWS::ECS::TaskDefinition")
def _task_definition(c: Context) -> None:
    definition = c.client("ecs").describe_task_definition(taskDefinition=c.pid)["taskDefinition"]
    c.expect_prop("Family", definition["family"])
    c.expect_prop("Cpu", definition.get("cpu"))
    c.expect_prop("Memory", definition.get("memory"))
    wanted = c.get("ContainerDefinitions")
    c.expect("images", [d["Image"] for d in wanted],
             [d["image"] for d in definition["containerDefinitions"]])


@checks("AWS::ECS::Service")
def _service(c: Context) -> None:
    found = c.client("ecs").describe_services(cluster=c.get("Cluster"),
                                              services=[c.get("ServiceName")])["services"]
    service = _one([s for s in found if s.get("status") == "ACTIVE"], "active service")
    c.expect_prop("DesiredCount", service["desiredCount"])
    c.expect_prop("LaunchType", service.get("launchType"))
    c.expect("TaskDefinition", c.get("TaskDefinition"), service.get("taskDefinition"))
    balancers = c.get("LoadBalancers") or []
    c.expect("LoadBalancers", [b["TargetGroupArn"] for b in balancers],
             [b.get("targetGroupArn") for b in service.get("loadBalancers", [])])
    network = (c.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration", {})
    seen = service.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
    c.expect("Subnets", network.get("Subnets"), seen.get("subnets"))
    c.expect("SecurityGroups", network.get("SecurityGroups"), seen.get("securityGroups"))


@checks("AWS::ElasticLoadBalancingV2::LoadBalancer")
def _load_balancer(c: Context) -> None:
    balancer = _one(c.client("elbv2").describe_load_balancers(
        LoadBalancerArns=[c.pid])["LoadBalancers"], "load balancer")
    c.expect_prop("Type", balancer["Type"])
    c.expect_prop("Scheme", balancer["Scheme"])


@checks("AWS::ElasticLoadBalancingV2::TargetGroup")
def _target_group(c: Context) -> None:
    group = _one(c.client("elbv2").describe_target_groups(
        TargetGroupArns=[c.pid])["TargetGroups"], "target group")
    for key in ("Port", "Protocol", "TargetType", "HealthCheckPath", "HealthyThresholdCount"):
        c.expect_prop(key, group.get(key))


def _forward_target(actions: list[dict[str, Any]]) -> str | None:
    for action in actions:
        if action.get("Type") == "forward":
            return str(action.get("TargetGroupArn"))
    return None


@checks("AWS::ElasticLoadBalancingV2::Listener")
def _listener(c: Context) -> None:
    listener = _one(c.client("elbv2").describe_listeners(ListenerArns=[c.pid])["Listeners"],
                    "listener")
    c.expect_prop("Port", listener["Port"])
    c.expect_prop("Protocol", listener["Protocol"])
    wanted = c.get("DefaultActions")
    c.expect("default action", [a["Type"] for a in wanted],
             [a["Type"] for a in listener["DefaultActions"]])
    c.expect("forwards to", _forward_target(wanted), _forward_target(listener["DefaultActions"]))


@checks("AWS::ElasticLoadBalancingV2::ListenerRule")
def _listener_rule(c: Context) -> None:
    rule = _one(c.client("elbv2").describe_rules(RuleArns=[c.pid])["Rules"], "listener rule")
    c.expect_prop("Priority", rule["Priority"])
    c.expect("forwards to", _forward_target(c.get("Actions")), _forward_target(rule["Actions"]))


@checks("AWS::Route53::RecordSet")
def _record(c: Context) -> None:
    name = str(c.get("Name")).rstrip(".") + "."
    records = c.client("route53").list_resource_record_sets(
        HostedZoneId=c.get("HostedZoneId"), StartRecordName=name,
        StartRecordType=c.get("Type"), MaxItems="1")["ResourceRecordSets"]
    record = _one([r for r in records if r["Name"] == name and r["Type"] == c.get("Type")],
                  f"record {name}")
    alias = c.get("AliasTarget")
    if alias:
        c.expect("alias", str(alias["DNSName"]).rstrip("."),
                 str(record.get("AliasTarget", {}).get("DNSName", "")).rstrip("."))


@checks("AWS::CertificateManager::Certificate")
def _certificate(c: Context) -> None:
    certificate = c.client("acm").describe_certificate(CertificateArn=c.pid)["Certificate"]
    c.expect_prop("DomainName", certificate["DomainName"])
    names = set(certificate.get("SubjectAlternativeNames", []))
    missing = set(c.get("SubjectAlternativeNames") or []) - names
    if missing:
        c.problems.append(f"SubjectAlternativeNames lacks {sorted(missing)}")


# -- identity, keys, secrets ----------------------------------------------------------------


@checks("AWS::IAM::Role")
def _role(c: Context) -> None:
    role = c.client("iam").get_role(RoleName=c.pid)["Role"]
    document = role["AssumeRolePolicyDocument"]
    if isinstance(document, str):
        from urllib.parse import unquote

        document = json.loads(unquote(document))
    c.expect("trusted services",
             [s["Principal"] for s in c.get("AssumeRolePolicyDocument")["Statement"]],
             [s["Principal"] for s in document["Statement"]])


@checks("AWS::IAM::InstanceProfile")
def _profile(c: Context) -> None:
    profile = c.client("iam").get_instance_profile(InstanceProfileName=c.pid)["InstanceProfile"]
    c.expect("Roles", c.get("Roles"), [r["RoleName"] for r in profile["Roles"]])


@checks("AWS::KMS::Key")
def _key(c: Context) -> None:
    kms = c.client("kms")
    metadata = kms.describe_key(KeyId=c.pid)["KeyMetadata"]
    c.expect("Enabled", True, metadata["Enabled"])
    c.expect_prop("EnableKeyRotation", kms.get_key_rotation_status(KeyId=c.pid)[
        "KeyRotationEnabled"])
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=c.pid)["Tags"]}
    c.expect("Tags", {t["Key"]: t["Value"] for t in c.get("Tags") or []}, tags)


@checks("AWS::KMS::Alias")
def _alias(c: Context) -> None:
    aliases = c.client("kms").list_aliases(KeyId=c.get("TargetKeyId"))["Aliases"]
    if c.get("AliasName") not in [a["AliasName"] for a in aliases]:
        raise Missing(f"alias {c.get('AliasName')} not on key {c.get('TargetKeyId')}")


@checks("AWS::SecretsManager::Secret")
def _secret(c: Context) -> None:
    secret = c.client("secretsmanager").describe_secret(SecretId=c.pid)
    c.expect_prop("Name", secret["Name"])
    c.expect("KmsKeyId set", True, bool(secret.get("KmsKeyId")))


@checks("AWS::SecretsManager::SecretTargetAttachment")
def _secret_attachment(c: Context) -> None:
    value = json.loads(c.client("secretsmanager").get_secret_value(
        SecretId=c.get("SecretId"))["SecretString"])
    instance = _one(c.client("rds").describe_db_instances(
        DBInstanceIdentifier=c.get("TargetId"))["DBInstances"], "DB instance")
    c.expect("host", instance["Endpoint"]["Address"], value.get("host"))


# -- data ---------------------------------------------------------------------------------


@checks("AWS::RDS::DBInstance")
def _db_instance(c: Context) -> None:
    instance = _one(c.client("rds").describe_db_instances(
        DBInstanceIdentifier=c.pid)["DBInstances"], "DB instance")
    c.expect_prop("DBInstanceClass", instance["DBInstanceClass"])
    c.expect_prop("Engine", instance["Engine"])
    if "MultiAZ" in c.props:
        c.expect_prop("MultiAZ", instance["MultiAZ"])
    if "SourceDBInstanceIdentifier" in c.props:
        c.expect("replica of", c.get("SourceDBInstanceIdentifier"),
                 instance.get("ReadReplicaSourceDBInstanceIdentifier"))
    if "DBParameterGroupName" in c.props:
        groups = [g["DBParameterGroupName"] for g in instance.get("DBParameterGroups", [])]
        c.expect("DBParameterGroupName", [c.get("DBParameterGroupName")], groups)


@checks("AWS::RDS::DBParameterGroup")
def _db_parameters(c: Context) -> None:
    rds = c.client("rds")
    group = _one(rds.describe_db_parameter_groups(
        DBParameterGroupName=c.pid)["DBParameterGroups"], "DB parameter group")
    c.expect_prop("Family", group["DBParameterGroupFamily"])
    seen = {p["ParameterName"]: p.get("ParameterValue")
            for p in rds.describe_db_parameters(DBParameterGroupName=c.pid)["Parameters"]}
    for name, value in (c.get("Parameters") or {}).items():
        c.expect(name, value, seen.get(name))


@checks("AWS::RDS::DBSubnetGroup")
def _db_subnets(c: Context) -> None:
    # moto reports no physical id for it: find it through the instances that use it.
    for logical, props in c.d.of_type("AWS::RDS::DBInstance"):
        if props.get("DBSubnetGroupName") == {"Ref": c.logical}:
            instance = _one(c.client("rds").describe_db_instances(
                DBInstanceIdentifier=c.d.physical_id(logical))["DBInstances"], "DB instance")
            subnets = instance.get("DBSubnetGroup", {}).get("Subnets", [])
            c.expect("SubnetIds", c.get("SubnetIds"), [s["SubnetIdentifier"] for s in subnets])
            return
    raise Missing("no DB instance uses this subnet group")


@checks("AWS::ElastiCache::SubnetGroup")
def _cache_subnets(c: Context) -> None:
    group = _one(c.client("elasticache").describe_cache_subnet_groups(
        CacheSubnetGroupName=c.get("CacheSubnetGroupName"))["CacheSubnetGroups"],
        "cache subnet group")
    c.expect("SubnetIds", c.get("SubnetIds"),
             [s["SubnetIdentifier"] for s in group.get("Subnets", [])])


@checks("AWS::ElastiCache::ReplicationGroup")
def _replication_group(c: Context) -> None:
    group = _one(c.client("elasticache").describe_replication_groups(
        ReplicationGroupId=c.get("ReplicationGroupId"))["ReplicationGroups"],
        "replication group")
    c.expect("AutomaticFailoverEnabled", c.get("AutomaticFailoverEnabled"),
             group.get("AutomaticFailover") == "enabled")
    c.expect("MultiAZEnabled", c.get("MultiAZEnabled"), group.get("MultiAZ") == "enabled")
    c.expect("NumCacheClusters", c.get("NumCacheClusters"), len(group.get("MemberClusters", [])))


@checks("AWS::ElastiCache::ParameterGroup")
def _cache_parameters(c: Context) -> None:
    groups = c.client("elasticache").describe_cache_parameter_groups(
        CacheParameterGroupName=c.pid)["CacheParameterGroups"]
    group = _one(groups, "cache parameter group")
    c.expect_prop("CacheParameterGroupFamily", group["CacheParameterGroupFamily"])


@checks("AWS::MSK::Cluster")
def _kafka(c: Context) -> None:
    clusters = c.client("kafka").list_clusters(
        ClusterNameFilter=c.get("ClusterName"))["ClusterInfoList"]
    listed = _one([k for k in clusters if k["ClusterName"] == c.get("ClusterName")],
                  "MSK cluster")
    cluster = c.client("kafka").describe_cluster(ClusterArn=listed["ClusterArn"])["ClusterInfo"]
    c.expect_prop("NumberOfBrokerNodes", cluster.get("NumberOfBrokerNodes"))
    c.expect_prop("KafkaVersion", cluster.get("CurrentBrokerSoftwareInfo", {}).get(
        "KafkaVersion"))


@checks("AWS::DynamoDB::Table")
def _table_check(c: Context) -> None:
    table = c.client("dynamodb").describe_table(TableName=c.pid)["Table"]
    c.expect("KeySchema", c.get("KeySchema"), table["KeySchema"])
    c.expect_prop("BillingMode", table.get("BillingModeSummary", {}).get("BillingMode"))


@checks("AWS::S3::Bucket")
def _bucket(c: Context) -> None:
    s3 = c.client("s3")
    s3.head_bucket(Bucket=c.pid)
    versioning = c.get("VersioningConfiguration") or {}
    c.expect("versioning", versioning.get("Status"),
             s3.get_bucket_versioning(Bucket=c.pid).get("Status"))
    wanted = [r["Id"] for r in (c.get("LifecycleConfiguration") or {}).get("Rules", [])]
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=c.pid).get("Rules", [])
    except ClientError:
        rules = []
    c.expect("lifecycle rules", wanted, [r.get("ID") for r in rules])


@checks("AWS::S3::BucketPolicy")
def _bucket_policy(c: Context) -> None:
    try:
        policy = json.loads(c.client("s3").get_bucket_policy(Bucket=c.get("Bucket"))["Policy"])
    except ClientError as err:
        raise Missing(f"no policy on {c.get('Bucket')}: {_client_error(err)}") from err
    c.expect("statements", [s.get("Sid") for s in c.get("PolicyDocument")["Statement"]],
             [s.get("Sid") for s in policy["Statement"]])


@checks("AWS::CloudFront::OriginAccessControl")
def _origin_access(c: Context) -> None:
    control = c.client("cloudfront").get_origin_access_control(Id=c.pid)["OriginAccessControl"]
    c.expect("Name", c.get("OriginAccessControlConfig")["Name"],
             control["OriginAccessControlConfig"]["Name"])


@checks("AWS::CloudFront::Distribution")
def _distribution(c: Context) -> None:
    config = c.client("cloudfront").get_distribution(Id=c.pid)["Distribution"][
        "DistributionConfig"]
    wanted = c.get("DistributionConfig")
    c.expect("Enabled", wanted["Enabled"], config["Enabled"])
    c.expect("origins", [o["DomainName"] for o in wanted["Origins"]],
             [o["DomainName"] for o in config["Origins"].get("Items", [])])


# -- observability ---------------------------------------------------------------------------


@checks("AWS::Logs::LogGroup")
def _log_group(c: Context) -> None:
    groups = c.client("logs").describe_log_groups(logGroupNamePrefix=c.pid)["logGroups"]
    group = _one([g for g in groups if g["logGroupName"] == c.pid], "log group")
    c.expect_prop("RetentionInDays", group.get("retentionInDays"))


@checks("AWS::SNS::Topic")
def _topic(c: Context) -> None:
    attributes = c.client("sns").get_topic_attributes(TopicArn=c.pid)["Attributes"]
    c.expect("KMS key set", bool(c.props.get("KmsMasterKeyId")),
             bool(attributes.get("KmsMasterKeyId")))


@checks("AWS::SNS::TopicPolicy")
def _topic_policy(c: Context) -> None:
    for topic in c.get("Topics"):
        attributes = c.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
        policy = json.loads(attributes.get("Policy", "{}"))
        c.expect("statements", [s.get("Sid") for s in c.get("PolicyDocument")["Statement"]],
                 [s.get("Sid") for s in policy.get("Statement", [])])


@checks("AWS::SNS::Subscription")
def _subscription(c: Context) -> None:
    subscriptions = c.client("sns").list_subscriptions_by_topic(
        TopicArn=c.get("TopicArn"))["Subscriptions"]
    _one([s for s in subscriptions if s["Protocol"] == c.get("Protocol")
          and s["Endpoint"] == c.get("Endpoint")], f"{c.get('Protocol')} subscription")


@checks("AWS::SQS::Queue")
def _queue(c: Context) -> None:
    attributes = c.client("sqs").get_queue_attributes(
        QueueUrl=c.pid, AttributeNames=["All"])["Attributes"]
    c.expect_prop("MessageRetentionPeriod", attributes.get("MessageRetentionPeriod"))


@checks("AWS::Lambda::Function")
def _function(c: Context) -> None:
    configuration = c.client("lambda").get_function(FunctionName=c.pid)["Configuration"]
    for key in ("Runtime", "Handler", "MemorySize", "Timeout"):
        c.expect_prop(key, configuration.get(key))


@checks("AWS::Lambda::Permission")
def _permission_check(c: Context) -> None:
    try:
        policy = json.loads(c.client("lambda").get_policy(
            FunctionName=c.get("FunctionName"))["Policy"])
    except ClientError as err:
        raise Missing(f"no resource policy on {c.get('FunctionName')}") from err
    principals = [s.get("Principal", {}).get("Service") for s in policy["Statement"]]
    if c.get("Principal") not in principals:
        raise Missing(f"{c.get('Principal')} may not invoke {c.get('FunctionName')}")


@checks("AWS::CloudWatch::Alarm")
def _alarm(c: Context) -> None:
    alarms = c.client("cloudwatch").describe_alarms(
        AlarmNames=[c.get("AlarmName")])["MetricAlarms"]
    alarm = _one(alarms, f"alarm {c.get('AlarmName')}")
    c.expect_prop("Threshold", alarm["Threshold"])
    c.expect_prop("ComparisonOperator", alarm["ComparisonOperator"])
    c.expect_prop("AlarmActions", alarm.get("AlarmActions"))
    if "MetricName" in c.props:
        c.expect_prop("MetricName", alarm.get("MetricName"))
    if "Metrics" in c.props:
        c.expect("Metrics", [m["Id"] for m in c.get("Metrics")],
                 [m["Id"] for m in alarm.get("Metrics", [])])


def scalable_target_id(c: Context) -> tuple[str, str, str]:
    return (str(c.get("ServiceNamespace")), str(c.get("ResourceId")),
            str(c.get("ScalableDimension")))


@checks("AWS::ApplicationAutoScaling::ScalableTarget")
def _scalable_target(c: Context) -> None:
    namespace, resource, dimension = scalable_target_id(c)
    targets = c.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace=namespace, ResourceIds=[resource],
        ScalableDimension=dimension)["ScalableTargets"]
    target = _one(targets, f"scalable target {resource}")
    c.expect_prop("MinCapacity", target["MinCapacity"])
    c.expect_prop("MaxCapacity", target["MaxCapacity"])


@checks("AWS::ApplicationAutoScaling::ScalingPolicy")
def _scaling_policy(c: Context) -> None:
    target = c.d.resources[c.props["ScalingTargetId"]["Ref"]]["Properties"]
    policies = c.client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace=target["ServiceNamespace"], ResourceId=target["ResourceId"],
        PolicyNames=[c.get("PolicyName")])["ScalingPolicies"]
    policy = _one(policies, f"scaling policy {c.get('PolicyName')}")
    c.expect("TargetValue", c.get("TargetTrackingScalingPolicyConfiguration")["TargetValue"],
             policy.get("TargetTrackingScalingPolicyConfiguration", {}).get("TargetValue"))


@checks("AWS::Budgets::Budget")
def _budget(c: Context) -> None:
    wanted = c.get("Budget")
    budget = c.client("budgets").describe_budget(AccountId=c.d.account_id,
                                                 BudgetName=wanted["BudgetName"])["Budget"]
    c.expect("BudgetLimit", wanted["BudgetLimit"]["Amount"], budget["BudgetLimit"]["Amount"])


@checks("AWS::DLM::LifecyclePolicy")
def _lifecycle_policy(c: Context) -> None:
    policy = c.client("dlm").get_lifecycle_policy(PolicyId=c.pid)["Policy"]
    c.expect_prop("State", policy["State"])
