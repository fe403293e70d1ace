"""The AWS emulator without a server process: provisioning, state files, the request gate.

moto's in-process ``mock_aws`` stands in for the server here (the integration test runs the real
process). The state round trip happens inside one mock: populate, save, wipe every backend the
way ``POST /moto-api/reset`` does, restore, and look again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.base_backend import BackendDict
from werkzeug.test import Client

from stack.come2us import come2us_on_block
from stack.local import emulator_state
from stack.local.aws_clients import aws_client, aws_environment, client_config, region_of
from stack.local.aws_resources import (
    ProvisioningError,
    ensure_bucket,
    ensure_lock_table,
    lifecycle_configuration,
    read_bucket,
    read_table,
)
from stack.local.backend import ProcessBackend
from stack.local.datadir import MARKER, DataDirError
from stack.local.emulator import DATA_DIR_KIND, AwsEmulator, emulator_components
from stack.local.emulator_server import (
    EXIT_USAGE,
    SAVE_PATH,
    STATUS_PATH,
    EmulatorApp,
    RequestGate,
    StateKeeper,
    _may_change_state,
    main,
)
from stack.local.emulator_state import (
    MAGIC,
    PAYLOAD_OFFSET,
    STATE_FILE,
    StateFileError,
    check_state_dir,
    load_state,
    read_header,
    save_state,
)
from stack.local.workspace import Workspace
from stack.model import Bucket, LifecycleRule

MODEL = come2us_on_block(0)  # the documented addresses, as the autouse fixture pins
REGION = MODEL.region.name
BUCKET = MODEL.data.image_bucket
TABLE = MODEL.data.lock_table


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


def s3_client() -> Any:
    return boto3.client("s3", region_name=REGION)


def dynamodb_client() -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def wipe_all_backends() -> None:
    """What a new process starts with: every service empty."""
    BackendDict.reset()


# -- clients -------------------------------------------------------------------------------------


def test_clients_use_the_model_endpoint_and_region_and_ignore_the_users_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "a-profile-that-does-not-exist")
    s3 = aws_client("s3", MODEL.aws)
    assert s3.meta.endpoint_url == "http://127.0.3.10:4566"
    assert s3.meta.region_name == REGION == "ap-northeast-2"
    config = client_config(MODEL.aws)
    assert config.proxies == {}  # type: ignore[attr-defined]
    assert config.s3 == {"addressing_style": "path"}  # type: ignore[attr-defined]
    assert aws_environment(MODEL.aws)["AWS_ENDPOINT_URL"] == MODEL.aws.url


def test_an_endpoint_placed_in_an_availability_zone_is_refused() -> None:
    az_a = MODEL.region.zones[0]
    misplaced = dataclasses.replace(
        MODEL.aws, node=dataclasses.replace(MODEL.aws.node, zone=az_a, host=az_a.address(10))
    )
    with pytest.raises(ValueError, match="regional"):
        region_of(misplaced)


# -- provisioning --------------------------------------------------------------------------------


def test_bucket_is_created_versioned_with_the_models_lifecycle(aws: None) -> None:
    s3 = s3_client()
    state = ensure_bucket(s3, BUCKET, REGION)
    assert state.versioning == "Enabled"
    assert state.differences(BUCKET) == []
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET.name)["Rules"]
    (rule,) = rules
    model_rule = BUCKET.lifecycle[0]
    assert rule["ID"] == model_rule.name
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    assert s3.get_bucket_location(Bucket=BUCKET.name)["LocationConstraint"] == REGION


def test_provisioning_the_bucket_again_keeps_its_objects(aws: None) -> None:
    s3 = s3_client()
    ensure_bucket(s3, BUCKET, REGION)
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket=BUCKET.name, Key="a.jpg", Body=body)
    ensure_bucket(s3, BUCKET, REGION)
    versions = s3.list_object_versions(Bucket=BUCKET.name)["Versions"]
    assert len(versions) == 2


def test_bucket_differences_name_what_is_off(aws: None) -> None:
    s3 = s3_client()
    s3.create_bucket(Bucket=BUCKET.name,
                     CreateBucketConfiguration={"LocationConstraint": REGION})
    problems = read_bucket(s3, BUCKET.name).differences(BUCKET)
    assert any("versioning is not set" in p for p in problems)
    assert any("expire-old-image-versions" in p for p in problems)
    assert read_bucket(s3, "no-such-bucket").differences(BUCKET) == [
        "bucket no-such-bucket does not exist"
    ]


def test_a_foreign_lifecycle_rule_is_replaced_by_the_models(aws: None) -> None:
    s3 = s3_client()
    ensure_bucket(s3, BUCKET, REGION)
    other = Bucket(BUCKET.name, True, (LifecycleRule("someone-elses", 1, 1),))
    s3.put_bucket_lifecycle_configuration(
        Bucket=BUCKET.name,
        LifecycleConfiguration={"Rules": lifecycle_configuration(other.lifecycle)},
    )
    assert read_bucket(s3, BUCKET.name).differences(BUCKET)
    assert ensure_bucket(s3, BUCKET, REGION).differences(BUCKET) == []


def test_lock_table_has_a_string_partition_key_and_on_demand_billing(aws: None) -> None:
    dynamodb = dynamodb_client()
    state = ensure_lock_table(dynamodb, TABLE)
    assert (state.partition_key, state.partition_key_type) == (TABLE.partition_key, "S")
    assert state.billing_mode == "PAY_PER_REQUEST"
    assert state.status == "ACTIVE"
    assert ensure_lock_table(dynamodb, TABLE) == state  # idempotent


def test_a_lock_table_with_another_key_is_reported_not_dropped(aws: None) -> None:
    dynamodb = dynamodb_client()
    dynamodb.create_table(
        TableName=TABLE.name,
        KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=TABLE.name, Item={"Id": {"S": "held"}})
    with pytest.raises(ProvisioningError, match="partition key is Id"):
        ensure_lock_table(dynamodb, TABLE)
    assert dynamodb.get_item(TableName=TABLE.name, Key={"Id": {"S": "held"}})["Item"]
    assert read_table(dynamodb, "missing").exists is False


# -- the state file ------------------------------------------------------------------------------


def populate() -> list[str]:
    """A versioned bucket with two versions of one key, and a held lock; returns version ids."""
    s3, dynamodb = s3_client(), dynamodb_client()
    ensure_bucket(s3, BUCKET, REGION)
    ensure_lock_table(dynamodb, TABLE)
    ids = [
        s3.put_object(Bucket=BUCKET.name, Key="shoe.jpg", Body=body)["VersionId"]
        for body in (b"first", b"second")
    ]
    dynamodb.put_item(TableName=TABLE.name,
                      Item={TABLE.partition_key: {"S": "deploy"}, "Who": {"S": "ci"}})
    return ids


def test_state_round_trip_keeps_versions_the_lock_and_the_bucket_namespace(
    aws: None, tmp_path: Path
) -> None:
    ids = populate()
    report = save_state(tmp_path)
    assert {"s3", "dynamodb"} <= set(report.services)
    wipe_all_backends()
    assert s3_client().list_buckets()["Buckets"] == []

    restored = load_state(tmp_path)

    assert restored is not None and restored.services == report.services
    s3 = s3_client()
    versions = s3.list_object_versions(Bucket=BUCKET.name)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == sorted(ids)
    body = s3.get_object(Bucket=BUCKET.name, Key="shoe.jpg", VersionId=ids[0])["Body"].read()
    assert body == b"first"
    # The bucket namespace came back too: creating the bucket again is refused, not a reset.
    with pytest.raises(ClientError, match="BucketAlreadyOwnedByYou"):
        s3.create_bucket(Bucket=BUCKET.name,
                         CreateBucketConfiguration={"LocationConstraint": REGION})
    assert read_bucket(s3, BUCKET.name).differences(BUCKET) == []
    item = dynamodb_client().get_item(TableName=TABLE.name,
                                      Key={TABLE.partition_key: {"S": "deploy"}})["Item"]
    assert item["Who"] == {"S": "ci"}


def test_a_save_is_atomic_and_leaves_no_scratch_file(aws: None, tmp_path: Path) -> None:
    populate()
    save_state(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]
    assert (tmp_path / STATE_FILE).read_bytes().startswith(MAGIC)


def test_a_failed_save_keeps_the_previous_file(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate()
    save_state(tmp_path)
    before = (tmp_path / STATE_FILE).read_bytes()

    def broken(*_args: Any) -> Any:
        raise RuntimeError("dictionary changed size during iteration")

    monkeypatch.setattr(emulator_state, "_contents", broken)
    with pytest.raises(RuntimeError):
        save_state(tmp_path)
    assert (tmp_path / STATE_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]


def test_anonymous_defaultdict_factories_and_locks_survive_a_save(tmp_path: Path) -> None:
    holder: dict[str, Any] = {
        "aliases": defaultdict(lambda: {}),
        "parameters": defaultdict(lambda: defaultdict(dict)),
        "lock": threading.RLock(),
        "condition": threading.Condition(),
    }
    holder["aliases"]["fn"]["live"] = 1
    with (tmp_path / "x").open("wb") as out:
        emulator_state._StatePickler(out).dump(holder)
    copy = pickle.loads((tmp_path / "x").read_bytes())  # noqa: S301
    assert copy["aliases"]["fn"] == {"live": 1}
    assert copy["aliases"]["new"] == {}
    assert copy["parameters"]["a"]["b"] == {}
    with copy["lock"], copy["condition"]:
        pass


@pytest.fixture
def saved(aws: None, tmp_path: Path) -> Path:
    populate()
    save_state(tmp_path)
    return tmp_path / STATE_FILE


def rewrite_header(path: Path, **changes: Any) -> None:
    data = bytearray(path.read_bytes())
    start = len(MAGIC)
    header = json.loads(data[start:PAYLOAD_OFFSET])
    encoded = json.dumps(header | changes).encode().ljust(PAYLOAD_OFFSET - start - 1) + b"\n"
    data[start:PAYLOAD_OFFSET] = encoded
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "finding"),
    [
        ("flip", "fails its SHA-256 checksum"),
        ("truncate", "truncated or appended to"),
        ("magic", "does not start with the come2us state marker"),
        ("version", "was written by moto 0.0.1"),
        ("header", "has an unreadable header"),
    ],
)
def test_a_damaged_state_file_is_refused_and_left_untouched(
    saved: Path, damage: str, finding: str
) -> None:
    data = bytearray(saved.read_bytes())
    if damage == "flip":
        data[PAYLOAD_OFFSET + 100] ^= 0xFF
        saved.write_bytes(bytes(data))
    elif damage == "truncate":
        saved.write_bytes(bytes(data[:-10]))
    elif damage == "magic":
        saved.write_bytes(b"PK\x03\x04" + bytes(data[4:]))
    elif damage == "version":
        rewrite_header(saved, moto="0.0.1")
    else:
        data[len(MAGIC)] = ord("#")
        saved.write_bytes(bytes(data))
    damaged = saved.read_bytes()

    with pytest.raises(StateFileError, match=finding) as refused:
        load_state(saved.parent)

    assert "left untouched" in str(refused.value)
    assert "Move it away" in str(refused.value)
    assert saved.read_bytes() == damaged
    problem = check_state_dir(saved.parent)
    assert problem is not None and finding in problem


def test_a_file_that_passes_its_checksum_but_does_not_unpickle_is_refused(saved: Path) -> None:
    garbage = b"\x80\x05this is not a pickle"
    header = read_header(saved)
    prefix = saved.read_bytes()[:PAYLOAD_OFFSET]
    saved.write_bytes(prefix + garbage)
    rewrite_header(saved, payload_bytes=len(garbage),
                   payload_sha256=hashlib.sha256(garbage).hexdigest())
    assert header.moto_version == read_header(saved).moto_version
    with pytest.raises(StateFileError, match="passed its checksum but could not be restored"):
        load_state(saved.parent)


def test_no_state_file_means_an_empty_start(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None
    assert check_state_dir(tmp_path) is None


# -- the component -------------------------------------------------------------------------------


def emulator(tmp_path: Path) -> AwsEmulator:
    workspace = Workspace(tmp_path / "home")
    workspace.ensure()
    (component,) = emulator_components(MODEL, workspace, ProcessBackend())
    assert isinstance(component, AwsEmulator)
    return component


def test_the_process_binds_the_models_loopback_address_and_keeps_state_in_its_data_dir(
    tmp_path: Path,
) -> None:
    component = emulator(tmp_path)
    argv = component.process().argv
    assert argv[argv.index("--host") + 1] == "127.0.3.10"
    assert argv[argv.index("--port") + 1] == "4566"
    assert argv[argv.index("--state-dir") + 1] == str(component.data_dir)
    assert component.name == MODEL.aws.node.name


def test_prepare_claims_the_data_dir_and_refuses_a_damaged_state(tmp_path: Path) -> None:
    component = emulator(tmp_path)
    component.prepare()
    marker = json.loads((component.data_dir / MARKER).read_text())
    assert marker == {"node": component.name, "kind": DATA_DIR_KIND}
    component.prepare()  # a second claim verifies and passes

    (component.data_dir / STATE_FILE).write_bytes(MAGIC + b"{}")
    with pytest.raises(DataDirError, match="unreadable header"):
        component.prepare()


def test_the_probe_says_so_when_nothing_answers(tmp_path: Path) -> None:
    with socket.socket() as holder:  # a port that is bound but not listening: nothing answers
        holder.bind((str(MODEL.aws.node.host), 0))
        silent = dataclasses.replace(
            MODEL.aws, node=dataclasses.replace(MODEL.aws.node, port=holder.getsockname()[1])
        )
        workspace = Workspace(tmp_path / "home")
        component = AwsEmulator(silent, BUCKET, TABLE, workspace, ProcessBackend())
        health = component.probe()
    assert not health.ok
    assert health.detail.startswith(f"no answer from {silent.url}")
    assert component.server_status() is None


# -- the server, in process ----------------------------------------------------------------------


def test_the_server_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    code = main(["--host", "0.0.0.0", "--port", "1", "--state-dir", str(tmp_path)])  # noqa: S104
    assert code == EXIT_USAGE


def test_a_save_waits_for_requests_in_flight_and_holds_new_ones() -> None:
    gate = RequestGate()
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def request(name: str, hold: bool) -> None:
        with gate.request():
            order.append(f"{name} in")
            if hold:
                inside.set()
                release.wait(5)
            order.append(f"{name} out")

    first = threading.Thread(target=request, args=("first", True))
    first.start()
    assert inside.wait(5)

    def save() -> None:
        with gate.alone(drain_s=5) as still_running:
            order.append(f"save ({still_running} running)")

    saver = threading.Thread(target=save)
    saver.start()
    late = threading.Thread(target=request, args=("late", False))
    late.start()
    release.set()
    for thread in (first, saver, late):
        thread.join(5)
    assert order == ["first in", "first out", "save (0 running)", "late in", "late out"]


def fake_moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"moto ", b"says hi"]


def test_status_and_save_paths_answer_beside_moto(aws: None, tmp_path: Path) -> None:
    keeper = StateKeeper(tmp_path, RequestGate())
    client = Client(EmulatorApp(fake_moto, keeper, started=0.0))

    assert client.get("/").data == b"moto says hi"
    assert not keeper.changed.is_set()  # a GET changes nothing
    client.put("/bucket/key", data=b"x")
    status = client.get(STATUS_PATH).json
    assert status is not None and status["unsaved_changes"] is True
    assert status["moto"] == moto.__version__

    populate()
    saved = client.post(SAVE_PATH).json
    assert saved is not None and "s3" in saved["saved"]["services"]
    assert not keeper.changed.is_set()
    assert (tmp_path / STATE_FILE).exists()


@pytest.mark.parametrize(
    ("method", "target", "changes"),
    [
        ("GET", "", False),
        ("HEAD", "", False),
        ("PUT", "", True),
        ("POST", "DynamoDB_20120810.DescribeTable", False),
        ("POST", "DynamoDB_20120810.GetItem", False),
        ("POST", "DynamoDB_20120810.PutItem", True),
        ("POST", "", True),  # query protocol: the action is in the body, counted as a change
    ],
)
def test_reads_do_not_make_a_checkpoint_due(method: str, target: str, changes: bool) -> None:
    environ = {"REQUEST_METHOD": method, "HTTP_X_AMZ_TARGET": target}
    assert _may_change_state(environ) is changes
