"""Deploys to moto's server: what is rewritten for it, what is filled in, what is verified.

One dev stack is deployed per module (about 8 s); the tests that change it put it back.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from moto_endpoint import moto_endpoint, reset

from stack import bluegreen
from stack.aws.changeset import SilentReporter
from stack.aws.colours import CloudFormationColours
from stack.aws.deploy import Deployer, Identity, restore_template
from stack.aws.emulator_gaps import (
    NOT_EMULATED,
    PROPERTY_GAPS,
    REWRITES,
    EmulatorTarget,
    GapFiller,
    exports,
    reset_emulator,
    rewrite,
)
from stack.aws.rollout import Rollout
from stack.aws.template import render, to_dict
from stack.aws.verify import DIFFERS, MISSING, verify
from stack.come2us import come2us, environment
from stack.deploy_lock import LockHeld
from stack.model import AwsEndpoint
from stack.model.edge import Colour

# moto warns about each resource type its CloudFormation skips: known, the gap module's job.
pytestmark = [pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning"),
              pytest.mark.filterwarnings("ignore:Unable to delete:UserWarning")]

MODEL = come2us()
DEV = environment("dev")
ALICE = Identity("alice", "ci-1", 11)
BOB = Identity("bob", "laptop", 22)


BLUE_ONLY = Rollout.only(Colour.BLUE)


def dev_template(rollout: Rollout = BLUE_ONLY) -> dict[str, Any]:
    return to_dict(render(MODEL, DEV, rollout))


# -- rewrites (no server) ---------------------------------------------------------------------


def test_each_rewrite_changes_only_what_moto_misreads_in_a_copy() -> None:
    template = dev_template()
    original = copy.deepcopy(template)
    imported = set(re.findall(r'"Fn::ImportValue": "([^"]+)"', json.dumps(template)))
    assert "come2us-dev-bootstrap-DeployLockTableArn" in imported
    values = {name: f"value-of-{name}" for name in imported}
    values["come2us-dev-bootstrap-DeployLockTableArn"] = "arn:table"
    sent, applied = rewrite(template, {"Certificate": "arn:cert", "DatabaseSecret": "arn:db"},
                            values)
    assert template == original, "the real template was changed"
    assert applied == sorted(REWRITES)
    key = sent["Resources"]["EnvironmentKey"]["Properties"]
    assert {"TagKey": "Environment", "TagValue": "dev"} in key["Tags"]
    assert "Fn::ToJsonString" in key["KeyPolicy"]
    assert "DBParameterGroupName" not in sent["Resources"]["DatabaseWriter"]["Properties"]
    listener = sent["Resources"]["HttpsListener"]["Properties"]
    assert listener["Certificates"] == [{"CertificateArn": "arn:cert"}]
    bastion = sent["Resources"]["Bastion"]["Properties"]
    assert "NetworkInterfaces" not in bastion and bastion["SubnetId"] == {
        "Ref": "SubnetPublicA"}
    assert "arn:table" in json.dumps(sent["Resources"]["CiRole"])
    assert "Fn::ImportValue" not in json.dumps(sent)
    # Everything else is the real template, untouched.
    changed = {name for name in template["Resources"]
               if template["Resources"][name] != sent["Resources"][name]}
    assert changed <= {"EnvironmentKey", "DatabaseWriter", "DatabaseReader1", "HttpsListener",
                       "Bastion", "CiRole", "DatabaseSecretAttachment", "TaskExecutionRole",
                       *(n for n in template["Resources"] if n.endswith("TaskDefinition"))}


def test_the_real_aws_modules_never_import_the_emulator_gaps() -> None:
    code = ("import sys, stack.aws.deploy, stack.aws.colours, stack.bluegreen, stack.cli; "
            "sys.exit('stack.aws.emulator_gaps' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_what_is_not_emulated_says_why() -> None:
    for reason in (*NOT_EMULATED.values(), *PROPERTY_GAPS.values(), *REWRITES.values()):
        assert len(reason) > 30, reason


# -- against moto's server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[AwsEndpoint]:
    yield from moto_endpoint()


@pytest.fixture(scope="module")
def target(endpoint: AwsEndpoint) -> EmulatorTarget:
    return EmulatorTarget(endpoint, MODEL, DEV)


@pytest.fixture(scope="module")
def first_deploy(endpoint: AwsEndpoint, target: EmulatorTarget) -> Deployer:
    reset(endpoint)
    deployer = Deployer(MODEL, DEV, target, identity=ALICE)
    with deployer.session("deploy", "1.0.0") as session:
        result = bluegreen.promote(CloudFormationColours(session), "1.0.0")
        session.record.result = str(result.outcome)
    assert result.outcome is bluegreen.Outcome.CREATED
    return deployer


def test_a_first_deploy_is_verified_resource_by_resource(first_deploy: Deployer,
                                                         target: EmulatorTarget) -> None:
    report = target.last_report
    assert report is not None and not report.problems
    resources = dev_template()["Resources"]
    assert len(report.checks) == len(resources)
    assert {c.logical_id for c in report.not_emulated} == {
        name for name, r in resources.items() if r["Type"] in NOT_EMULATED}
    [kept] = first_deploy.records().history()
    assert kept.who == str(ALICE) and kept.result == "created"
    assert kept.verification["ok"] == report.count("ok")
    assert set(kept.verification["rewrites"]) == set(REWRITES)


def test_the_bootstrap_stack_exports_the_lock_table_and_the_records_bucket(
        first_deploy: Deployer, target: EmulatorTarget) -> None:
    found = exports(target)
    assert found["come2us-dev-bootstrap-DeployLockTable"] == "come2us-dev-deploy-lock"
    assert found["come2us-dev-bootstrap-DeployRecordsBucketArn"].endswith(
        f"come2us-dev-deploy-records-{target.account_id()}")
    s3 = target.client("s3")
    bucket = first_deploy.ensure_bootstrap().bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_verification_finds_what_went_missing_and_what_differs(first_deploy: Deployer,
                                                               target: EmulatorTarget) -> None:
    deployed = first_deploy.deployed_stack()
    logs, cloudwatch = target.client("logs"), target.client("cloudwatch")
    alarm = deployed.resources["GatewayBlueCpuHighAlarm"]["Properties"]["AlarmName"]
    cloudwatch.delete_alarms(AlarmNames=[alarm])
    logs.put_retention_policy(logGroupName="/come2us/dev/gateway", retentionInDays=7)
    try:
        deployed.physical.update(GapFiller(deployed).fill())
        report = verify(deployed, NOT_EMULATED, PROPERTY_GAPS)
        problems = {c.logical_id: c for c in report.problems}
        assert problems["GatewayLogGroup"].status == DIFFERS
        assert "RetentionInDays: template 30, deployed 7" in problems["GatewayLogGroup"].detail
        # A skipped type that went missing is created again by the next gap fill.
        assert "GatewayBlueCpuHighAlarm" not in problems
        cloudwatch.delete_alarms(AlarmNames=[alarm])
        missing = {c.logical_id: c for c in verify(deployed, NOT_EMULATED,
                                                   PROPERTY_GAPS).problems}
        assert missing["GatewayBlueCpuHighAlarm"].status == MISSING
    finally:
        logs.put_retention_policy(logGroupName="/come2us/dev/gateway", retentionInDays=30)
        GapFiller(deployed).fill()


def test_a_second_deployer_is_refused_naming_the_holder(first_deploy: Deployer,
                                                        target: EmulatorTarget) -> None:
    first_deploy.lock().acquire(str(ALICE), "deploy dev 9.9 (blue/green)")
    notes = Notes()
    second = Deployer(MODEL, DEV, target, notes, identity=BOB)
    try:
        with pytest.raises(LockHeld) as refused, second.session("deploy", "2.0"):
            pass
        assert refused.value.info.holder == "alice@ci-1 pid 11"
        assert "deploy dev 9.9" in str(refused.value)
    finally:
        with second.session("status", break_lock=True):
            pass
        assert notes.notes and "alice@ci-1 pid 11" in notes.notes[0]
    assert second.holder() is None


class Notes(SilentReporter):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


class QuickColours(CloudFormationColours):
    """The model's grace period is 90 s; a test does not wait that long for what never comes."""

    @property
    def grace_period_s(self) -> float:
        return 0.5


