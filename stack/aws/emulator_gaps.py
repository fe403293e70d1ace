"""Everything moto does not do for a CloudFormation deploy, done here — and only here.

Real-AWS deploys never import this module (`stack.aws.deploy` does not; the CLI imports it for
``--target emulator`` only). It knows four things about moto 5.2, each found by deploying the
real template to it and reading back what it made:

1. **What moto misreads** — rewritten in the copy of the template sent to moto only; the real
   template, the one uploaded as the deploy record, is untouched (`REWRITES` lists each one and
   why, and the deploy record keeps both):

   - ``kms-tags``: moto reads ``AWS::KMS::Key`` tags as ``TagKey``/``TagValue`` pairs (the KMS
     API's shape); the CloudFormation schema — and AWS — take ``Key``/``Value``, the only valid
     form there, so no template form suits both. moto's form is written for it.
   - ``kms-key-policy``: moto keeps a ``KeyPolicy`` given as a JSON object (the usual form) as
     an object, and its KMS API then fails on every call to the key (it expects the policy's
     JSON text). The policy is wrapped in ``Fn::ToJsonString``, which moto evaluates to that
     text (AWS would need the LanguageExtensions transform for it: emulator only).
   - ``db-parameter-group``: moto returns its parameter-group *object* for a ``Ref`` and names
     the group randomly (ignoring ``DBParameterGroupName``), so the DB instance fails. The
     instance is sent without the reference and the group is attached afterwards with
     ``ModifyDBInstance``, which is what the reference means.
   - ``stand-in-refs``: the certificate and the two secrets are types moto's CloudFormation
     skips, so a ``Ref`` to them is empty (the HTTPS listener then fails). They are created
     first through their own APIs (ACM, Secrets Manager) and the ``Ref`` is replaced by their
     ARN — what CloudFormation would have put there.
   - ``instance-subnet``: moto ignores an instance's ``NetworkInterfaces`` and launches it in
     the default VPC; the first interface's subnet and groups are sent as ``SubnetId`` and
     ``SecurityGroupIds``, which moto reads (AWS refuses both forms together).
   - ``import-value``: a stack created through a change set cannot see other stacks' exports in
     moto, and moto computes no outputs for such a stack either; ``Fn::ImportValue`` is
     replaced by the export's value, evaluated from the exporting stack's template and
     resources (`exports`).

2. **What moto skips or drops** (the stack still says CREATE_COMPLETE): created directly
   through each service's API from the template's own properties, after each stack update
   (`GapFiller`): security-group egress (and the removal of EC2's default allow-all),
   route-table associations (moto keeps them where DescribeRouteTables does not look), S3
   versioning and lifecycle, the DB parameter group attachment, ElastiCache subnet group and
   replication groups, MSK, CloudFront, task definitions (moto drops their CPU and memory, and
   never re-creates a resource an earlier update removed — blue comes back with the next
   deploy), ECS services' load balancer / network configuration / launch type, Application
   Auto Scaling, SNS topic policy and subscription, CloudWatch alarms, the budget, the
   secret's KMS key and its attachment to the database. What a later template no longer has
   is removed the same way, since moto does not do it either: a retired colour's ECS
   services, task definitions, alarms and scaling targets.

3. **What cannot be emulated**: `NOT_EMULATED` (moto has no API for the type, or enforces it in
   a way that would break the emulator) and `PROPERTY_GAPS` — reported as "not emulated" by
   the verification, with the reason, never counted as present.

4. **What moto's ECS does not do**: it starts no tasks. A service's running count is set to its
   desired count, and one stand-in target per task (an address in the colour's subnet) is
   registered in the colour's target group, as ECS would register its tasks; moto reports every
   registered target healthy. A test can name colours whose tasks "never pass their health
   check" (`EmulatorTarget.unhealthy`): no targets are registered for them, so blue/green's
   rollback can be exercised.

And the account's prerequisites (hosted zone, Discord webhook secret, Jenkins AMI parameter,
CloudFormation service role) are created in the empty emulator as a user creates them in a
real account (`prepare_account`). `reset_emulator` empties the emulator
(``POST /moto-api/reset``; moto cannot delete a stack with a VPC) and puts back what the local
cloud keeps in it.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

import httpx
from botocore.exceptions import ClientError

from stack.aws.changeset import Timing
from stack.aws.deployed import DeployedStack, Unresolvable, physical_ids
from stack.aws.edge import HOSTED_ZONE
from stack.aws.verify import VerificationReport, egress_rules, verify
from stack.local.aws_clients import aws_client, region_of
from stack.local.aws_resources import ensure_bucket, ensure_lock_table
from stack.model import AwsEndpoint, Platform
from stack.model.edge import Colour
from stack.model.environment import Environment

NOT_EMULATED: dict[str, str] = {
    "AWS::DLM::LifecyclePolicy": "moto has no Data Lifecycle Manager API",
    "AWS::S3::BucketPolicy": "moto enforces bucket policies but ignores their conditions: our "
                             "deny-unless-TLS statement would deny every request to the "
                             "emulator, which speaks plain HTTP",
    "AWS::ElastiCache::ParameterGroup": "moto's ElastiCache has no cache parameter groups",
}

# Properties moto's CloudFormation drops and no API can set afterwards (immutable once made).
PROPERTY_GAPS: dict[tuple[str, str], str] = {
    ("AWS::EC2::Volume", "Encrypted"): "moto's CloudFormation creates volumes unencrypted; "
                                       "encryption cannot be changed after creation",
}

REWRITES: dict[str, str] = {
    "kms-tags": "moto reads KMS key tags as TagKey/TagValue; CloudFormation takes Key/Value",
    "kms-key-policy": "moto keeps a KeyPolicy object as an object and its KMS API then fails; "
                      "it is sent as Fn::ToJsonString",
    "db-parameter-group": "moto's Ref to a DB parameter group is an object, not its name: "
                          "the group is attached after the stack with ModifyDBInstance",
    "stand-in-refs": "moto skips certificates and secrets, so a Ref to them is empty: they "
                     "are created first through their APIs and the Ref becomes their ARN",
    "instance-subnet": "moto ignores an instance's NetworkInterfaces: the first interface's "
                       "subnet and groups are sent as SubnetId and SecurityGroupIds",
    "import-value": "moto gives a stack created by a change set no access to exports: "
                    "Fn::ImportValue becomes the export's value",
}

RESET_PATH = "/moto-api/reset"
STAND_IN_HOST_OFFSET = 10  # stand-in task addresses start at .10 of the colour's subnet


class VerificationFailed(RuntimeError):
    """After the deploy, some resources of the template are missing or differ."""

    def __init__(self, report: VerificationReport) -> None:
        self.report = report
        lines = [f"{c.logical_id} ({c.resource_type}) {c.status}: {c.detail}"
                 for c in report.problems]
        super().__init__(f"{len(lines)} resource(s) of {report.stack} are not as the template "
                         f"says:\n  " + "\n  ".join(lines))


# -- 1. rewrites -------------------------------------------------------------------------------


def _walk(value: Any, replace: Callable[[Any], Any | None]) -> Any:
    """A copy of ``value`` in which every node ``replace`` answers for is replaced."""
    replaced = replace(value)
    if replaced is not None:
        return replaced
    if isinstance(value, dict):
        return {key: _walk(item, replace) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, replace) for item in value]
    return value


def rewrite(template: dict[str, Any], stand_ins: dict[str, str],
            exports: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The template as moto must receive it, and the names of the rewrites applied."""
    sent = copy.deepcopy(template)
    applied: list[str] = []
    resources = sent.get("Resources", {})
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::KMS::Key" and props.get("Tags"):
            props["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props["Tags"]]
            applied.append("kms-tags")
        if resource["Type"] == "AWS::KMS::Key" and isinstance(props.get("KeyPolicy"), dict):
            props["KeyPolicy"] = {"Fn::ToJsonString": props["KeyPolicy"]}
            applied.append("kms-key-policy")
        interfaces = props.get("NetworkInterfaces")
        if resource["Type"] == "AWS::EC2::Instance" and interfaces:
            first = interfaces[0]
            props["SubnetId"] = first["SubnetId"]
            props["SecurityGroupIds"] = first.get("GroupSet", [])
            del props["NetworkInterfaces"]
            applied.append("instance-subnet")
        group = props.get("DBParameterGroupName")
        if resource["Type"] == "AWS::RDS::DBInstance" and isinstance(group, dict) and \
                resources.get(group.get("Ref", ""), {}).get("Type") == \
                "AWS::RDS::DBParameterGroup":
            del props["DBParameterGroupName"]
            applied.append("db-parameter-group")

    def substitute(node: Any) -> Any | None:
        if isinstance(node, dict) and len(node) == 1:
            if node.get("Ref") in stand_ins:
                applied.append("stand-in-refs")
                return stand_ins[node["Ref"]]
            if "Fn::ImportValue" in node and node["Fn::ImportValue"] in exports:
                applied.append("import-value")
                return exports[node["Fn::ImportValue"]]
        return None

    sent["Resources"] = _walk(resources, substitute)
    return sent, sorted(set(applied))


# -- the account's prerequisites ------------------------------------------------------------


@dataclass(frozen=True)
class Prerequisites:
    hosted_zone_id: str
    role_arn: str


def prepare_account(client: Callable[[str], Any], platform: Platform,
                    environment: Environment) -> Prerequisites:
    """Create, idempotently, what a user creates in a real account before the first deploy."""
    edge, ci = platform.cloud.edge, platform.cloud.ci
    route53 = client("route53")
    apex = edge.apex_domain.rstrip(".") + "."
    zones = [z for z in route53.list_hosted_zones_by_name(DNSName=apex)["HostedZones"]
             if z["Name"] == apex]
    zone = zones[0]["Id"] if zones else route53.create_hosted_zone(
        Name=apex, CallerReference=f"come2us-{apex}")["HostedZone"]["Id"]
    webhook = (f"{platform.name}/{environment.name}/"
               f"{platform.cloud.observability.notifier.discord_webhook}")
    try:
        client("secretsmanager").create_secret(
            Name=webhook, SecretString="https://discord.invalid/api/webhooks/emulator")
    except ClientError as err:
        if "ResourceExists" not in str(err):
            raise
    ssm, ec2 = client("ssm"), client("ec2")
    try:
        ssm.get_parameter(Name=ci.ami_parameter)
    except ClientError:
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ssm.put_parameter(Name=ci.ami_parameter, Value=image, Type="String")
    iam = client("iam")
    try:
        role = iam.get_role(RoleName=ci.deploy_role)["Role"]
    except ClientError:
        role = iam.create_role(RoleName=ci.deploy_role, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"},
                "Action": "sts:AssumeRole"}]}))["Role"]
    return Prerequisites(hosted_zone_id=str(zone).rsplit("/", 1)[-1], role_arn=str(role["Arn"]))


