"""The embedded AWS endpoint of the local cloud: moto's server on the regional loopback address.

Services and tools reach it through ``AWS_ENDPOINT_URL`` (`stack.local.aws_clients`). Unlike
PostgreSQL, Redis and Kafka, moto keeps its state in memory; the server process we run
(`stack.local.emulator_server`) saves it into this node's data directory when it stops, and every
few seconds while it changes, and restores it when it starts (`stack.local.emulator_state`), so
buckets, object versions and lock items survive ``come2us down`` / ``come2us up`` like the data
of the other stores. Once the server answers, the image bucket (versioned, with its lifecycle)
and the deploy lock table are made to match the model — a no-op when the restored state already
has them.

Example::

    emulator = AwsEmulator(model.aws, model.data.image_bucket, model.data.lock_table,
                           Workspace.default(), ProcessBackend())
    emulator.start()
    emulator.wait_ready()          # restores state, provisions, verifies
    s3 = aws_client("s3", model.aws)
    emulator.stop()                # saves state
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from stack.local.aws_clients import aws_client, region_of
from stack.local.aws_resources import (
    BucketState,
    TableState,
    ensure_bucket,
    ensure_lock_table,
    read_bucket,
    read_table,
)
from stack.local.component import Component, Health, ProcessSpec
from stack.local.datadir import DataDir
from stack.local.emulator_server import CHECKPOINT_INTERVAL_S, SAVE_PATH, STATUS_PATH
from stack.local.emulator_state import check_state_dir
from stack.model import AwsEndpoint, Bucket, LockTable, Platform

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

    from stack.local.backend import Backend
    from stack.local.workspace import Workspace

DATA_DIR_KIND = "aws-emulator"
PROBE_TIMEOUT_S = 1.0
CLIENT_TIMEOUT_S = 5.0


class AwsEmulator(Component):
    """moto's AWS API as a node of the local cloud, with the state it holds kept across restarts."""

    kind = DATA_DIR_KIND

    def __init__(self, endpoint: AwsEndpoint, bucket: Bucket, lock_table: LockTable,
                 workspace: Workspace, backend: Backend) -> None:
        super().__init__(endpoint.node, endpoint.timeouts, workspace, backend)
        self.endpoint = endpoint
        self.bucket = bucket
        self.lock_table = lock_table
        self.region = region_of(endpoint)
        self._s3: S3Client | None = None
        self._dynamodb: DynamoDBClient | None = None
        self._provisioned = False

    # -- Component -------------------------------------------------------------------------

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            argv=(
                sys.executable, "-m", "stack.local.emulator_server",
                "--host", str(self.node.host),
                "--port", str(self.node.port),
                "--state-dir", str(self.data_dir),
                "--checkpoint-interval", str(CHECKPOINT_INTERVAL_S),
                # Leave time to save inside the runner's stop timeout before it kills.
                "--drain-seconds", str(min(5.0, self.timeouts.stop_s / 3)),
            ),
            env={"PYTHONUNBUFFERED": "1"},
        )

    def prepare(self) -> None:
        """Claim the data directory; a saved state that fails its checks stops the start here.

        The server checks again before loading, but failing here names the directory in the
        supervisor's own error, before a process is even started.
        """
        DataDir(self.data_dir, self.name, DATA_DIR_KIND).claim(
            initialise=lambda _scratch: None, check=check_state_dir
        )

    def start(self) -> None:
        # Until after_ready has run again, the probe asks only whether the server answers: a
        # restart without saved state (say after a kill) has no bucket yet, and must not wait
        # for one that only after_ready would create.
        if not self.runner.running():
            self._provisioned = False
        super().start()

    def probe(self) -> Health:
        try:
            # trust_env=False: a $http_proxy must not carry a loopback request elsewhere.
            reply = httpx.get(self.endpoint.url + STATUS_PATH, timeout=PROBE_TIMEOUT_S,
                              trust_env=False)
        except httpx.HTTPError as err:
            return Health(False, f"no answer from {self.endpoint.url}: {err}")
        status = _status_of(reply)
        if status is not None:
            detail = f"moto {status.get('moto')}"
        else:
            # Another AWS endpoint on this address (moto_server or LocalStack in a container):
            # it answers, so it is up, but it keeps no state across restarts.
            detail = f"AWS endpoint answers (HTTP {reply.status_code}; state not kept)"
        if not self._provisioned:
            return Health(True, detail)
        try:
            bucket = self.read_bucket()
            table = self.read_table()
        except (BotoCoreError, ClientError) as err:
            return Health(False, f"{detail}; reading the bucket and table failed: {err}")
        problems = bucket.differences(self.bucket) + table.differences(self.lock_table)
        summary = f"{detail}; {bucket.summary()}; {table.summary()}"
        if problems:
            return Health(False, f"{summary}; " + "; ".join(problems))
        return Health(True, summary)

    def after_ready(self) -> None:
        """Make the bucket and lock table match the model (idempotent), verified by reading."""
        ensure_bucket(self.s3, self.bucket, self.region)
        ensure_lock_table(self.dynamodb, self.lock_table, timeout=self.timeouts.ready_s)
        self._provisioned = True

    # -- what else the emulator offers ----------------------------------------------------------

    @property
    def s3(self) -> S3Client:
        if self._s3 is None:
            self._s3 = aws_client("s3", self.endpoint, timeout=CLIENT_TIMEOUT_S)
        return self._s3

    @property
    def dynamodb(self) -> DynamoDBClient:
        if self._dynamodb is None:
            self._dynamodb = aws_client("dynamodb", self.endpoint, timeout=CLIENT_TIMEOUT_S)
        return self._dynamodb

    def read_bucket(self) -> BucketState:
        return read_bucket(self.s3, self.bucket.name)

    def read_table(self) -> TableState:
        return read_table(self.dynamodb, self.lock_table.name)

    def server_status(self) -> dict[str, Any] | None:
        """The server's own report (moto version, restore/save times, RSS), or None if silent."""
        try:
            reply = httpx.get(self.endpoint.url + STATUS_PATH, timeout=PROBE_TIMEOUT_S,
                              trust_env=False)
        except httpx.HTTPError:
            return None
        return _status_of(reply)

    def save_now(self) -> dict[str, Any]:
        """Ask the server to save its state at once (e.g. before a test kills it on purpose)."""
        reply = httpx.post(self.endpoint.url + SAVE_PATH, timeout=self.timeouts.stop_s,
                           trust_env=False)
        if reply.status_code != httpx.codes.OK:
            raise RuntimeError(f"{self.name} could not save its state: {reply.text}")
        answer: dict[str, Any] = reply.json()
        return answer


def _status_of(reply: httpx.Response) -> dict[str, Any] | None:
    """The come2us server's status report, or None when another server answered."""
    if reply.status_code != httpx.codes.OK:
        return None
    try:
        status = reply.json()
    except ValueError:
        return None
    return status if isinstance(status, dict) else None


def emulator_components(model: Platform, workspace: Workspace,
                        backend: Backend) -> list[Component]:
    """The AWS side of the local cloud: one regional endpoint."""
    return [
        AwsEmulator(model.aws, model.data.image_bucket, model.data.lock_table,
                    workspace, backend),
    ]
