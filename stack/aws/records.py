"""Deploy records: what every deploy leaves in the versioned bucket, the basis of a restore (§11).

The seed restores "the whole infrastructure from the Terraform S3 backend". Our equivalent is
the bootstrap stack's versioned bucket: each template a deploy sends to CloudFormation is an
object version under ``templates/<stack>.json`` (CloudFormation reads it from there anyway: the
templates are larger than the 51,200 bytes it takes inline), and each deploy writes one JSON
record under ``records/<env>/`` — who, when, which version and colour, every stack update it
made with the template's version id and the change set's summary, and how it ended. Restoring
is deploying a recorded template version again (`Deployer.restore`).

Record ids start with the UTC time, so listing the prefix lists the history in order.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TEMPLATES = "templates"
RECORDS = "records"


@dataclass(frozen=True)
class Change:
    """One line of a change set: what CloudFormation will do to one resource."""

    action: str  # Add, Modify, Remove
    logical_id: str
    resource_type: str
    replacement: str = ""  # True, False, Conditional, or "" when not a Modify

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class StoredTemplate:
    """A template as CloudFormation received it: one version of one object."""

    bucket: str
    key: str
    version_id: str | None  # None only where the bucket is not versioned

    def url(self, region: str) -> str:
        """The TemplateURL that names exactly this version."""
        url = f"https://{self.bucket}.s3.{region}.amazonaws.com/{self.key}"
        return f"{url}?versionId={self.version_id}" if self.version_id else url


@dataclass
class Step:
    """One stack update of a deploy (a blue/green deploy makes up to three)."""

    name: str  # e.g. "② deploy green beside blue"
    stack: str
    colours: list[str]
    active: str
    template_key: str = ""
    template_version: str | None = None
    change_set: str = ""
    changes: list[Change] = field(default_factory=list)
    status: str = ""  # the stack's final status, or NO_CHANGES
    seconds: float = 0.0

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for change in self.changes:
            counts[change.action] = counts.get(change.action, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["changes"] = [change.to_json() for change in self.changes]
        data["summary"] = self.summary()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["changes"] = [Change(**change) for change in data.get("changes", [])]
        return cls(**fields)


@dataclass
class DeployRecord:
    id: str
    environment: str
    target: str  # aws or emulator
    version: str
    who: str  # user@host pid N
    started: float
    kind: str  # "deploy", "switch", "retire", "restore"
    finished: float | None = None
    result: str = "in progress"  # deployed, promoted, rolled back, failed, no change, …
    reason: str = ""
    active: str = ""  # the colour that takes traffic when the deploy ended
    steps: list[Step] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)  # emulator deploys

    @staticmethod
    def new_id(started: float, version: str) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started))
        millis = int(started * 1000) % 1000
        safe = "".join(c if c.isalnum() or c in ".-_" else "-" for c in version)
        return f"{stamp}.{millis:03d}Z-{safe or 'unversioned'}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [step.to_json() for step in self.steps]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeployRecord:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["steps"] = [Step.from_json(step) for step in data.get("steps", [])]
        return cls(**fields)

    def last_template(self) -> Step | None:
        """The last stack update that sent a template: what a restore deploys again."""
        sent = [step for step in self.steps if step.template_key]
        return sent[-1] if sent else None


class RecordStore:
    """Templates and deploy records of one environment in the bootstrap stack's bucket."""

    def __init__(self, s3: S3Client, bucket: str, environment: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.environment = environment

    def put_template(self, stack: str, text: str, variant: str = "") -> StoredTemplate:
        """Upload a template; the bucket is versioned, so each upload is kept as a version."""
        key = f"{TEMPLATES}/{stack}{'.' + variant if variant else ''}.json"
        reply = self.s3.put_object(Bucket=self.bucket, Key=key, Body=text.encode(),
                                   ContentType="application/json")
        return StoredTemplate(self.bucket, key, reply.get("VersionId"))

    def template(self, key: str, version_id: str | None) -> str:
        reply = (self.s3.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)
                 if version_id else self.s3.get_object(Bucket=self.bucket, Key=key))
        return bytes(reply["Body"].read()).decode()

    def _key(self, record_id: str) -> str:
        return f"{RECORDS}/{self.environment}/{record_id}.json"

    def save(self, record: DeployRecord) -> str:
        key = self._key(record.id)
        self.s3.put_object(Bucket=self.bucket, Key=key, ContentType="application/json",
                           Body=json.dumps(record.to_json(), indent=1, sort_keys=True).encode())
        return key

    def get(self, record_id: str) -> DeployRecord:
        body = self.s3.get_object(Bucket=self.bucket, Key=self._key(record_id))["Body"].read()
        return DeployRecord.from_json(json.loads(body))

    def history(self, limit: int | None = None) -> list[DeployRecord]:
        """The environment's records, oldest first (ids start with the time)."""
        keys: list[str] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{RECORDS}/{self.environment}/"):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        keys.sort()
        if limit is not None:
            keys = keys[-limit:]
        return [self.get(key.rsplit("/", 1)[-1].removesuffix(".json")) for key in keys]