# -- stand-ins for what the stack refers to ---------------------------------------------------


def _password(spec: dict[str, Any]) -> str:
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?[]^_{|}~"
    alphabet = "".join(ch for ch in alphabet if ch not in spec.get("ExcludeCharacters", ""))
    return "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))


def ensure_stand_ins(client: Callable[[str], Any], template: dict[str, Any]) -> dict[str, str]:
    """Certificates and secrets the stack refers to, created through their APIs: logical id →
    ARN. Existing ones (same domain, same name) are reused, so repeated deploys agree."""
    found: dict[str, str] = {}
    for name, resource in sorted(template.get("Resources", {}).items()):
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::CertificateManager::Certificate":
            acm = client("acm")
            known = {c["DomainName"]: c["CertificateArn"]
                     for c in acm.list_certificates()["CertificateSummaryList"]}
            found[name] = known.get(props["DomainName"]) or acm.request_certificate(
                DomainName=props["DomainName"], ValidationMethod=props.get("ValidationMethod",
                                                                           "DNS"),
                SubjectAlternativeNames=props.get("SubjectAlternativeNames", []),
            )["CertificateArn"]
        elif resource["Type"] == "AWS::SecretsManager::Secret":
            manager = client("secretsmanager")
            try:
                found[name] = manager.describe_secret(SecretId=props["Name"])["ARN"]
            except ClientError:
                spec = props.get("GenerateSecretString", {})
                value = json.loads(spec.get("SecretStringTemplate", "{}"))
                value[spec.get("GenerateStringKey", "password")] = _password(spec)
                found[name] = manager.create_secret(
                    Name=props["Name"], Description=props.get("Description", ""),
                    SecretString=json.dumps(value))["ARN"]
    return found


