"""What the runtime tells a task about itself (ECS: task metadata), read from its environment.

Kept free of heavy imports: the gateway, the echo service and the local task runner read it
too. Services register these keys as discovery metadata, so a colour's gateway routes only to
its own colour (§7-1); the gateway also returns colour and release on every response.
"""

from __future__ import annotations

import os

TASK_METADATA_ENV = {"colour": "COME2US_COLOUR", "zone": "COME2US_ZONE",
                     "release": "COME2US_RELEASE"}
# Testing hooks a release carries into its tasks (comma-separated), e.g. "gateway-health".
FAULTS_ENV = "COME2US_FAULTS"


def task_metadata() -> dict[str, str]:
    return {key: value for key, env in TASK_METADATA_ENV.items()
            if (value := os.environ.get(env))}


def faults() -> frozenset[str]:
    """The testing hooks this task's release switched on (none in a normal release)."""
    return frozenset(f for f in os.environ.get(FAULTS_ENV, "").split(",") if f)
