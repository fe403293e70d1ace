"""IAM policy documents, written the same way everywhere in the template."""

from __future__ import annotations

from typing import Any

Document = dict[str, Any]


def assume_role(*services: str) -> Document:
    """Who may take a role: the AWS services named, nobody else."""
    principal: str | list[str] = services[0] if len(services) == 1 else list(services)
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": principal},
                       "Action": "sts:AssumeRole"}],
    }


def allow(actions: list[str], resources: Any, sid: str | None = None,
          condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if sid:
        statement["Sid"] = sid
    if condition:
        statement["Condition"] = condition
    return statement


def document(*statements: dict[str, Any]) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}
