"""One environment's CloudFormation template, built from the model.

`render(platform, environment, rollout)` is a pure function of its inputs, and `to_json`
writes keys sorted, so the same model, environment and rollout give byte-identical JSON:
a template diff is a model diff.
"""

from __future__ import annotations

import json
from typing import Any

from troposphere import Output, Ref, Template

from stack.aws.cicd import add_bastion, add_ci_host
from stack.aws.compute import add_compute
from stack.aws.data import add_data
from stack.aws.edge import add_edge
from stack.aws.encryption import add_key
from stack.aws.metadata import tag_everything
from stack.aws.network import add_network
from stack.aws.observability import add_observability
from stack.aws.rollout import Rollout
from stack.aws.scope import Scope
from stack.aws.secrets import add_secrets
from stack.aws.security import add_security_groups
from stack.aws.storage import add_storage
from stack.model import Platform
from stack.model.environment import Environment

METADATA_KEY = "Come2us"


def render(platform: Platform, environment: Environment, rollout: Rollout) -> Template:
    scope = Scope(platform, environment, rollout)
    t = Template(Description=(
        f"COME2US {environment.name}: the whole platform (seed §3-§11), rendered from "
        f"stack/come2us.py; active colour {rollout.active}"))
    t.set_version("2010-09-09")
    t.set_metadata({METADATA_KEY: {
        "Environment": environment.name,
        "ActiveColour": str(rollout.active),
        "Colours": [str(colour) for colour in rollout.colours],
        "Releases": {str(colour): release for colour, release in rollout.releases},
    }})
    key = add_key(t, scope)
    network = add_network(t, scope, key)
    groups = add_security_groups(t, scope, network.vpc)
    secrets = add_secrets(t, scope, key)
    storage = add_storage(t, scope)
    data = add_data(t, scope, key, network, groups, secrets)
    edge = add_edge(t, scope, network, groups, storage.access_logs)
    compute = add_compute(t, scope, key, network, groups, edge, secrets, storage)
    topic = add_observability(t, scope, key, edge, data, compute)
    add_ci_host(t, scope, key, network, groups, edge, list(compute.repositories.values()))
    add_bastion(t, scope, key, network, groups)
    for name, value in (("LoadBalancerDns", edge.load_balancer), ("AlarmTopic", topic),
                        ("ImageBucket", storage.images)):
        t.add_output(Output(name, Value=value if not isinstance(value, str) else Ref(value)))
    tag_everything(t, scope.tags)
    return t


def to_dict(template: Template) -> dict[str, Any]:
    rendered: dict[str, Any] = template.to_dict()
    return rendered


def to_json(template: Template) -> str:
    """Sorted keys and a trailing newline: byte-identical for identical inputs."""
    return json.dumps(to_dict(template), sort_keys=True, indent=1) + "\n"