# -- 2. what moto skips, created after each stack update -------------------------------------


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase keys → the ECS API's camelCase keys."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def _task_shape(definition: dict[str, Any]) -> tuple[Any, ...]:
    """What tells two task definitions apart, in the ECS API's shape."""
    containers = sorted(
        (c.get("name"), c.get("image"), json.dumps(sorted(
            (e["name"], e["value"]) for e in c.get("environment", []))))
        for c in definition.get("containerDefinitions", []))
    return (definition.get("family"), str(definition.get("cpu")),
            str(definition.get("memory")), tuple(containers))


def _tags(props: dict[str, Any]) -> list[dict[str, str]]:
    """A resource's tags as a Key/Value list (some types take a map in CloudFormation)."""
    tags = props.get("Tags", [])
    if isinstance(tags, dict):
        return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]
    return [{"Key": t["Key"], "Value": t["Value"]} for t in tags]


@dataclass
class GapFiller:
    """Creates, from the template, what moto's CloudFormation skipped; returns physical ids."""

    deployed: DeployedStack
    unhealthy: frozenset[Colour] = frozenset()
    created: dict[str, str] = field(default_factory=dict)
    _container_ports: dict[str, int] = field(default_factory=dict)  # target group → port

    def client(self, service: str) -> Any:
        return self.deployed.clients(service)

    def r(self, value: Any) -> Any:
        return self.deployed.resolve(value)

    def fill(self) -> dict[str, str]:
        self.created.update(ensure_stand_ins(self.client, self.deployed.template))
        self.deployed.physical.update(self.created)
        steps = (self._secrets, self._buckets, self._egress, self._routes,
                 self._database, self._redis, self._kafka, self._cloudfront,
                 self._task_definitions, self._services, self._removed_services,
                 self._scaling, self._topic, self._alarms, self._budget)
        for step in steps:
            step()
            self.deployed.physical.update(self.created)
        return dict(self.created)

    def _each(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from self.deployed.of_type(resource_type)

    # -- secrets and storage

    def _secrets(self) -> None:
        manager = self.client("secretsmanager")
        for name, props in self._each("AWS::SecretsManager::Secret"):
            arn = manager.describe_secret(SecretId=props["Name"])["ARN"]
            self.created[name] = arn
            manager.update_secret(SecretId=arn, KmsKeyId=self.r(props["KmsKeyId"]),
                                  Description=props.get("Description", ""))
        for name, resource in self.deployed.resources.items():
            if resource["Type"] == "AWS::CertificateManager::Certificate":
                self.created.setdefault(name, self.deployed.physical.get(name, ""))
        for _name, props in self._each("AWS::SecretsManager::SecretTargetAttachment"):
            secret = self.r(props["SecretId"])
            try:
                instance = self.client("rds").describe_db_instances(
                    DBInstanceIdentifier=self.r(props["TargetId"]))["DBInstances"][0]
            except (ClientError, Unresolvable):
                continue
            value = json.loads(manager.get_secret_value(SecretId=secret)["SecretString"])
            value.update(engine=instance["Engine"], host=instance["Endpoint"]["Address"],
                         port=instance["Endpoint"]["Port"],
                         dbInstanceIdentifier=instance["DBInstanceIdentifier"])
            manager.put_secret_value(SecretId=secret, SecretString=json.dumps(value))

    def _buckets(self) -> None:
        s3 = self.client("s3")
        for name, props in self._each("AWS::S3::Bucket"):
            bucket = self.deployed.physical_id(name)
            versioning = props.get("VersioningConfiguration")
            if versioning:
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={
                    "Status": versioning["Status"]})
            rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
            if rules:
                s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
                    "Rules": [self._lifecycle_rule(rule) for rule in rules]})

    @staticmethod
    def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
        converted: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"],
                                     "Filter": {"Prefix": rule.get("Prefix", "")}}
        if "ExpirationInDays" in rule:
            converted["Expiration"] = {"Days": rule["ExpirationInDays"]}
        if "NoncurrentVersionExpiration" in rule:
            converted["NoncurrentVersionExpiration"] = {
                "NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]}
        if "AbortIncompleteMultipartUpload" in rule:
            converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
        return converted

    def _routes(self) -> None:
        """moto keeps CloudFormation's subnet associations where DescribeRouteTables does not
        look; the API's association is the one every reader sees."""
        ec2 = self.client("ec2")
        for _name, props in self._each("AWS::EC2::SubnetRouteTableAssociation"):
            table, subnet = self.r(props["RouteTableId"]), self.r(props["SubnetId"])
            associations = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0].get(
                "Associations", [])
            if subnet not in [a.get("SubnetId") for a in associations]:
                ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)

    def _egress(self) -> None:
        """Inline and separate egress rules, and no default allow-all (moto keeps it)."""
        ec2 = self.client("ec2")
        for name, _props in self._each("AWS::EC2::SecurityGroup"):
            group_id = self.deployed.physical_id(name)
            wanted = egress_rules(self.deployed, name)
            group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
            for rule in group.get("IpPermissionsEgress", []):
                ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[rule])
            for protocol, low, high, peer in sorted(wanted):
                permission: dict[str, Any] = {"IpProtocol": protocol}
                if protocol != "-1":
                    permission.update(FromPort=low, ToPort=high)
                if peer.startswith("sg-"):
                    permission["UserIdGroupPairs"] = [{"GroupId": peer}]
                else:
                    permission["IpRanges"] = [{"CidrIp": peer}]
                ec2.authorize_security_group_egress(GroupId=group_id,
                                                    IpPermissions=[permission])

    # -- data

    def _database(self) -> None:
        rds = self.client("rds")
        groups = [g["DBParameterGroupName"]
                  for g in rds.describe_db_parameter_groups()["DBParameterGroups"]]
        for name, _props in self._each("AWS::RDS::DBParameterGroup"):
            prefix = f"{self.deployed.name}-{name}-".lower()
            matching = [g for g in groups if g.startswith(prefix)]
            if matching:
                self.created[name] = matching[0]
        self.deployed.physical.update(self.created)
        for name, props in self._each("AWS::RDS::DBInstance"):
            if "DBParameterGroupName" in props:
                rds.modify_db_instance(DBInstanceIdentifier=self.deployed.physical_id(name),
                                       DBParameterGroupName=self.r(props["DBParameterGroupName"]),
                                       ApplyImmediately=True)

    def _redis(self) -> None:
        cache = self.client("elasticache")
        for name, props in self._each("AWS::ElastiCache::SubnetGroup"):
            self.created[name] = props["CacheSubnetGroupName"]
            try:
                cache.create_cache_subnet_group(
                    CacheSubnetGroupName=props["CacheSubnetGroupName"],
                    CacheSubnetGroupDescription=props["Description"],
                    SubnetIds=self.r(props["SubnetIds"]))
            except ClientError as err:
                if "AlreadyExists" not in str(err):
                    raise
        self.deployed.physical.update(self.created)
        skipped = ("CacheParameterGroupName", "ClusterMode", "Tags")  # not emulated / unknown
        for name, props in self._each("AWS::ElastiCache::ReplicationGroup"):
            group_id = props["ReplicationGroupId"]
            self.created[name] = group_id
            try:
                cache.describe_replication_groups(ReplicationGroupId=group_id)
                continue
            except ClientError:
                pass
            request = {k: self.r(v) for k, v in props.items() if k not in skipped}
            # moto (cluster mode disabled) sizes the group by ReplicasPerNodeGroup and ignores
            # NumCacheClusters; AWS would refuse both together, moto needs the first.
            request["ReplicasPerNodeGroup"] = int(props.get("NumCacheClusters", 1)) - 1
            cache.create_replication_group(**request, Tags=_tags(props))

    def _kafka(self) -> None:
        kafka = self.client("kafka")
        for name, props in self._each("AWS::MSK::Cluster"):
            existing = [c for c in kafka.list_clusters(
                ClusterNameFilter=props["ClusterName"])["ClusterInfoList"]
                if c["ClusterName"] == props["ClusterName"]]
            if existing:
                self.created[name] = existing[0]["ClusterArn"]
                continue
            request = self.r({k: v for k, v in props.items() if k != "Tags"})
            storage = request["BrokerNodeGroupInfo"].get("StorageInfo", {})
            if "EBSStorageInfo" in storage:  # the API spells it EbsStorageInfo
                storage["EbsStorageInfo"] = storage.pop("EBSStorageInfo")
            self.created[name] = kafka.create_cluster(
                **request, Tags={t["Key"]: t["Value"] for t in _tags(props)})["ClusterArn"]

    # -- edge

    def _cloudfront(self) -> None:
        cloudfront = self.client("cloudfront")
        controls = cloudfront.list_origin_access_controls()["OriginAccessControlList"]
        known = {c["Name"]: c["Id"] for c in controls.get("Items", [])}
        for name, props in self._each("AWS::CloudFront::OriginAccessControl"):
            config = props["OriginAccessControlConfig"]
            self.created[name] = known.get(config["Name"]) or \
                cloudfront.create_origin_access_control(
                    OriginAccessControlConfig=config)["OriginAccessControl"]["Id"]
        self.deployed.physical.update(self.created)
        listed = cloudfront.list_distributions()["DistributionList"].get("Items", [])
        by_comment = {d["Comment"]: d["Id"] for d in listed}
        for name, props in self._each("AWS::CloudFront::Distribution"):
            config = self.r(props["DistributionConfig"])
            if config["Comment"] in by_comment:
                self.created[name] = by_comment[config["Comment"]]
                continue
            self.created[name] = cloudfront.create_distribution(
                DistributionConfig=self._distribution(name, config))["Distribution"]["Id"]
        self.deployed.physical.update(self.created)

    @staticmethod
    def _distribution(name: str, config: dict[str, Any]) -> dict[str, Any]:
        """CloudFormation's DistributionConfig in the API's shape (Quantity/Items lists)."""

        def items(values: list[Any]) -> dict[str, Any]:
            return {"Quantity": len(values), "Items": values}

        behaviour = dict(config["DefaultCacheBehavior"])
        behaviour["AllowedMethods"] = {**items(behaviour["AllowedMethods"]),
                                       "CachedMethods": items(behaviour.pop("CachedMethods"))}
        logging = config.get("Logging", {})
        return {
            "CallerReference": f"come2us-{name}-{config['Comment']}",
            "Comment": config["Comment"],
            "Enabled": config["Enabled"],
            "HttpVersion": config.get("HttpVersion", "http2"),
            "PriceClass": config.get("PriceClass", "PriceClass_All"),
            "Origins": items([{**origin, "S3OriginConfig": {"OriginAccessIdentity": ""}}
                              for origin in config["Origins"]]),
            "DefaultCacheBehavior": behaviour,
            "Logging": {"Enabled": bool(logging), "IncludeCookies": False,
                        "Bucket": logging.get("Bucket", ""), "Prefix": logging.get("Prefix", "")},
            "ViewerCertificate": config.get("ViewerCertificate", {}),
        }

    def _task_definitions(self) -> None:
        """Task definitions as the template says, registered through the ECS API.

        moto's CloudFormation drops the task-level CPU and memory, and never re-creates a
        resource that an earlier update removed (blue, retired by one deploy, comes back with
        the next): it keeps answering with the removed one. So the family's latest revision is
        compared with the template and, if it differs, the template's is registered.
        """
        ecs = self.client("ecs")
        for name, props in self._each("AWS::ECS::TaskDefinition"):
            wanted = _camel(self.r({k: v for k, v in props.items() if k != "Tags"}))
            try:
                latest = ecs.describe_task_definition(
                    taskDefinition=wanted["family"])["taskDefinition"]
            except ClientError:
                latest = {}
            if _task_shape(latest) != _task_shape(wanted):
                latest = ecs.register_task_definition(**wanted, tags=[
                    {"key": t["Key"], "value": t["Value"]} for t in _tags(props)]
                )["taskDefinition"]
            self.created[name] = latest["taskDefinitionArn"]

    def _removed_services(self) -> None:
        """What CloudFormation deletes when a colour is retired and moto does not: the ECS
        services and (deregistered) task definitions the template no longer has."""
        ecs = self.client("ecs")
        services = self.deployed.of_type("AWS::ECS::Service")
        wanted = {p["ServiceName"] for _, p in services}
        for cluster in sorted({self.r(p["Cluster"]) for _, p in services}):
            arns = ecs.list_services(cluster=cluster)["serviceArns"]
            for start in range(0, len(arns), 10):  # DescribeServices takes ten at a time
                for service in ecs.describe_services(cluster=cluster,
                                                     services=arns[start:start + 10])["services"]:
                    if service["status"] == "ACTIVE" and service["serviceName"] not in wanted:
                        ecs.delete_service(cluster=cluster, service=service["serviceArn"],
                                           force=True)
        kept = {self.created.get(name) for name, _ in self._each("AWS::ECS::TaskDefinition")}
        # moto takes familyPrefix as an exact family: filter the prefix here.
        for arn in ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]:
            family = arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
            if family.startswith(f"{self.deployed.name}-") and arn not in kept:
                ecs.deregister_task_definition(taskDefinition=arn)

    def _services(self) -> None:
        """Services with what moto dropped, running, and stand-in targets for their tasks."""
        ecs, elbv2 = self.client("ecs"), self.client("elbv2")
        serving: dict[str, int] = {}  # target group → tasks
        subnets: dict[str, str] = {}
        for _name, props in self._each("AWS::ECS::Service"):
            cluster, service = self.r(props["Cluster"]), props["ServiceName"]
            request = _camel(self.r({k: props[k] for k in (
                "LoadBalancers", "NetworkConfiguration", "LaunchType", "PlatformVersion",
                "PropagateTags", "DeploymentConfiguration") if k in props}))
            current = [s for s in ecs.describe_services(
                cluster=cluster, services=[service])["services"] if s["status"] == "ACTIVE"]
            if not current or current[0].get("launchType") != props.get("LaunchType"):
                if current:
                    ecs.delete_service(cluster=cluster, service=service, force=True)
                ecs.create_service(cluster=cluster, serviceName=service,
                                   taskDefinition=self.r(props["TaskDefinition"]),
                                   desiredCount=props["DesiredCount"], tags=[
                                       {"key": t["Key"], "value": t["Value"]}
                                       for t in props.get("Tags", [])], **request)
            # moto's UpdateService sets the running count to the desired count.
            ecs.update_service(cluster=cluster, service=service,
                               taskDefinition=self.r(props["TaskDefinition"]),
                               desiredCount=props["DesiredCount"])
            colour = self._colour_of(service)
            for balancer in request.get("loadBalancers", []):
                group = balancer["targetGroupArn"]
                if colour not in self.unhealthy:
                    serving[group] = props["DesiredCount"]
                subnets[group] = request["networkConfiguration"]["awsvpcConfiguration"][
                    "subnets"][0]
                self._container_ports[group] = balancer["containerPort"]
        for name, _props in self._each("AWS::ElasticLoadBalancingV2::TargetGroup"):
            group = self.deployed.physical_id(name)
            if name.startswith("Ci"):
                continue  # Jenkins' group holds the instance, registered by the template
            registered = [t["Target"] for t in elbv2.describe_target_health(
                TargetGroupArn=group)["TargetHealthDescriptions"]]
            wanted = self._stand_ins(subnets.get(group), serving.get(group, 0),
                                     self._container_ports.get(group, 0))
            stale = [t for t in registered if t not in wanted]
            if stale:
                elbv2.deregister_targets(TargetGroupArn=group, Targets=stale)
            missing = [t for t in wanted if t not in registered]
            if missing:
                elbv2.register_targets(TargetGroupArn=group, Targets=missing)

    def _stand_ins(self, subnet: str | None, count: int, port: int) -> list[dict[str, Any]]:
        if subnet is None or count == 0:
            return []
        cidr = self.client("ec2").describe_subnets(SubnetIds=[subnet])["Subnets"][0]["CidrBlock"]
        hosts = IPv4Network(cidr).hosts()
        addresses = [str(address) for _, address in zip(range(STAND_IN_HOST_OFFSET + count),
                                                        hosts, strict=False)]
        return [{"Id": address, "Port": port} for address in addresses[STAND_IN_HOST_OFFSET:]]

    @staticmethod
    def _colour_of(service: str) -> Colour | None:
        for colour in Colour:
            if service.endswith(f"-{colour}"):
                return colour
        return None

    # -- observability and scaling

    def _scaling(self) -> None:
        scaling = self.client("application-autoscaling")
        wanted: set[str] = set()
        for name, props in self._each("AWS::ApplicationAutoScaling::ScalableTarget"):
            target = {k: self.r(props[k]) for k in ("ServiceNamespace", "ResourceId",
                                                    "ScalableDimension")}
            scaling.register_scalable_target(**target, MinCapacity=props["MinCapacity"],
                                             MaxCapacity=props["MaxCapacity"])
            self.created[name] = "|".join((target["ResourceId"], target["ScalableDimension"],
                                           target["ServiceNamespace"]))
            wanted.add(target["ResourceId"])
        for name, props in self._each("AWS::ApplicationAutoScaling::ScalingPolicy"):
            target = self.deployed.resources[props["ScalingTargetId"]["Ref"]]["Properties"]
            self.created[name] = scaling.put_scaling_policy(
                PolicyName=props["PolicyName"], PolicyType=props["PolicyType"],
                ServiceNamespace=target["ServiceNamespace"], ResourceId=target["ResourceId"],
                ScalableDimension=target["ScalableDimension"],
                TargetTrackingScalingPolicyConfiguration=self.r(
                    props["TargetTrackingScalingPolicyConfiguration"]))["PolicyARN"]
        clusters = {f"service/{self.r(p['Cluster'])}/"
                    for _, p in self._each("AWS::ECS::Service")}
        for target in scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]:
            ours = any(target["ResourceId"].startswith(prefix) for prefix in clusters)
            if ours and target["ResourceId"] not in wanted:  # a retired colour's
                scaling.deregister_scalable_target(
                    ServiceNamespace="ecs", ResourceId=target["ResourceId"],
                    ScalableDimension=target["ScalableDimension"])

    def _topic(self) -> None:
        sns = self.client("sns")
        for _name, props in self._each("AWS::SNS::TopicPolicy"):
            for topic in self.r(props["Topics"]):
                sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy",
                                         AttributeValue=json.dumps(self.r(props["PolicyDocument"])))
        for name, props in self._each("AWS::SNS::Subscription"):
            topic, protocol, endpoint = (self.r(props[k]) for k in ("TopicArn", "Protocol",
                                                                    "Endpoint"))
            existing = [s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(
                TopicArn=topic)["Subscriptions"] if s["Endpoint"] == endpoint]
            self.created[name] = existing[0] if existing else sns.subscribe(
                TopicArn=topic, Protocol=protocol, Endpoint=endpoint)["SubscriptionArn"]

    def _alarms(self) -> None:
        cloudwatch = self.client("cloudwatch")
        wanted: set[str] = set()
        for name, props in self._each("AWS::CloudWatch::Alarm"):
            request = self.r({k: v for k, v in props.items() if k != "Tags"})
            cloudwatch.put_metric_alarm(**request, Tags=_tags(props))
            self.created[name] = request["AlarmName"]
            wanted.add(request["AlarmName"])
        prefix = f"{self.deployed.name}-"
        stale = [a["AlarmName"] for a in cloudwatch.describe_alarms(
            AlarmNamePrefix=prefix)["MetricAlarms"] if a["AlarmName"] not in wanted]
        if stale:
            cloudwatch.delete_alarms(AlarmNames=stale)

    def _budget(self) -> None:
        budgets = self.client("budgets")
        for name, props in self._each("AWS::Budgets::Budget"):
            budget = self.r(props["Budget"])
            budget["BudgetLimit"]["Amount"] = str(budget["BudgetLimit"]["Amount"])
            notifications = self.r(props.get("NotificationsWithSubscribers", []))
            for item in notifications:
                item["Notification"]["Threshold"] = float(item["Notification"]["Threshold"])
            try:
                budgets.describe_budget(AccountId=self.deployed.account_id,
                                        BudgetName=budget["BudgetName"])
            except ClientError:
                budgets.create_budget(AccountId=self.deployed.account_id, Budget=budget,
                                      NotificationsWithSubscribers=notifications)
            self.created[name] = budget["BudgetName"]


