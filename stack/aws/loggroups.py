"""Log groups: every one made by the template, so every one keeps logs 30 days (§10), encrypted.

A log group that a service creates on first write never expires; creating each group here,
before the thing that writes to it, is what makes the retention hold everywhere.
"""

from __future__ import annotations

from troposphere import Template, logs

from stack.aws.encryption import Key
from stack.aws.scope import Scope


def add_log_group(t: Template, scope: Scope, key: Key, title: str, name: str) -> logs.LogGroup:
    return t.add_resource(logs.LogGroup(
        title, LogGroupName=name, KmsKeyId=key.arn,
        RetentionInDays=scope.cloud.observability.log_retention_days))
