"""SNS → Discord (seed §8, §10): alarm and budget messages become Discord webhook posts.

Runs as a Lambda whose code CloudFormation inlines from this file, so it must stay under 4096
characters and use only the standard library and boto3. The webhook URL is a secret
(WEBHOOK_SECRET_ID), read on first use; it is never in a template or the repository. A post
that fails raises: Lambda retries, then the message goes to the dead-letter queue.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from typing import Any

Payload = dict[str, Any]
Send = Callable[[str, Payload], int]
STATE_COLOURS = {"ALARM": 0xE74C3C, "OK": 0x2ECC71, "INSUFFICIENT_DATA": 0x95A5A6}
OTHER_COLOUR = 0xF39C12  # budgets and anything that is not an alarm
LIMIT = 2000  # Discord refuses longer embed descriptions than 4096; keep posts readable
_url: str | None = None


def message(subject: str | None, body: str, environment: str) -> Payload:
    """The Discord payload for one SNS message: a CloudWatch alarm's JSON, or plain text."""
    try:
        alarm = json.loads(body)
    except ValueError:
        alarm = None
    if isinstance(alarm, dict) and "AlarmName" in alarm:
        state = str(alarm.get("NewStateValue", "?"))
        embed: Payload = {
            "title": f"[{environment}] {state}: {alarm['AlarmName']}",
            "description": str(alarm.get("NewStateReason", ""))[:LIMIT],
            "color": STATE_COLOURS.get(state, OTHER_COLOUR),
            "fields": [
                {"name": "was", "value": str(alarm.get("OldStateValue", "?")), "inline": True},
                {"name": "at", "value": str(alarm.get("StateChangeTime", "?")), "inline": True},
            ],
        }
    else:
        embed = {"title": f"[{environment}] {subject or 'notification'}",
                 "description": body[:LIMIT], "color": OTHER_COLOUR}
    # No @everyone or role pings, whatever the alarm text contains.
    return {"username": "come2us", "embeds": [embed], "allowed_mentions": {"parse": []}}


def webhook_url() -> str:
    """The URL from Secrets Manager, fetched once per Lambda container."""
    global _url
    if _url is None:
        import boto3

        client: Any = boto3.client("secretsmanager")
        secret = client.get_secret_value(SecretId=os.environ["WEBHOOK_SECRET_ID"])
        _url = str(secret["SecretString"]).strip()
    return _url


def post(url: str, payload: Payload) -> int:
    if not url.startswith("https://"):
        raise ValueError("the webhook secret does not hold an https:// URL")
    request = urllib.request.Request(  # noqa: S310 (https only, checked above)
        url, data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "come2us-notifier"})
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return int(response.status)


def handle(event: Payload, context: object = None, send: Send = post,
           url: Callable[[], str] = webhook_url) -> dict[str, int]:
    """Lambda entry point: one Discord post per SNS record."""
    environment = os.environ.get("COME2US_ENVIRONMENT", "?")
    sent = 0
    for record in event.get("Records", []):
        sns = record.get("Sns", {})
        status = send(url(), message(sns.get("Subject"), sns.get("Message", ""), environment))
        if status >= 300:
            raise RuntimeError(f"Discord answered {status}")
        sent += 1
    return {"sent": sent}
