"""The AWS emulator run for real: its own server process, restarted over the same data dir.

Each test brings up the emulator in a temporary workspace and stops it again whatever happens.
The endpoint is the model's (same node, regional address) on a port the kernel says is free, so
the tests do not collide with a local cloud the developer already runs on the model's port.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stack.come2us import come2us
from stack.local.aws_clients import aws_client
from stack.local.backend import ProcessBackend
from stack.local.component import ComponentError
from stack.local.datadir import DataDirError
from stack.local.emulator import AwsEmulator
from stack.local.emulator_state import MAGIC, PAYLOAD_OFFSET, STATE_FILE
from stack.local.workspace import Workspace
from stack.model import AwsEndpoint
from stack.waiting import wait_for

pytestmark = pytest.mark.cloud

MODEL = come2us()
BUCKET = MODEL.data.image_bucket
TABLE = MODEL.data.lock_table


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def endpoint() -> AwsEndpoint:
    node = MODEL.aws.node
    return dataclasses.replace(
        MODEL.aws, node=dataclasses.replace(node, port=free_port(str(node.host)))
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path / "home")
    workspace.ensure()
    return workspace


def new_emulator(endpoint: AwsEndpoint, workspace: Workspace) -> AwsEmulator:
    return AwsEmulator(endpoint, BUCKET, TABLE, workspace, ProcessBackend())


@contextmanager
def running(endpoint: AwsEndpoint, workspace: Workspace) -> Iterator[AwsEmulator]:
    """Start an emulator, wait until ready (state restored, bucket and table provisioned)."""
    emulator = new_emulator(endpoint, workspace)
    try:
        emulator.start()
        emulator.wait_ready()
        yield emulator
    finally:
        emulator.stop()


def take_lock(endpoint: AwsEndpoint, holder: str) -> bool:
    """The IaC state lock: a put that succeeds only when nobody holds the lock."""
    dynamodb = aws_client("dynamodb", endpoint)
    try:
        dynamodb.put_item(
            TableName=TABLE.name,
            Item={TABLE.partition_key: {"S": "come2us/prod"}, "Holder": {"S": holder}},
            ConditionExpression="attribute_not_exists(#key)",
            ExpressionAttributeNames={"#key": TABLE.partition_key},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def lock_holder(endpoint: AwsEndpoint) -> str | None:
    item = aws_client("dynamodb", endpoint).get_item(
        TableName=TABLE.name, Key={TABLE.partition_key: {"S": "come2us/prod"}}
    ).get("Item")
    return item["Holder"]["S"] if item else None


def versions_of(endpoint: AwsEndpoint, key: str) -> dict[str, bytes]:
    s3 = aws_client("s3", endpoint)
    listed = s3.list_object_versions(Bucket=BUCKET.name, Prefix=key).get("Versions", [])
    return {
        v["VersionId"]: s3.get_object(Bucket=BUCKET.name, Key=key, VersionId=v["VersionId"])[
            "Body"
        ].read()
        for v in listed
        if v["Key"] == key
    }


def test_bucket_and_lock_table_survive_a_restart(
    endpoint: AwsEndpoint, workspace: Workspace
) -> None:
    with running(endpoint, workspace) as emulator:
        bucket = emulator.read_bucket()
        assert bucket.versioning == "Enabled"
        assert bucket.differences(BUCKET) == []
        (rule,) = bucket.lifecycle
        assert (rule.noncurrent_expiry_days, rule.abort_multipart_days) == (30, 7)
        s3 = aws_client("s3", endpoint)
        ids = [
            s3.put_object(Bucket=BUCKET.name, Key="products/1.jpg", Body=body)["VersionId"]
            for body in (b"front", b"back")
        ]
        assert len(set(ids)) == 2
        assert take_lock(endpoint, "jenkins-42")
        assert not take_lock(endpoint, "laptop")  # a second holder is refused
        health = emulator.health()
        assert health.ok, health.detail
        assert f"bucket {BUCKET.name} versioned" in health.detail

    assert (workspace.data_dir(endpoint.node) / STATE_FILE).exists()

    with running(endpoint, workspace) as emulator:
        status = emulator.server_status()
        assert status is not None and status["restored"] is not None
        assert versions_of(endpoint, "products/1.jpg") == {ids[0]: b"front", ids[1]: b"back"}
        assert lock_holder(endpoint) == "jenkins-42"
        assert not take_lock(endpoint, "laptop")  # still held after the restart
        assert emulator.read_bucket().differences(BUCKET) == []


def test_writes_acknowledged_during_saves_are_all_kept(
    endpoint: AwsEndpoint, workspace: Workspace
) -> None:
    """Saves pause requests between two of them; none is half-saved or lost."""
    writers, per_writer = 4, 20
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        s3 = aws_client("s3", endpoint)
        try:
            for n in range(per_writer):
                s3.put_object(Bucket=BUCKET.name, Key=f"load/{writer}/{n}", Body=b"x" * 1000)
        except BaseException as err:
            errors.append(err)

    with running(endpoint, workspace) as emulator:
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for thread in threads:
            thread.start()
        saves = 0
        while any(thread.is_alive() for thread in threads):
            emulator.save_now()
            saves += 1
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert saves >= 1

    with running(endpoint, workspace):
        s3 = aws_client("s3", endpoint)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET.name, Prefix="load/")
        keys = {obj["Key"] for page in pages for obj in page.get("Contents", [])}
        assert len(keys) == writers * per_writer


def test_a_crash_keeps_what_was_saved_before_it(
    endpoint: AwsEndpoint, workspace: Workspace
) -> None:
    emulator = new_emulator(endpoint, workspace)
    try:
        emulator.start()
        emulator.wait_ready()
        aws_client("s3", endpoint).put_object(Bucket=BUCKET.name, Key="kept", Body=b"1")
        status = emulator.server_status()
        assert status is not None and status["unsaved_changes"] is True
        emulator.save_now()
        emulator.kill()  # SIGKILL: no save at stop
    finally:
        emulator.stop()

    with running(endpoint, workspace):
        assert versions_of(endpoint, "kept")


def test_checkpoints_bound_what_a_crash_loses(
    endpoint: AwsEndpoint, workspace: Workspace
) -> None:
    """The server saves by itself while the state changes; a kill loses only the last moments.

    Run directly (not through AwsEmulator) to use a checkpoint interval short enough to test.
    """
    emulator = new_emulator(endpoint, workspace)
    emulator.prepare()  # claims the data dir, as a start through the component would
    state_dir = workspace.data_dir(endpoint.node)
    argv = [sys.executable, "-m", "stack.local.emulator_server",
            "--host", str(endpoint.node.host), "--port", str(endpoint.node.port),
            "--state-dir", str(state_dir), "--checkpoint-interval", "0.3"]
    with workspace.log_file(endpoint.node).open("a") as log:
        server = subprocess.Popen(argv, stdout=log, stderr=log)
        try:
            wait_for(lambda: (emulator.server_status(), "no answer"), timeout=30,
                     what="emulator answers")
            aws_client("dynamodb", endpoint).create_table(
                TableName="checkpointed",
                KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )

            def checkpointed() -> tuple[dict[str, Any] | None, str]:
                status = emulator.server_status() or {}
                saved = status.get("last_save") or {}
                done = saved.get("reason") == "checkpoint" and not status["unsaved_changes"]
                return (saved if done else None), str(status.get("last_save"))

            wait_for(checkpointed, timeout=10, what="a checkpoint")
        finally:
            server.kill()  # a crash: no save at stop
            server.wait()

    with running(endpoint, workspace):
        assert "checkpointed" in aws_client("dynamodb", endpoint).list_tables()["TableNames"]


def corrupt_payload(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    data[PAYLOAD_OFFSET + len(data[PAYLOAD_OFFSET:]) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_corrupt_state_file_is_refused_with_a_clear_error_and_never_overwritten(
    endpoint: AwsEndpoint, workspace: Workspace
) -> None:
    with running(endpoint, workspace):
        aws_client("s3", endpoint).put_object(Bucket=BUCKET.name, Key="precious", Body=b"1")
    state = workspace.data_dir(endpoint.node) / STATE_FILE
    damaged = corrupt_payload(state)

    emulator = new_emulator(endpoint, workspace)
    try:
        with pytest.raises(DataDirError) as refused:
            emulator.start()
        message = str(refused.value)
        assert "SHA-256 checksum" in message and "move that file away" in message
        assert not emulator.runner.running()
    finally:
        emulator.stop()
    assert state.read_bytes() == damaged


def test_a_state_that_does_not_restore_stops_the_server_with_its_reason(
    endpoint: AwsEndpoint, workspace: Workspace
) -> None:
    """Past the checksum (the directory check passes), the server itself refuses and exits."""
    with running(endpoint, workspace):
        pass
    state = workspace.data_dir(endpoint.node) / STATE_FILE
    header = state.read_bytes()[len(MAGIC):PAYLOAD_OFFSET]
    garbage = b"\x80\x05not a pickle at all"
    fields: dict[str, Any] = json.loads(header)
    fields |= {"payload_bytes": len(garbage),
               "payload_sha256": hashlib.sha256(garbage).hexdigest()}
    new_header = json.dumps(fields).encode().ljust(len(header) - 1) + b"\n"
    state.write_bytes(MAGIC + new_header + garbage)
    written = state.read_bytes()

    emulator = new_emulator(endpoint, workspace)
    started = time.monotonic()
    try:
        emulator.start()
        with pytest.raises(ComponentError) as refused:
            emulator.wait_ready()
        assert "exited with code 3" in str(refused.value)
        assert "could not be restored" in str(refused.value)
        assert time.monotonic() - started < endpoint.timeouts.ready_s
    finally:
        emulator.stop()
    assert state.read_bytes() == written