def test_a_new_colour_that_never_gets_healthy_is_rolled_back(first_deploy: Deployer,
                                                             endpoint: AwsEndpoint) -> None:
    sick = EmulatorTarget(endpoint, MODEL, DEV, unhealthy=frozenset({Colour.GREEN}))
    deployer = Deployer(MODEL, DEV, sick, identity=ALICE)
    with deployer.session("deploy", "1.1.0") as session:
        result = bluegreen.promote(QuickColours(session, poll_s=0.1), "1.1.0")
        session.record.result = str(result.outcome)
    assert result.outcome is bluegreen.Outcome.ROLLED_BACK and result.active is Colour.BLUE
    assert "0 of 0 target(s) healthy in green's target group" in result.reason
    rollout = deployer.deployed_rollout()
    assert rollout == Rollout.only(Colour.BLUE, "1.0.0")
    kept = deployer.records().history()[-1]
    assert kept.result == "rolled back" and kept.active == "blue"
    assert [s.name[0] for s in kept.steps] == ["②", "⑤"]
    ecs = sick.client("ecs")
    [green] = ecs.describe_services(cluster="come2us-dev-cluster",
                                    services=["gateway-green"])["services"]
    assert green["status"] == "INACTIVE"


def test_a_record_restores_the_template_it_deployed(first_deploy: Deployer) -> None:
    store = first_deploy.records()
    created = next(r for r in store.history() if r.result == "created")
    template, stored = restore_template(store, created)
    assert stored.version_id == created.steps[0].template_version
    with first_deploy.session("restore", created.version) as session:
        step = session.apply_template(template, f"restore {created.id}")
    assert step.status in ("NO_CHANGES", "UPDATE_COMPLETE")
    assert first_deploy.deployed_rollout() == Rollout.only(Colour.BLUE, "1.0.0")


def test_reset_empties_the_emulator_but_keeps_the_local_clouds_bucket_and_table(
        first_deploy: Deployer, endpoint: AwsEndpoint, target: EmulatorTarget) -> None:
    reset_emulator(endpoint, MODEL)
    assert target.client("cloudformation").describe_stacks()["Stacks"] == []
    buckets = [b["Name"] for b in target.client("s3").list_buckets()["Buckets"]]
    assert buckets == [MODEL.data.image_bucket.name]
    assert target.client("dynamodb").list_tables()["TableNames"] == [
        MODEL.data.lock_table.name]
