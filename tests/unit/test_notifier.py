"""The notifier Lambda: SNS alarm and budget messages become Discord posts, and nothing leaks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.notifier import handler
from stack.come2us import come2us

WEBHOOK = "https://discord.example/api/webhooks/1/abc"


def alarm(state: str = "ALARM") -> str:
    return json.dumps({"AlarmName": "come2us-dev-gateway-blue-cpu-high", "NewStateValue": state,
                       "OldStateValue": "OK", "NewStateReason": "Threshold Crossed: 1 datapoint",
                       "StateChangeTime": "2026-11-25T09:00:00.000+0000"})


def event(*messages: tuple[str | None, str]) -> dict[str, Any]:
    return {"Records": [{"Sns": {"Subject": subject, "Message": body}}
                        for subject, body in messages]}


def test_an_alarm_becomes_a_red_embed_with_its_name_and_reason() -> None:
    payload = handler.message("ALARM: cpu", alarm(), "dev")
    embed = payload["embeds"][0]
    assert embed["title"] == "[dev] ALARM: come2us-dev-gateway-blue-cpu-high"
    assert embed["description"] == "Threshold Crossed: 1 datapoint"
    assert embed["color"] == handler.STATE_COLOURS["ALARM"]
    assert {f["name"]: f["value"] for f in embed["fields"]}["was"] == "OK"


def test_a_recovery_is_green() -> None:
    embed = handler.message(None, alarm("OK"), "prod")["embeds"][0]
    assert embed["color"] == handler.STATE_COLOURS["OK"] and embed["title"].startswith("[prod] OK")


def test_a_budget_notification_is_posted_as_text() -> None:
    text = "AWS Budget Notification: actual cost is greater than 80% of 900.00 USD"
    embed = handler.message("AWS Budgets: come2us-dev-monthly", text, "dev")["embeds"][0]
    assert embed["title"] == "[dev] AWS Budgets: come2us-dev-monthly"
    assert embed["description"] == text and embed["color"] == handler.OTHER_COLOUR


def test_nobody_is_pinged_and_long_text_is_cut() -> None:
    payload = handler.message(None, "@everyone " + "x" * 5000, "dev")
    assert payload["allowed_mentions"] == {"parse": []}
    assert len(payload["embeds"][0]["description"]) == handler.LIMIT


def test_each_record_is_posted_once_to_the_secret_webhook(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("COME2US_ENVIRONMENT", "stage")
    posts: list[tuple[str, dict[str, Any]]] = []

    def send(url: str, payload: dict[str, Any]) -> int:
        posts.append((url, payload))
        return 204

    result = handler.handle(event(("a", alarm()), ("b", "text")), None, send, lambda: WEBHOOK)

    assert result == {"sent": 2}
    assert [url for url, _ in posts] == [WEBHOOK, WEBHOOK]
    assert posts[0][1]["embeds"][0]["title"].startswith("[stage] ALARM")


def test_a_refused_post_raises_so_lambda_retries() -> None:
    with pytest.raises(RuntimeError, match="Discord answered 429"):
        handler.handle(event(("a", alarm())), None, lambda url, payload: 429, lambda: WEBHOOK)


def test_only_https_webhooks_are_called() -> None:
    with pytest.raises(ValueError, match="https://"):
        handler.post("file:///etc/passwd", {})


def test_the_url_is_read_from_the_secret_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Client:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:  # boto3's argument name
            calls.append(SecretId)
            return {"SecretString": WEBHOOK + "\n"}

    import boto3

    monkeypatch.setattr(boto3, "client", lambda service: Client())
    monkeypatch.setenv("WEBHOOK_SECRET_ID", "come2us/dev/discord-webhook")
    monkeypatch.setattr(handler, "_url", None)

    assert handler.webhook_url() == WEBHOOK
    assert handler.webhook_url() == WEBHOOK
    assert calls == ["come2us/dev/discord-webhook"]


def test_the_handler_fits_inline_in_a_template() -> None:
    source = Path(handler.__file__)
    assert source.as_posix().endswith(come2us().cloud.observability.notifier.source)
    assert len(source.read_text()) <= 4096