# -- the target ---------------------------------------------------------------------------------


@dataclass
class EmulatorTarget:
    """The deploy target at the local cloud's AWS endpoint (moto), with moto's gaps filled."""

    endpoint: AwsEndpoint
    platform: Platform
    environment: Environment
    unhealthy: frozenset[Colour] = frozenset()  # colours whose tasks never pass health checks
    name: str = "emulator"
    timing: Timing = field(default_factory=lambda: Timing(poll_s=0.05, timeout_s=120.0))
    last_report: VerificationReport | None = None
    rewrites: list[str] = field(default_factory=list)
    _prerequisites: Prerequisites | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return region_of(self.endpoint)

    def client(self, service: str) -> Any:
        """One client per service (making a boto3 client costs tens of milliseconds)."""
        if service not in self._clients:
            self._clients[service] = aws_client(service, self.endpoint, timeout=30.0)
        return self._clients[service]

    def account_id(self) -> str:
        return str(self.client("sts").get_caller_identity()["Account"])

    def prerequisites(self) -> Prerequisites:
        """Made once per target; `reset` (which empties the emulator) forgets them."""
        if self._prerequisites is None:
            self._prerequisites = prepare_account(self.client, self.platform, self.environment)
        return self._prerequisites

    def reset(self) -> None:
        reset_emulator(self.endpoint, self.platform)
        self._prerequisites = None
        self.last_report = None

    def parameters(self, platform: Platform, environment: Environment) -> dict[str, str]:
        return {HOSTED_ZONE: self.prerequisites().hosted_zone_id}

    def role_arn(self, platform: Platform) -> str | None:
        return self.prerequisites().role_arn

    def for_cloudformation(self, stack: str, template: dict[str, Any]) -> dict[str, Any]:
        stand_ins = ensure_stand_ins(self.client, template)
        sent, self.rewrites = rewrite(template, stand_ins, self.exports())
        return sent

    def exports(self) -> dict[str, str]:
        return exports(self)

    def after_update(self, deployed: DeployedStack) -> None:
        """Create what moto skipped, so the next step (and ③'s health) sees a whole stack."""
        GapFiller(deployed, self.unhealthy).fill()

    def verify(self, deployed: DeployedStack) -> dict[str, Any]:
        """Every resource of the template, by describe calls; raises `VerificationFailed`."""
        report = verify(deployed, NOT_EMULATED, PROPERTY_GAPS)
        self.last_report = report
        if report.problems:
            raise VerificationFailed(report)
        summary = report.summary()
        summary["rewrites"] = {name: REWRITES[name] for name in self.rewrites}
        return summary


