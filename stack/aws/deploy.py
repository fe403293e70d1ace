"""`come2us deploy`: one engine for real AWS and for the emulator, behind a small `Target`.

A deploy session is always the same sequence: make sure the bootstrap stack exists (the lock
table, the records bucket and the image repositories, `stack.aws.bootstrap`), take the
DynamoDB deploy lock (refused with the holder's identity when someone else has it), then make
one or more stack updates — each a rendered template uploaded to the versioned bucket and
applied through a change set — and finally verify what was deployed (the emulator does),
write the deploy record and release the lock, whatever happened in between.

Where AWS and the emulator differ is the `Target`: where its clients point, which account
prerequisites it needs, what it must do to a template before CloudFormation sees it, and what
it checks after each update. `AwsTarget` is real AWS: nothing is rewritten, nothing is
created beside CloudFormation. The emulator's target lives in `stack.aws.emulator_gaps`, the
one module that knows what moto skips; this module never imports it.

Example::

    deployer = Deployer(come2us(), environment("dev"), AwsTarget(region="ap-northeast-2"))
    with deployer.session("deploy", version="1.4.0") as session:
        session.apply(Rollout.only(Colour.BLUE, "1.4.0"), "① first deploy")
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError

from stack.aws import bootstrap
from stack.aws.changeset import ChangeSetRunner, Reporter, SilentReporter, Timing, stack_status
from stack.aws.deployed import DeployedStack, exports, physical_ids
from stack.aws.edge import HOSTED_ZONE
from stack.aws.records import DeployRecord, RecordStore, Step, StoredTemplate
from stack.aws.rollout import Rollout
from stack.aws.template import METADATA_KEY, render, to_dict
from stack.deploy_lock import DeployLock, LockInfo
from stack.model import Platform
from stack.model.edge import Colour
from stack.model.environment import Environment


@dataclass(frozen=True)
class Identity:
    """Who deploys: the lock names them to anyone refused, and the record keeps them."""

    user: str
    host: str
    pid: int

    @classmethod
    def current(cls) -> Identity:
        return cls(getpass.getuser(), socket.gethostname(), os.getpid())

    def __str__(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid}"


class Target(Protocol):
    """Where a deploy goes: real AWS, or the emulator (`stack.aws.emulator_gaps`)."""

    @property
    def name(self) -> str: ...

    @property
    def region(self) -> str: ...

    @property
    def timing(self) -> Timing: ...

    def client(self, service: str) -> Any: ...

    def account_id(self) -> str: ...

    def parameters(self, platform: Platform, environment: Environment) -> dict[str, str]:
        """The template's parameters, after checking the account's prerequisites."""
        ...

    def role_arn(self, platform: Platform) -> str | None:
        """The CloudFormation service role the deploy passes (None: the caller's rights)."""
        ...

    def for_cloudformation(self, stack: str, template: dict[str, Any]) -> dict[str, Any]:
        """The template as this target's CloudFormation must receive it."""
        ...

    def exports(self) -> dict[str, str]:
        """The stacks' exports by name (what ``Fn::ImportValue`` resolves to)."""
        ...

    def after_update(self, deployed: DeployedStack) -> None:
        """What the target does after each stack update (the emulator fills moto's gaps)."""
        ...

    def verify(self, deployed: DeployedStack) -> dict[str, Any]:
        """What the target checks when a deploy has made its updates; the summary is recorded.
        Raises when the deployed stack is not what the template says."""
        ...


class PrerequisiteMissing(RuntimeError):
    """Something a first deploy needs in the account is not there; the message says what."""


@dataclass
class AwsTarget:
    """Real AWS through the caller's credentials (environment, profile, instance role)."""

    region: str
    session: Any = None  # boto3.Session; created from the environment when None
    name: str = "aws"
    timing: Timing = field(default_factory=Timing)
    _account: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.session is None:
            import boto3

            self.session = boto3.session.Session(region_name=self.region)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region)
        return self._clients[service]

    def account_id(self) -> str:
        if self._account is None:
            self._account = str(self.client("sts").get_caller_identity()["Account"])
        return self._account

    def parameters(self, platform: Platform, environment: Environment) -> dict[str, str]:
        missing = missing_prerequisites(self.client, platform, environment)
        if missing:
            raise PrerequisiteMissing(
                "the account lacks what a deploy needs (README: Promoting to AWS):\n  - "
                + "\n  - ".join(missing))
        return {HOSTED_ZONE: hosted_zone_id(self.client("route53"), platform)}

    def role_arn(self, platform: Platform) -> str | None:
        return f"arn:aws:iam::{self.account_id()}:role/{platform.cloud.ci.deploy_role}"

    def for_cloudformation(self, stack: str, template: dict[str, Any]) -> dict[str, Any]:
        return template

    def exports(self) -> dict[str, str]:
        return exports(self.client("cloudformation"))

    def after_update(self, deployed: DeployedStack) -> None:
        """Nothing: on AWS, CloudFormation made every resource."""

    def verify(self, deployed: DeployedStack) -> dict[str, Any]:
        """CloudFormation's own status is trusted on AWS (`stack.aws.verify` can be run by hand)."""
        return {}


