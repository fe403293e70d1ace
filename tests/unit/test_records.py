"""Deploy records and templates in the versioned bucket: the basis of a restore (§11)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stack.aws.records import Change, DeployRecord, RecordStore, Step, StoredTemplate

REGION = "ap-northeast-2"
BUCKET = "come2us-dev-deploy-records-123456789012"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordStore]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        s3: Any = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield RecordStore(s3, BUCKET, "dev")


def record(started: float, version: str) -> DeployRecord:
    step = Step(name="② deploy green beside blue", stack="come2us-dev",
                colours=["blue", "green"], active="blue", template_key="templates/x.json",
                template_version="v1", change_set="come2us-1",
                changes=[Change("Add", "GatewayGreenService", "AWS::ECS::Service"),
                         Change("Modify", "HttpsListener",
                                "AWS::ElasticLoadBalancingV2::Listener", "False")])
    return DeployRecord(id=DeployRecord.new_id(started, version), environment="dev",
                        target="emulator", version=version, who="alice@ci pid 1",
                        started=started, kind="deploy", steps=[step])


def test_every_upload_of_a_template_is_kept_as_a_version(store: RecordStore) -> None:
    first = store.put_template("come2us-dev", '{"v": 1}')
    second = store.put_template("come2us-dev", '{"v": 2}')
    assert first.key == second.key == "templates/come2us-dev.json"
    assert first.version_id and second.version_id and first.version_id != second.version_id
    assert store.template(first.key, first.version_id) == '{"v": 1}'
    assert store.template(second.key, None) == '{"v": 2}'
    assert store.put_template("come2us-dev", "{}", "emulator").key == \
        "templates/come2us-dev.emulator.json"


def test_the_template_url_names_the_exact_version() -> None:
    stored = StoredTemplate("b", "templates/s.json", "abc")
    assert stored.url("ap-northeast-2") == \
        "https://b.s3.ap-northeast-2.amazonaws.com/templates/s.json?versionId=abc"
    assert "?" not in StoredTemplate("b", "k", None).url("ap-northeast-2")


def test_records_round_trip_and_list_oldest_first(store: RecordStore) -> None:
    later, earlier = record(1_800_000_100.0, "1.1/rc"), record(1_800_000_000.0, "1.0")
    store.save(later)
    store.save(earlier)
    history = store.history()
    assert [r.version for r in history] == ["1.0", "1.1/rc"]
    assert history[1] == later
    assert history[1].steps[0].summary() == {"Add": 1, "Modify": 1}
    assert "/" not in later.id and later.id.startswith("20270115T")
    assert [r.version for r in store.history(limit=1)] == ["1.1/rc"]
    assert store.get(earlier.id).last_template() == earlier.steps[0]


def test_a_record_without_a_stack_update_has_nothing_to_restore() -> None:
    empty = DeployRecord(id="x", environment="dev", target="aws", version="", who="w",
                         started=0.0, kind="switch")
    assert empty.last_template() is None