def exports(target: EmulatorTarget) -> dict[str, str]:
    """Every stack's exports, evaluated from its template's outputs and its resources (moto
    computes no outputs for a stack created by a change set)."""
    cloudformation = target.client("cloudformation")
    found: dict[str, str] = {}
    for stack in cloudformation.describe_stacks()["Stacks"]:
        if not str(stack["StackStatus"]).endswith("_COMPLETE"):
            continue
        body = cloudformation.get_template(StackName=stack["StackName"])["TemplateBody"]
        template = json.loads(body) if isinstance(body, str) else dict(body)
        deployed = DeployedStack(
            name=stack["StackName"], template=template,
            physical=physical_ids(cloudformation, stack["StackName"]), parameters={},
            clients=target.client, account_id=target.account_id(), region=target.region)
        for output in template.get("Outputs", {}).values():
            if "Export" in output:
                try:
                    found[str(output["Export"]["Name"])] = str(deployed.resolve(output["Value"]))
                except Unresolvable:
                    continue
    return found


def reset_emulator(endpoint: AwsEndpoint, platform: Platform, timeout_s: float = 30.0) -> None:
    """Empty the emulator (moto cannot delete a stack with a VPC), then put back what the local
    cloud itself keeps there: the image bucket and the local deploy-lock table."""
    reply = httpx.post(endpoint.url + RESET_PATH, timeout=timeout_s, trust_env=False)
    reply.raise_for_status()
    region = region_of(endpoint)
    ensure_bucket(aws_client("s3", endpoint), platform.data.image_bucket, region)
    ensure_lock_table(aws_client("dynamodb", endpoint), platform.data.lock_table,
                      timeout=timeout_s)

