"""The bootstrap stack: what a deploy needs before the stack it deploys (seed §6, §11).

A deploy takes the DynamoDB lock and writes the template and its record to a versioned bucket
*before* it creates or updates the platform's stack, and the pipeline pushes the images the
stack's tasks run before that stack can start them; so none of these can live inside that
stack — the first deploy would need them before they exist, and a failed first create that
rolled the stack back would take them with it. CDK solves the same problem with
`cdk bootstrap`: a small stack of its own, deployed once per target, that every later deploy
uses (its staging bucket and image repository). This is ours: ``come2us-<env>-bootstrap``
holds the environment's lock table, its deploy-records bucket and its ECR repositories, all
kept when the stack is deleted; `come2us deploy` creates it when it is missing. One per
environment rather than per account, so that dev's pipeline cannot take prod's lock or
rewrite its records (the Jenkins role of each environment names only its own), and so that
environments may live in separate accounts.

The platform's template refers to them through the stack's exports (``Fn::ImportValue``),
which also stops the bootstrap stack from being deleted while a platform stack uses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from troposphere import Export, GetAtt, ImportValue, Output, Ref, Template, dynamodb, ecr, s3

from stack.aws.iam_documents import document
from stack.aws.metadata import skip_checkov, tag_everything
from stack.aws.naming import logical
from stack.aws.rollout import Rollout
from stack.aws.scope import Scope
from stack.aws.storage import deny_plain_http, versioned_bucket
from stack.model import Platform
from stack.model.compute import ServiceSpec
from stack.model.edge import Colour
from stack.model.environment import Environment

LOCK_TABLE = "DeployLockTable"
RECORDS_BUCKET = "DeployRecordsBucket"


def stack_name(environment: Environment) -> str:
    return f"{environment.stack_name}-bootstrap"


def export_name(environment: Environment, output: str) -> str:
    return f"{stack_name(environment)}-{output}"


@dataclass(frozen=True)
class BootstrapImports:
    """How the platform's template names what the bootstrap stack holds."""

    environment: Environment
    lock_table_arn: ImportValue
    records_bucket_arn: ImportValue

    def repository_uri(self, spec: ServiceSpec) -> ImportValue:
        return ImportValue(export_name(self.environment, f"{repository_logical(spec)}Uri"))

    def repository_arn(self, spec: ServiceSpec) -> ImportValue:
        return ImportValue(export_name(self.environment, f"{repository_logical(spec)}Arn"))


def imports(environment: Environment) -> BootstrapImports:
    return BootstrapImports(
        environment=environment,
        lock_table_arn=ImportValue(export_name(environment, f"{LOCK_TABLE}Arn")),
        records_bucket_arn=ImportValue(export_name(environment, f"{RECORDS_BUCKET}Arn")),
    )


def repository_logical(spec: ServiceSpec) -> str:
    return logical(spec.name, "Repository")


def repository_name(environment: Environment, spec: ServiceSpec) -> str:
    """The ECR repository of a service's images in one environment (the pipeline pushes there)."""
    return f"{environment.stack_name}/{spec.name}"


def lock_table_name(platform: Platform, environment: Environment) -> str:
    return environment.physical(platform.data.lock_table.name)


def records_bucket_name(platform: Platform, environment: Environment, account_id: str) -> str:
    """The bucket's physical name; the template builds the same with ``${AWS::AccountId}``."""
    return f"{environment.physical(platform.cloud.stores.deploy_records.name)}-{account_id}"


def render(platform: Platform, environment: Environment) -> Template:
    # The bootstrap has no colours; a scope is still the way to name things per environment.
    scope = Scope(platform, environment, Rollout.only(Colour.BLUE))
    t = Template(Description=(
        f"COME2US {environment.name} bootstrap: the deploy lock, the deploy records (templates "
        f"and records, the basis of a restore, §11) and the image repositories, before any "
        f"deploy"))
    t.set_version("2010-09-09")
    t.set_metadata({"Come2us": {"Environment": environment.name, "Bootstrap": True}})
    lock = platform.data.lock_table
    table = t.add_resource(dynamodb.Table(
        LOCK_TABLE,
        TableName=lock_table_name(platform, environment),
        AttributeDefinitions=[dynamodb.AttributeDefinition(AttributeName=lock.partition_key,
                                                           AttributeType="S")],
        KeySchema=[dynamodb.KeySchema(AttributeName=lock.partition_key, KeyType="HASH")],
        BillingMode="PAY_PER_REQUEST",
        PointInTimeRecoverySpecification=dynamodb.PointInTimeRecoverySpecification(
            PointInTimeRecoveryEnabled=True),
        # The AWS-managed key: the environment's own key is in the platform stack, which
        # does not exist yet when the lock is first taken.
        SSESpecification=dynamodb.SSESpecification(SSEEnabled=True, SSEType="KMS"),
        DeletionProtectionEnabled=environment.deletion_protection,
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
    ))
    skip_checkov(table, "CKV_AWS_119", "the lock item holds a holder's name and a time, no "
                 "data; it is encrypted with the AWS-managed key because the environment's "
                 "customer-managed key lives in the platform stack, created after the lock")
    records = t.add_resource(versioned_bucket(
        scope, RECORDS_BUCKET, platform.cloud.stores.deploy_records, None, ""))
    skip_checkov(records, "CKV_AWS_18", "written only by deploys, each of which leaves its own "
                 "record here; the access-log bucket is in the platform stack, which does not "
                 "exist before the first deploy")
    t.add_resource(s3.BucketPolicy(f"{RECORDS_BUCKET}Policy", Bucket=Ref(records),
                                   PolicyDocument=document(deny_plain_http(records))))
    outputs: list[tuple[str, object]] = [
        (LOCK_TABLE, Ref(table)), (f"{LOCK_TABLE}Arn", GetAtt(table, "Arn")),
        (RECORDS_BUCKET, Ref(records)), (f"{RECORDS_BUCKET}Arn", GetAtt(records, "Arn"))]
    for spec in platform.compute.services:
        repository = t.add_resource(_repository(scope, spec))
        outputs += [(f"{repository.title}Uri", GetAtt(repository, "RepositoryUri")),
                    (f"{repository.title}Arn", GetAtt(repository, "Arn"))]
    for name, value in outputs:
        t.add_output(Output(name, Value=value, Export=Export(export_name(environment, name))))
    tag_everything(t, scope.tags)
    return t


def _repository(scope: Scope, spec: ServiceSpec) -> ecr.Repository:
    keep = scope.cloud.stores.ecr_keep_images
    lifecycle = {"rules": [{
        "rulePriority": 1,
        "description": f"keep the {keep} most recent images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
        "action": {"type": "expire"},
    }]}
    return ecr.Repository(
        repository_logical(spec),
        RepositoryName=repository_name(scope.env, spec),
        ImageTagMutability="IMMUTABLE",  # a release tag names one image, forever
        ImageScanningConfiguration=ecr.ImageScanningConfiguration(ScanOnPush=True),
        # KMS with the AWS-managed key: the environment's own key is in the platform stack.
        EncryptionConfiguration=ecr.EncryptionConfiguration(EncryptionType="KMS"),
        LifecyclePolicy=ecr.LifecyclePolicy(LifecyclePolicyText=json.dumps(lifecycle)),
        DeletionPolicy="Retain",  # the images of every release, kept like the records
        UpdateReplacePolicy="Retain",
    )
