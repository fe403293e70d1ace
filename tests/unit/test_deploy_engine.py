"""The deploy engine's AWS side, in-process (mock_aws): prerequisites, identity, rollouts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stack.aws.deploy import (
    AwsTarget,
    Identity,
    PrerequisiteMissing,
    hosted_zone_id,
    missing_prerequisites,
    rollout_of,
)
from stack.aws.edge import HOSTED_ZONE
from stack.aws.rollout import Rollout
from stack.aws.template import render, to_dict
from stack.come2us import come2us, environment
from stack.model.edge import Colour

MODEL = come2us()
DEV = environment("dev")
REGION = MODEL.region.name


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsTarget]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield AwsTarget(region=REGION)


def create_prerequisites(target: AwsTarget) -> str:
    zone = target.client("route53").create_hosted_zone(
        Name="come2us.example.com", CallerReference="once")["HostedZone"]["Id"]
    target.client("secretsmanager").create_secret(Name="come2us/dev/discord-webhook",
                                                   SecretString="https://discord.invalid/x")
    target.client("ssm").put_parameter(Name="/come2us/jenkins/ami-id", Value="ami-12345678",
                                       Type="String")
    target.client("iam").create_role(
        RoleName="come2us-cloudformation-deploy", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"},
                "Action": "sts:AssumeRole"}]}))
    return str(zone).rsplit("/", 1)[-1]


def test_a_first_deploy_is_refused_with_every_missing_prerequisite_named(
        aws: AwsTarget) -> None:
    missing = missing_prerequisites(aws.client, MODEL, DEV)
    assert len(missing) == 4
    joined = "\n".join(missing)
    for expected in ("come2us.example.com.", "come2us/dev/discord-webhook",
                     "/come2us/jenkins/ami-id", "come2us-cloudformation-deploy"):
        assert expected in joined
    with pytest.raises(PrerequisiteMissing, match="README"):
        aws.parameters(MODEL, DEV)


def test_with_the_prerequisites_the_parameters_name_the_hosted_zone(aws: AwsTarget) -> None:
    zone = create_prerequisites(aws)
    assert missing_prerequisites(aws.client, MODEL, DEV) == []
    assert aws.parameters(MODEL, DEV) == {HOSTED_ZONE: zone}
    assert hosted_zone_id(aws.client("route53"), MODEL) == zone
    assert aws.role_arn(MODEL) == \
        f"arn:aws:iam::{aws.account_id()}:role/come2us-cloudformation-deploy"


def test_real_aws_gets_the_template_unchanged_and_no_gap_filling(aws: AwsTarget) -> None:
    template: dict[str, Any] = to_dict(render(MODEL, DEV, Rollout.only(Colour.BLUE)))
    assert aws.for_cloudformation("come2us-dev", template) is template
    assert aws.client("s3") is aws.client("s3")  # one client per service


def test_the_identity_names_user_host_and_process() -> None:
    me = Identity.current()
    assert str(Identity("alice", "ci-7", 42)) == "alice@ci-7 pid 42"
    assert me.pid > 0 and me.user and me.host


@pytest.mark.parametrize("rollout", [
    Rollout.only(Colour.BLUE, "1.0"),
    Rollout.both(Colour.BLUE, {Colour.BLUE: "1.0", Colour.GREEN: "1.1"}),
    Rollout.both(Colour.GREEN, {Colour.BLUE: "1.0", Colour.GREEN: "1.1"}),
    Rollout.only(Colour.GREEN, "1.1"),
])
def test_a_deployed_template_says_its_rollout_step(rollout: Rollout) -> None:
    assert rollout_of(to_dict(render(MODEL, DEV, rollout))) == rollout
    assert rollout_of({"Resources": {}}) is None


def test_the_aws_target_uses_the_callers_session(aws: AwsTarget) -> None:
    session = boto3.session.Session(region_name=REGION)
    target = AwsTarget(region=REGION, session=session)
    assert target.client("sts").meta.region_name == REGION
    assert target.account_id() == "123456789012"
