"""A template as it was deployed: each resource's physical id, and the template's values resolved.

The post-deploy verification compares what the template asks for with what the describe calls
return, and the emulator's gap-filler creates what moto skipped from the same properties; both
need the template's intrinsic functions evaluated the way CloudFormation evaluated them —
``Ref`` to a resource is its physical id, ``Fn::GetAtt`` an attribute of the deployed thing,
``Fn::Sub``/``Fn::Join``/``Fn::Select``/``Fn::ImportValue`` as documented. This class does that
against the live endpoint (AWS or the emulator). What it cannot evaluate it refuses with
`Unresolvable`, never guesses: a check that depends on it says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Clients = Callable[[str], Any]
DYNAMIC_SECRET = re.compile(r"\{\{resolve:secretsmanager:(?P<id>.+?):SecretString:(?P<key>[^:}]+)"
                            r"(?::[^}]*)?\}\}")
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


class Unresolvable(ValueError):
    """A value of the template that cannot be evaluated against the deployed stack."""


def physical_ids(cloudformation: Any, stack: str) -> dict[str, str]:
    """Logical id → physical id of every resource CloudFormation reports for the stack."""
    found: dict[str, str] = {}
    for resource in cloudformation.describe_stack_resources(StackName=stack)["StackResources"]:
        # moto lists the resources it skipped as entries without a logical id: ignore them.
        logical, physical = resource.get("LogicalResourceId"), resource.get("PhysicalResourceId")
        if logical and physical and physical != "None":
            found[str(logical)] = str(physical)
    return found


def exports(cloudformation: Any) -> dict[str, str]:
    """Every export of the account and region, by name.

    Read from the stacks' outputs as well as ListExports: moto registers the exports of a stack
    created by a change set only in the stack's outputs.
    """
    found: dict[str, str] = {}
    for page in cloudformation.get_paginator("describe_stacks").paginate():
        for stack in page["Stacks"]:
            for output in stack.get("Outputs", []):
                if output.get("ExportName"):
                    found[str(output["ExportName"])] = str(output["OutputValue"])
    for item in cloudformation.list_exports().get("Exports", []):
        found[str(item["Name"])] = str(item["Value"])
    return found


@dataclass
class DeployedStack:
    name: str
    template: dict[str, Any]
    physical: dict[str, str]
    parameters: dict[str, str]
    clients: Clients
    account_id: str
    region: str
    exports: dict[str, str] = field(default_factory=dict)
    _attributes: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        return resources

    def of_type(self, resource_type: str) -> list[tuple[str, dict[str, Any]]]:
        """(logical id, properties) of every resource of ``resource_type``, in id order."""
        return [(logical, resource.get("Properties", {}))
                for logical, resource in sorted(self.resources.items())
                if resource["Type"] == resource_type]

    def type_of(self, logical: str) -> str:
        return str(self.resources[logical]["Type"])

    def physical_id(self, logical: str) -> str:
        try:
            return self.physical[logical]
        except KeyError:
            raise Unresolvable(f"{logical} has no physical id") from None

    # -- intrinsic functions --------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, str):
            return self._dynamic(value)
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), = value.items()
            if function == "Ref":
                return self._ref(str(argument))
            if function == "Fn::GetAtt":
                logical, attribute = (argument.split(".", 1) if isinstance(argument, str)
                                      else argument)
                return self.attribute(str(logical), str(attribute))
            if function == "Fn::Sub":
                return self._sub(argument)
            if function == "Fn::Join":
                separator, items = argument
                return str(separator).join(str(item) for item in self.resolve(items))
            if function == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(index)]
            if function == "Fn::ImportValue":
                name = self.resolve(argument)
                if name not in self.exports:
                    raise Unresolvable(f"no export named {name}")
                return self.exports[name]
            if function.startswith("Fn::") or function == "Condition":
                raise Unresolvable(f"{function} is not evaluated here")
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {"AWS::AccountId": self.account_id, "AWS::Region": self.region,
                  "AWS::Partition": "aws", "AWS::StackName": self.name,
                  "AWS::URLSuffix": "amazonaws.com"}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical_id(name)

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument
            values = {key: str(self.resolve(item)) for key, item in variables.items()}
        else:
            text, values = argument, {}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return values[name]
            if "." in name:
                logical, attribute = name.split(".", 1)
                return str(self.attribute(logical, attribute))
            return self._ref(name)

        return self._dynamic(_SUB.sub(substitute, str(text)).replace("${!", "${"))

    def _dynamic(self, text: str) -> str:
        """``{{resolve:secretsmanager:…}}`` as CloudFormation resolves it at deploy time."""
        match = DYNAMIC_SECRET.search(text)
        if match is None:
            return text
        secret = self.clients("secretsmanager").get_secret_value(SecretId=match.group("id"))
        value = str(json.loads(secret["SecretString"]).get(match.group("key"), ""))
        return text[:match.start()] + value + text[match.end():]

    # -- attributes ---------------------------------------------------------------------

    def attribute(self, logical: str, attribute: str) -> str:
        key = (logical, attribute)
        if key not in self._attributes:
            self._attributes[key] = self._read_attribute(logical, attribute)
        return self._attributes[key]

    def _read_attribute(self, logical: str, attribute: str) -> str:
        kind = self.type_of(logical)
        physical = self.physical_id(logical)
        region, account = self.region, self.account_id
        simple: dict[tuple[str, str], Callable[[], str]] = {
            ("AWS::EC2::SecurityGroup", "GroupId"): lambda: physical,
            ("AWS::S3::Bucket", "Arn"): lambda: f"arn:aws:s3:::{physical}",
            ("AWS::S3::Bucket", "DomainName"): lambda: f"{physical}.s3.amazonaws.com",
            ("AWS::S3::Bucket", "RegionalDomainName"):
                lambda: f"{physical}.s3.{region}.amazonaws.com",
            ("AWS::Logs::LogGroup", "Arn"):
                lambda: f"arn:aws:logs:{region}:{account}:log-group:{physical}:*",
            ("AWS::DynamoDB::Table", "Arn"):
                lambda: f"arn:aws:dynamodb:{region}:{account}:table/{physical}",
            ("AWS::ElasticLoadBalancingV2::LoadBalancer", "LoadBalancerFullName"):
                lambda: physical.split(":loadbalancer/", 1)[1],
            ("AWS::CloudFront::OriginAccessControl", "Id"): lambda: physical,
            ("AWS::KMS::Key", "Arn"):
                lambda: str(self.clients("kms").describe_key(KeyId=physical)["KeyMetadata"]["Arn"]),
            ("AWS::IAM::Role", "Arn"):
                lambda: str(self.clients("iam").get_role(RoleName=physical)["Role"]["Arn"]),
            ("AWS::Lambda::Function", "Arn"):
                lambda: str(self.clients("lambda").get_function(
                    FunctionName=physical)["Configuration"]["FunctionArn"]),
            ("AWS::SQS::Queue", "Arn"):
                lambda: str(self.clients("sqs").get_queue_attributes(
                    QueueUrl=physical, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]),
            ("AWS::ECR::Repository", "Arn"): lambda: self._repository(physical)["repositoryArn"],
            ("AWS::ECR::Repository", "RepositoryUri"):
                lambda: self._repository(physical)["repositoryUri"],
            ("AWS::ElasticLoadBalancingV2::LoadBalancer", "DNSName"):
                lambda: self._load_balancer(physical)["DNSName"],
            ("AWS::ElasticLoadBalancingV2::LoadBalancer", "CanonicalHostedZoneID"):
                lambda: self._load_balancer(physical)["CanonicalHostedZoneId"],
            ("AWS::EC2::EIP", "AllocationId"):
                lambda: str(self.clients("ec2").describe_addresses(
                    PublicIps=[physical])["Addresses"][0]["AllocationId"]),
        }
        reader = simple.get((kind, attribute))
        if reader is None:
            raise Unresolvable(f"Fn::GetAtt {logical}.{attribute} ({kind}) is not evaluated here")
        return reader()

    def _repository(self, name: str) -> dict[str, str]:
        found = self.clients("ecr").describe_repositories(repositoryNames=[name])
        repository: dict[str, str] = found["repositories"][0]
        return repository

    def _load_balancer(self, arn: str) -> dict[str, str]:
        found = self.clients("elbv2").describe_load_balancers(LoadBalancerArns=[arn])
        balancer: dict[str, str] = found["LoadBalancers"][0]
        return balancer
