"""The CI/CD host of §6: a Jenkins controller in a private subnet, reached only by the webhook.

Its image is built by Packer (`packer/jenkins.pkr.hcl`), which records the AMI id in an SSM
parameter; the template reads that parameter, so a new image is a new parameter value, not a
template edit. JENKINS_HOME is a separate encrypted EBS volume that outlives the instance and
is snapshotted on a schedule (§9, §11). The host's IAM role may deploy this environment's
CloudFormation stacks (through a CloudFormation service role created once per account) and
push to this environment's ECR repositories, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SnapshotSchedule:
    """A Data Lifecycle Manager policy: a snapshot every ``every_hours`` from ``at`` (UTC)."""

    every_hours: int
    at: str
    keep: int


@dataclass(frozen=True)
class JenkinsHost:
    zone_label: str
    port: int
    health_path: str
    ami_parameter: str  # the SSM parameter Packer writes the AMI id to
    home_device: str
    snapshots: SnapshotSchedule
    deploy_role: str  # name of the CloudFormation service role the pipeline passes
