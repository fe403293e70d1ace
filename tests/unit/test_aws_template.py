"""The CloudFormation renderer: deterministic, colour written in, secrets never literal."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from stack.aws.query import TemplateQuery
from stack.aws.rollout import Rollout
from stack.aws.synth import MAX_RESOURCES, MAX_TEMPLATE_BYTES
from stack.aws.template import render, to_json
from stack.come2us import ENVIRONMENTS, come2us, environment
from stack.model.edge import Colour

REPOSITORY = Path(__file__).resolve().parents[2]


STEADY_BLUE = Rollout.only(Colour.BLUE)


@cache
def rendered(name: str, rollout: Rollout = STEADY_BLUE) -> str:
    return to_json(render(come2us(), environment(name), rollout))


def template(name: str, rollout: Rollout = STEADY_BLUE) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(rendered(name, rollout))
    return loaded


def test_the_same_inputs_give_byte_identical_json() -> None:
    for name in ENVIRONMENTS:
        again = to_json(render(come2us(), environment(name), Rollout.only(Colour.BLUE)))
        assert again == rendered(name)


def test_environments_differ_only_where_their_overlays_do() -> None:
    dev, stage = template("dev"), template("stage")
    assert set(dev["Resources"]) == set(stage["Resources"])
    assert set(template("prod")["Resources"]) - set(dev["Resources"]) == {
        "NatBAddress", "NatBGateway"}


def test_every_template_is_within_cloudformations_limits() -> None:
    for name in ENVIRONMENTS:
        both = rendered(name, Rollout.both(Colour.BLUE))
        assert len(json.loads(both)["Resources"]) <= MAX_RESOURCES
        assert len(both.encode()) <= MAX_TEMPLATE_BYTES


def default_target_group(doc: dict[str, Any]) -> str:
    listener = doc["Resources"]["HttpsListener"]["Properties"]
    [action] = listener["DefaultActions"]
    return str(action["TargetGroupArn"]["Ref"])


def test_the_listener_forwards_to_the_active_colour_written_in_at_synth_time() -> None:
    assert default_target_group(template("dev")) == "GatewayBlueTargetGroup"
    green = template("dev", Rollout.only(Colour.GREEN))
    assert default_target_group(green) == "GatewayGreenTargetGroup"
    assert green["Metadata"]["Come2us"]["ActiveColour"] == "green"
    for name in ENVIRONMENTS:
        assert "Fn::If" not in rendered(name) and "Conditions" not in template(name)


def test_a_steady_template_runs_one_colour_in_its_az_and_a_deploy_both() -> None:
    query = TemplateQuery(template("prod", Rollout.only(Colour.GREEN)))
    services = query.ecs_services()
    assert {name.rsplit("-", 1)[1] for name in services} == {"green"}
    subnets = {props["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"][0]["Ref"]
               for props in services.values()}
    assert subnets == {"SubnetPrivateB"}  # green runs in AZ-b (§7-1)

    both = TemplateQuery(template("prod", Rollout.both(Colour.BLUE, {Colour.GREEN: "v2"})))
    assert len(both.ecs_services()) == 2 * len(come2us().compute.services)
    assert default_target_group(both.template) == "GatewayBlueTargetGroup"
    image = both.properties("UserServiceGreenTaskDefinition")["ContainerDefinitions"][0]["Image"]
    # The repositories are in the bootstrap stack (pushed to before the first deploy).
    assert image == {"Fn::Join": [":", [{"Fn::ImportValue":
                                         "come2us-prod-bootstrap-UserServiceRepositoryUri"},
                                        "v2"]]}


def test_both_target_groups_are_reachable_only_through_the_listener() -> None:
    query = TemplateQuery(template("dev"))
    rules = query.of_type("AWS::ElasticLoadBalancingV2::ListenerRule")
    previews = {props["Actions"][0]["TargetGroupArn"]["Ref"]: props["Conditions"][0]
                for name, props in rules.items() if name.startswith("Preview")}
    assert set(previews) == {"GatewayBlueTargetGroup", "GatewayGreenTargetGroup"}
    webhook = rules["WebhookRule"]
    assert webhook["ListenerArn"] == {"Ref": "HttpsListener"}
    http = query.properties("HttpListener")["DefaultActions"]
    assert [action["Type"] for action in http] == ["redirect"]


DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:secretsmanager:\$\{Secret\}:SecretString:\w+\}\}")


def secret_bearing(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every property, at any depth, whose name says it holds a password, token or secret."""
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith(("Password", "AuthToken", "Token")) or key == "SecretString":
                found.append((f"{path}/{key}", value))
            found += secret_bearing(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += secret_bearing(value, f"{path}/{i}")
    return found


def test_no_secret_is_ever_a_literal() -> None:
    for name in ENVIRONMENTS:
        doc = template(name)
        found = secret_bearing(doc["Resources"])
        assert {path.rsplit("/", 1)[1] for path, _ in found} == {"MasterUserPassword",
                                                                  "AuthToken"}
        for path, value in found:
            reference, variables = value["Fn::Sub"]
            assert DYNAMIC_REFERENCE.fullmatch(reference), (path, value)
            secret = variables["Secret"]["Ref"]
            assert doc["Resources"][secret]["Type"] == "AWS::SecretsManager::Secret"
            assert "GenerateSecretString" in doc["Resources"][secret]["Properties"]
        text = rendered(name)
        assert "discord.com/api/webhooks" not in text and "hooks.slack.com" not in text


def test_the_database_password_is_generated_by_secrets_manager() -> None:
    doc = template("prod")["Resources"]
    writer = doc["DatabaseWriter"]["Properties"]
    assert writer["MasterUserPassword"] == {"Fn::Sub": [
        "{{resolve:secretsmanager:${Secret}:SecretString:password}}",
        {"Secret": {"Ref": "DatabaseSecret"}}]}
    generated = doc["DatabaseSecret"]["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "password" and generated["PasswordLength"] >= 32
    container = doc["UserServiceBlueTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert {s["Name"] for s in container["Secrets"]} == {"COME2US_DATABASE_PASSWORD",
                                                         "COME2US_REDIS_AUTH_TOKEN"}
    assert not any("PASSWORD" in e["Name"] for e in container["Environment"])


def test_the_notifier_runs_the_handler_that_the_tests_exercise() -> None:
    function = template("dev")["Resources"]["Notifier"]["Properties"]
    source = (REPOSITORY / come2us().cloud.observability.notifier.source).read_text()
    assert function["Code"]["ZipFile"] == source
    assert function["Environment"]["Variables"]["WEBHOOK_SECRET_ID"] == \
        "come2us/dev/discord-webhook"


def test_every_suppression_carries_its_reason() -> None:
    from stack.aws.metadata import suppressions

    found = suppressions(template("prod"))
    assert found
    for tool, resource, check, reason in found:
        assert len(reason) > 30, (tool, resource, check, reason)


def test_every_taggable_resource_names_its_environment() -> None:
    resources = template("stage")["Resources"]
    tagged = [props["Tags"] for r in resources.values() if "Tags" in (props := r["Properties"])]
    assert len(tagged) > 50
    for tags in tagged:
        values = tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags}
        assert values["Environment"] == "stage" and values["Project"] == "come2us"


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_logical_ids_are_stable_names_from_the_model(name: str) -> None:
    ids = set(template(name)["Resources"])
    assert {"Vpc", "HttpsListener", "DatabaseWriter", "SessionRedis", "CacheRedis", "Kafka",
            "ImageBucket", "ImageDistribution", "Notifier", "CiHost",
            "Bastion", "MonthlyBudget", "GatewayBlueService", "AiServiceBlueScalableTarget",
            "ProductServiceBlueCpuScaling"} <= ids
    assert "AiServiceBlueCpuScaling" not in ids  # scaled by hand (§7-2)
