"""Make the model's S3 bucket and DynamoDB lock table exist as described, and prove it by reading.

Used by the AWS emulator after it starts, and meant for the CloudFormation deploy to moto as well:
moto's CloudFormation creates the bucket but silently ignores its VersioningConfiguration and
LifecycleConfiguration (../shared/NOTES.md), while the direct S3 API honours both. So whoever
creates the bucket then calls `ensure_bucket`, which sets what is missing and reads it back.

Every function is idempotent: run against a bucket or table that is already right, it changes
nothing (the lifecycle is put again, which replaces it with the same rules). Data is never
deleted: a table whose key differs from the model is reported, not re-created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from botocore.exceptions import ClientError

from stack.model import Bucket, LifecycleRule, LockTable
from stack.waiting import wait_for

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType
    from mypy_boto3_s3.type_defs import LifecycleRuleTypeDef


class ProvisioningError(RuntimeError):
    """A resource could not be made to match the model; the message lists the differences."""


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


# -- S3 ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeenLifecycleRule:
    """A lifecycle rule as S3 reports it (either setting may be absent in a foreign rule)."""

    id: str
    enabled: bool
    noncurrent_expiry_days: int | None
    abort_multipart_days: int | None


@dataclass(frozen=True)
class BucketState:
    """What S3 says about a bucket: whether it exists, its versioning, its lifecycle rules."""

    name: str
    exists: bool
    versioning: str | None  # "Enabled", "Suspended", or None when never set
    lifecycle: tuple[SeenLifecycleRule, ...]

    def differences(self, bucket: Bucket) -> list[str]:
        """How this bucket differs from the model; empty when it matches."""
        if not self.exists:
            return [f"bucket {self.name} does not exist"]
        problems: list[str] = []
        if bucket.versioned and self.versioning != "Enabled":
            problems.append(f"versioning is {self.versioning or 'not set'}, not Enabled")
        seen = {rule.id: rule for rule in self.lifecycle}
        for rule in bucket.lifecycle:
            found = seen.pop(rule.name, None)
            wanted = SeenLifecycleRule(rule.name, True, rule.noncurrent_expiry_days,
                                       rule.abort_multipart_days)
            if found != wanted:
                problems.append(f"lifecycle rule {rule.name}: wanted {wanted}, found {found}")
        problems.extend(f"lifecycle rule {name} is not in the model" for name in seen)
        return problems

    def summary(self) -> str:
        if not self.exists:
            return f"bucket {self.name} missing"
        versioning = "versioned" if self.versioning == "Enabled" else "unversioned"
        return f"bucket {self.name} {versioning}, {len(self.lifecycle)} lifecycle rule(s)"


def lifecycle_configuration(rules: tuple[LifecycleRule, ...]) -> list[LifecycleRuleTypeDef]:
    """The model's lifecycle rules in the S3 API's shape, for every object of the bucket."""
    return [
        {
            "ID": rule.name,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": rule.noncurrent_expiry_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": rule.abort_multipart_days},
        }
        for rule in rules
    ]


def read_bucket(s3: S3Client, name: str) -> BucketState:
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as err:
        if _error_code(err) in ("404", "NoSuchBucket", "NotFound"):
            return BucketState(name, exists=False, versioning=None, lifecycle=())
        raise
    versioning = s3.get_bucket_versioning(Bucket=name).get("Status")
    try:
        raw_rules = s3.get_bucket_lifecycle_configuration(Bucket=name).get("Rules", [])
    except ClientError as err:
        if _error_code(err) != "NoSuchLifecycleConfiguration":
            raise
        raw_rules = []
    rules = tuple(
        SeenLifecycleRule(
            id=str(raw.get("ID", "")),
            enabled=raw.get("Status") == "Enabled",
            noncurrent_expiry_days=raw.get("NoncurrentVersionExpiration", {}).get(
                "NoncurrentDays"),
            abort_multipart_days=raw.get("AbortIncompleteMultipartUpload", {}).get(
                "DaysAfterInitiation"),
        )
        for raw in raw_rules
    )
    return BucketState(name, exists=True, versioning=versioning, lifecycle=rules)


def ensure_bucket(s3: S3Client, bucket: Bucket, region: str) -> BucketState:
    """Create the bucket if missing, set its versioning and lifecycle, and verify by reading."""
    try:
        if region == "us-east-1":  # the one region where S3 refuses a LocationConstraint
            s3.create_bucket(Bucket=bucket.name)
        else:
            s3.create_bucket(
                Bucket=bucket.name,
                CreateBucketConfiguration={
                    "LocationConstraint": cast("BucketLocationConstraintType", region)
                },
            )
    except ClientError as err:
        if _error_code(err) != "BucketAlreadyOwnedByYou":
            raise
    current = s3.get_bucket_versioning(Bucket=bucket.name).get("Status")
    if bucket.versioned and current != "Enabled":
        s3.put_bucket_versioning(Bucket=bucket.name,
                                 VersioningConfiguration={"Status": "Enabled"})
    elif not bucket.versioned and current == "Enabled":
        # Versioning can never be turned off again, only suspended.
        s3.put_bucket_versioning(Bucket=bucket.name,
                                 VersioningConfiguration={"Status": "Suspended"})
    if bucket.lifecycle:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket.name,
            LifecycleConfiguration={"Rules": lifecycle_configuration(bucket.lifecycle)},
        )
    else:
        s3.delete_bucket_lifecycle(Bucket=bucket.name)
    state = read_bucket(s3, bucket.name)
    problems = state.differences(bucket)
    if problems:
        raise ProvisioningError(
            f"bucket {bucket.name} does not match the model after provisioning: "
            + "; ".join(problems)
        )
    return state


# -- DynamoDB ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableState:
    """What DynamoDB says about a table: status, key schema, billing mode."""

    name: str
    exists: bool
    status: str | None
    partition_key: str | None
    partition_key_type: str | None
    sort_key: str | None
    billing_mode: str | None

    def differences(self, table: LockTable) -> list[str]:
        if not self.exists:
            return [f"table {self.name} does not exist"]
        problems: list[str] = []
        if (self.partition_key, self.partition_key_type) != (table.partition_key, "S"):
            problems.append(
                f"partition key is {self.partition_key} ({self.partition_key_type}), "
                f"not {table.partition_key} (S)"
            )
        if self.sort_key is not None:
            problems.append(f"has a sort key {self.sort_key}; the model has none")
        if self.billing_mode != "PAY_PER_REQUEST":
            problems.append(f"billing mode is {self.billing_mode}, not PAY_PER_REQUEST")
        return problems

    def summary(self) -> str:
        if not self.exists:
            return f"table {self.name} missing"
        return f"table {self.name} ({self.partition_key}, {self.status})"


def read_table(dynamodb: DynamoDBClient, name: str) -> TableState:
    try:
        description = dynamodb.describe_table(TableName=name)["Table"]
    except ClientError as err:
        if _error_code(err) == "ResourceNotFoundException":
            return TableState(name, False, None, None, None, None, None)
        raise
    keys = {key["KeyType"]: key["AttributeName"] for key in description.get("KeySchema", [])}
    types = {
        attribute["AttributeName"]: attribute["AttributeType"]
        for attribute in description.get("AttributeDefinitions", [])
    }
    partition_key = keys.get("HASH")
    # DescribeTable omits BillingModeSummary for provisioned tables created without a mode.
    billing = description.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    return TableState(
        name=name,
        exists=True,
        status=description.get("TableStatus"),
        partition_key=partition_key,
        partition_key_type=types.get(partition_key) if partition_key else None,
        sort_key=keys.get("RANGE"),
        billing_mode=billing,
    )


def ensure_lock_table(dynamodb: DynamoDBClient, table: LockTable,
                      timeout: float = 30.0) -> TableState:
    """Create the lock table if missing (string partition key, on demand), wait until ACTIVE.

    An existing table with another key is reported, never dropped: it may hold a lock that a
    deploy in progress relies on.
    """
    try:
        dynamodb.create_table(
            TableName=table.name,
            KeySchema=[{"AttributeName": table.partition_key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": table.partition_key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as err:
        if _error_code(err) != "ResourceInUseException":  # it exists already
            raise

    def active() -> tuple[TableState | None, str]:
        state = read_table(dynamodb, table.name)
        return (state if state.status == "ACTIVE" else None), state.summary()

    state = wait_for(active, timeout=timeout, what=f"table {table.name} ACTIVE", interval=0.2)
    problems = state.differences(table)
    if problems:
        raise ProvisioningError(
            f"table {table.name} does not match the model: " + "; ".join(problems)
            + ". It was left as it is (it may hold a deploy's lock); delete it yourself if the "
            "model's key is the one you want."
        )
    return state
