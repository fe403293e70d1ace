"""The environment's KMS key: one customer-managed key encrypts every store at rest.

One key (1 USD a month) instead of one per service: the stores share one trust boundary (the
environment), and the key policy names the AWS services that must use it on our behalf —
CloudWatch Logs for the log groups, CloudWatch and Budgets for the encrypted alarm topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub, Template, kms

from stack.aws.scope import Scope


@dataclass(frozen=True)
class Key:
    id: Ref
    arn: GetAtt


def add_key(t: Template, scope: Scope) -> Key:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersTheKeyThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": Sub("logs.${AWS::Region}.amazonaws.com")},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*",
                           "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": Sub(
                    "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*")}},
            },
            {
                "Sid": "AlarmsAndBudgetsPublishToTheEncryptedTopic",
                "Effect": "Allow",
                "Principal": {"Service": ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
        ],
    }
    key = t.add_resource(kms.Key(
        "EnvironmentKey",
        Description=f"Encrypts the stores, logs and secrets of {scope.env.stack_name}",
        EnableKeyRotation=True,
        PendingWindowInDays=30,
        KeyPolicy=policy,
    ))
    t.add_resource(kms.Alias("EnvironmentKeyAlias", AliasName=f"alias/{scope.env.stack_name}",
                             TargetKeyId=Ref(key)))
    return Key(id=Ref(key), arn=GetAtt(key, "Arn"))