def hosted_zone_id(route53: Any, platform: Platform) -> str:
    """The id of the public hosted zone of the model's domain, which must exist (a prerequisite)."""
    apex = platform.cloud.edge.apex_domain.rstrip(".") + "."
    for zone in route53.list_hosted_zones_by_name(DNSName=apex).get("HostedZones", []):
        if zone["Name"] == apex and not zone.get("Config", {}).get("PrivateZone", False):
            return str(zone["Id"]).rsplit("/", 1)[-1]
    raise PrerequisiteMissing(
        f"no public Route53 hosted zone for {apex} in this account: create it (and delegate "
        f"the domain to it) before the first deploy")


def missing_prerequisites(client: Any, platform: Platform,
                          environment: Environment) -> list[str]:
    """What the account lacks of the prerequisites a user creates once (README), in words."""
    missing: list[str] = []
    try:
        hosted_zone_id(client("route53"), platform)
    except PrerequisiteMissing as err:
        missing.append(str(err))
    notifier = platform.cloud.observability.notifier
    secret = f"{platform.name}/{environment.name}/{notifier.discord_webhook}"
    ci = platform.cloud.ci
    checks: tuple[tuple[str, str, dict[str, str], str], ...] = (
        ("secretsmanager", "describe_secret", {"SecretId": secret},
         f"the Discord webhook URL as the Secrets Manager secret {secret}"),
        ("ssm", "get_parameter", {"Name": ci.ami_parameter},
         f"the Jenkins image id in the SSM parameter {ci.ami_parameter} (packer build "
         f"packer/jenkins.pkr.hcl writes it)"),
        ("iam", "get_role", {"RoleName": ci.deploy_role},
         f"the CloudFormation service role {ci.deploy_role}"),
    )
    for service, call, arguments, what in checks:
        try:
            getattr(client(service), call)(**arguments)
        except ClientError:
            missing.append(f"missing: {what}")
    return missing


@dataclass(frozen=True)
class BootstrapInfo:
    stack: str
    lock_table: str
    bucket: str


