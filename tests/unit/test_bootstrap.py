"""The bootstrap stack holds what a deploy needs first: the lock table and the records bucket."""

from __future__ import annotations

import json
from pathlib import Path

from stack.aws import bootstrap
from stack.aws.rollout import Rollout
from stack.aws.synth import bootstrap_path, synthesize_bootstrap
from stack.aws.template import render, to_dict
from stack.aws.verify import CHECKERS
from stack.come2us import ENVIRONMENTS, come2us, environment
from stack.model.edge import Colour

MODEL = come2us()


def test_the_bootstrap_holds_the_lock_table_and_a_versioned_records_bucket_kept_on_delete(
) -> None:
    template = to_dict(bootstrap.render(MODEL, environment("prod")))
    resources = template["Resources"]
    table = resources["DeployLockTable"]
    assert table["Properties"]["TableName"] == "come2us-prod-deploy-lock"
    assert table["Properties"]["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    bucket = resources["DeployRecordsBucket"]
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    for kept in (table, bucket):
        assert kept["DeletionPolicy"] == kept["UpdateReplacePolicy"] == "Retain"
    exported = {o["Export"]["Name"] for o in template["Outputs"].values()}
    assert {f"come2us-prod-bootstrap-{name}" for name in (
        "DeployLockTable", "DeployLockTableArn", "DeployRecordsBucket",
        "DeployRecordsBucketArn", "GatewayRepositoryUri", "GatewayRepositoryArn")} <= exported
    repositories = {r["Properties"]["RepositoryName"] for r in resources.values()
                    if r["Type"] == "AWS::ECR::Repository"}
    assert repositories == {f"come2us-prod/{spec.name}" for spec in MODEL.compute.services}


def test_the_platform_stack_imports_them_and_no_longer_holds_them() -> None:
    for name in ENVIRONMENTS:
        template = to_dict(render(MODEL, environment(name), Rollout.only(Colour.BLUE)))
        types = {r["Type"] for r in template["Resources"].values()}
        assert not types & {"AWS::DynamoDB::Table", "AWS::ECR::Repository"}
        assert "DeployRecordsBucket" not in template["Resources"]
        policy = json.dumps(template["Resources"]["CiRole"]["Properties"]["Policies"])
        assert f"come2us-{name}-bootstrap-DeployLockTableArn" in policy
        assert f"come2us-{name}-bootstrap-DeployRecordsBucketArn" in policy


def test_the_bootstrap_template_is_cfn_lint_clean(tmp_path: Path) -> None:
    result = synthesize_bootstrap(MODEL, environment("dev"), tmp_path, run_checkov=False)
    assert result.path == bootstrap_path(tmp_path, environment("dev"))
    assert result.path.name == "dev-bootstrap.json"
    assert result.problems == []
    assert {row[2] for row in result.suppressions} == {"CKV_AWS_119", "CKV_AWS_18"}


def test_every_resource_type_of_every_template_has_a_describe_check() -> None:
    types = set()
    for name in ENVIRONMENTS:
        for rollout in (Rollout.only(Colour.BLUE), Rollout.both(Colour.GREEN)):
            template = to_dict(render(MODEL, environment(name), rollout))
            types |= {r["Type"] for r in template["Resources"].values()}
        types |= {r["Type"] for r in to_dict(bootstrap.render(
            MODEL, environment(name)))["Resources"].values()}
    assert types - set(CHECKERS) == set()
