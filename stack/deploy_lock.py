"""The deploy lock: one DynamoDB item that at most one deployer holds at a time (seed §6).

Taking it is a conditional put that succeeds only when no item exists, so two deployers racing
for it cannot both win; the loser is told who holds it and since when. A lock left by a
deployer that died is broken only on an explicit request, never by a timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LOCK_ID = "come2us/deploy"


@dataclass(frozen=True)
class LockInfo:
    holder: str
    since: float
    reason: str

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        reason = f" ({self.reason})" if self.reason else ""
        return f"{self.holder} since {when}{reason}"


class LockHeld(RuntimeError):
    def __init__(self, info: LockInfo) -> None:
        super().__init__(
            f"the deploy lock is held by {info.describe()}; wait for that deploy to finish, "
            f"or break a stale lock explicitly with `come2us deploy --break-lock`"
        )
        self.info = info


class DeployLock:
    def __init__(self, client: DynamoDBClient, table: str, partition_key: str,
                 lock_id: str = LOCK_ID) -> None:
        self.client = client
        self.table = table
        self.key = partition_key
        self.lock_id = lock_id

    def acquire(self, holder: str, reason: str = "") -> LockInfo:
        info = LockInfo(holder, time.time(), reason)
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    self.key: {"S": self.lock_id},
                    "Holder": {"S": holder},
                    "Since": {"N": repr(info.since)},
                    "Reason": {"S": reason},
                },
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames={"#key": self.key},
            )
        except ClientError as err:
            if _code(err) != "ConditionalCheckFailedException":
                raise
            current = self.holder()
            raise LockHeld(current or LockInfo("an unknown holder", info.since, "")) from err
        return info

    def release(self, holder: str) -> None:
        """Release the lock if ``holder`` holds it; releasing someone else's lock is refused."""
        try:
            self.client.delete_item(
                TableName=self.table,
                Key={self.key: {"S": self.lock_id}},
                ConditionExpression="Holder = :holder",
                ExpressionAttributeValues={":holder": {"S": holder}},
            )
        except ClientError as err:
            if _code(err) != "ConditionalCheckFailedException":
                raise
            current = self.holder()
            if current is not None:
                raise LockHeld(current) from err

    def holder(self) -> LockInfo | None:
        item = self.client.get_item(
            TableName=self.table, Key={self.key: {"S": self.lock_id}}, ConsistentRead=True
        ).get("Item")
        return _info(item) if item else None

    def break_lock(self) -> LockInfo | None:
        """Remove the lock whoever holds it; returns who held it. For stale locks only."""
        info = self.holder()
        self.client.delete_item(TableName=self.table, Key={self.key: {"S": self.lock_id}})
        return info


def _info(item: dict[str, Any]) -> LockInfo:
    return LockInfo(
        holder=item["Holder"]["S"],
        since=float(item["Since"]["N"]),
        reason=item.get("Reason", {}).get("S", ""),
    )


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