def template_metadata(template: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = template.get("Metadata", {}).get(METADATA_KEY, {})
    return metadata


def rollout_of(template: dict[str, Any]) -> Rollout | None:
    """The rollout step a deployed template was rendered for (written into its metadata)."""
    metadata = template_metadata(template)
    if "ActiveColour" not in metadata:
        return None
    releases = tuple((Colour(colour), str(tag))
                     for colour, tag in sorted(metadata.get("Releases", {}).items()))
    return Rollout(active=Colour(metadata["ActiveColour"]),
                   colours=tuple(Colour(c) for c in metadata["Colours"]), releases=releases)


class Deployer:
    """Deploys one environment of the model to one target."""

    def __init__(self, platform: Platform, environment: Environment, target: Target,
                 reporter: Reporter | None = None, identity: Identity | None = None) -> None:
        self.platform = platform
        self.environment = environment
        self.target = target
        self.reporter: Reporter = reporter or SilentReporter()
        self.identity = identity or Identity.current()
        self.stack = environment.stack_name
        self._bootstrap: BootstrapInfo | None = None
        self._cf: Any = None

    @property
    def cloudformation(self) -> Any:
        if self._cf is None:
            self._cf = self.target.client("cloudformation")
        return self._cf

    def runner(self) -> ChangeSetRunner:
        return ChangeSetRunner(self.cloudformation, self.reporter, self.target.timing)

    # -- the bootstrap stack ------------------------------------------------------------

    def ensure_bootstrap(self) -> BootstrapInfo:
        """Create or update the bootstrap stack — without the lock, which lives in it; two
        deployers updating it at once are serialised by CloudFormation (the second is refused
        while the first's update is in progress)."""
        if self._bootstrap is not None:
            return self._bootstrap
        name = bootstrap.stack_name(self.environment)
        template = to_dict(bootstrap.render(self.platform, self.environment))
        status = stack_status(self.cloudformation, name)
        changed = status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE") or \
            self._deployed_template(name) != self.target.for_cloudformation(name, template)
        if changed:
            self.reporter.step(f"bootstrap stack {name}")
            # Small enough to pass inline, and it must: the bucket it would be uploaded to is
            # one of its resources.
            body = json.dumps(self.target.for_cloudformation(name, template), sort_keys=True)
            self.runner().run(name, {}, template_body=body, tags=self._tags(),
                              description="COME2US bootstrap: deploy lock and deploy records")
        account = self.target.account_id()
        info = BootstrapInfo(
            stack=name,
            lock_table=bootstrap.lock_table_name(self.platform, self.environment),
            bucket=bootstrap.records_bucket_name(self.platform, self.environment, account))
        if changed:
            deployed = self._deployed(name, template, {})
            self.target.after_update(deployed)
            self.target.verify(deployed)
        self._bootstrap = info
        return info

    def _deployed_template(self, stack: str) -> dict[str, Any] | None:
        try:
            body = self.cloudformation.get_template(StackName=stack)["TemplateBody"]
        except ClientError:  # no such stack
            return None
        loaded: dict[str, Any] = json.loads(body) if isinstance(body, str) else dict(body)
        return loaded

    def _deployed(self, stack: str, template: dict[str, Any],
                  parameters: dict[str, str]) -> DeployedStack:
        return DeployedStack(
            name=stack, template=template, physical=physical_ids(self.cloudformation, stack),
            parameters=parameters, clients=self.target.client,
            account_id=self.target.account_id(), region=self.target.region,
            exports=self.target.exports())

    def _tags(self) -> dict[str, str]:
        return {"Project": self.platform.name, "Environment": self.environment.name}

    # -- lock, records ----------------------------------------------------------------------

    def lock(self) -> DeployLock:
        info = self.ensure_bootstrap()
        return DeployLock(self.target.client("dynamodb"), info.lock_table,
                          self.platform.data.lock_table.partition_key)

    def records(self) -> RecordStore:
        info = self.ensure_bootstrap()
        return RecordStore(self.target.client("s3"), info.bucket, self.environment.name)

    @contextmanager
    def session(self, kind: str, version: str = "", break_lock: bool = False,
                what: str = "") -> Iterator[DeploySession]:
        """Lock, record, and always release: the frame of every command that changes a stack."""
        lock = self.lock()
        holder = str(self.identity)
        if break_lock:
            broken = lock.break_lock()
            self.reporter.note(f"broke the deploy lock held by {broken.describe()}" if broken
                               else "--break-lock: the deploy lock was not held")
        reason = what or f"{kind} {self.environment.name} {version}".strip()
        lock.acquire(holder, reason)
        started = time.time()
        record = DeployRecord(id=DeployRecord.new_id(started, version or kind),
                              environment=self.environment.name, target=self.target.name,
                              version=version, who=holder, started=started, kind=kind)
        session = DeploySession(self, record)
        try:
            yield session
            if session.last_applied is not None:
                self.reporter.step("verify the deployed stack")
                record.verification = self.target.verify(session.last_applied)
            if record.result == "in progress":
                record.result = "done"
        except BaseException as err:
            record.result = "failed"
            record.reason = str(err)
            raise
        finally:
            record.finished = time.time()
            try:
                current = self.deployed_rollout()
                record.active = str(current.active) if current else ""
            except ClientError as err:  # never hide why the deploy ended
                record.active = f"unknown ({err})"
            try:
                self.records().save(record)
            finally:
                lock.release(holder)

    def holder(self) -> LockInfo | None:
        return self.lock().holder()

    # -- what is deployed ------------------------------------------------------------------

    def deployed_rollout(self) -> Rollout | None:
        """The rollout step of the platform stack as deployed, or None before the first deploy."""
        if stack_status(self.cloudformation, self.stack) in (None, "REVIEW_IN_PROGRESS"):
            return None
        template = self._deployed_template(self.stack)
        return rollout_of(template) if template else None

    def deployed_stack(self) -> DeployedStack:
        template = to_dict(render(self.platform, self.environment,
                                  self.deployed_rollout() or Rollout.only(Colour.BLUE)))
        return self._deployed(self.stack, template,
                              self.target.parameters(self.platform, self.environment))


class DeploySession:
    """The stack updates of one locked deploy; each lands in the record as a `Step`."""

    def __init__(self, deployer: Deployer, record: DeployRecord) -> None:
        self.deployer = deployer
        self.record = record
        self.last_applied: DeployedStack | None = None  # verified when the session ends

    def apply(self, rollout: Rollout, name: str) -> Step:
        """Render the template for ``rollout``, upload it, apply it through a change set."""
        template = to_dict(render(self.deployer.platform, self.deployer.environment, rollout))
        return self.apply_template(template, name, rollout)

    def apply_template(self, template: dict[str, Any], name: str,
                       rollout: Rollout | None = None) -> Step:
        deployer = self.deployer
        target = deployer.target
        stack = deployer.stack
        rollout = rollout or rollout_of(template)
        deployer.reporter.step(name)
        step = Step(name=name, stack=stack,
                    colours=[str(c) for c in rollout.colours] if rollout else [],
                    active=str(rollout.active) if rollout else "")
        self.record.steps.append(step)
        began = time.monotonic()
        store = deployer.records()
        stored = store.put_template(stack, json.dumps(template, sort_keys=True, indent=1) + "\n")
        step.template_key, step.template_version = stored.key, stored.version_id
        parameters = target.parameters(deployer.platform, deployer.environment)
        sent = target.for_cloudformation(stack, template)
        if sent != template:  # the emulator's form, kept beside the real one
            stored = store.put_template(stack, json.dumps(sent, sort_keys=True), target.name)
        outcome = deployer.runner().run(
            stack, parameters, template_url=stored.url(target.region),
            role_arn=target.role_arn(deployer.platform), tags=deployer._tags(),
            description=f"{name} ({self.record.who})")
        step.change_set, step.changes, step.status = (outcome.change_set, outcome.changes,
                                                      outcome.status)
        step.seconds = round(time.monotonic() - began, 2)
        self.last_applied = deployer._deployed(stack, template, parameters)
        target.after_update(self.last_applied)
        step.seconds = round(time.monotonic() - began, 2)
        return step


def restore_template(store: RecordStore,
                     record: DeployRecord) -> tuple[dict[str, Any], StoredTemplate]:
    """The template a record's last stack update sent, read back from its bucket version."""
    step = record.last_template()
    if step is None:
        raise ValueError(f"record {record.id} made no stack update: nothing to restore")
    text = store.template(step.template_key, step.template_version)
    return json.loads(text), StoredTemplate(store.bucket, step.template_key,
                                            step.template_version)

