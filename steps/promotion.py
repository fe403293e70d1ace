"""Steps of features/promotion.feature: deploys to the session's emulator through stack.aws."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from stack import bluegreen
from stack.aws.changeset import SilentReporter
from stack.aws.colours import CloudFormationColours
from stack.aws.deploy import Deployer, Identity
from stack.aws.emulator_gaps import NOT_EMULATED, EmulatorTarget
from stack.aws.naming import logical
from stack.aws.records import Change
from stack.come2us import come2us, environment
from stack.deploy_lock import LockHeld
from stack.local.session import CloudSession
from stack.model.edge import Colour
from steps.common import Scene

ENVIRONMENT = "dev"
FIRST = Identity("alice", "jenkins-dev", 4242)
SECOND = Identity("bob", "laptop", 7)
WAIT_S = 120.0


@pytest.fixture(scope="session")
def emulator_target(cloud: CloudSession) -> EmulatorTarget:
    """One target for the session: its clients are made once."""
    model = come2us()
    return EmulatorTarget(model.aws, model, environment(ENVIRONMENT))


@pytest.fixture
def emulator(emulator_target: EmulatorTarget) -> Iterator[EmulatorTarget]:
    """The emulator, left empty again (but for the local cloud's own bucket and lock table)."""
    yield emulator_target
    emulator_target.reset()


def deployer(scene: Scene, target: EmulatorTarget, identity: Identity = FIRST,
             reporter: Any = None) -> Deployer:
    return Deployer(scene.model, environment(ENVIRONMENT), target, reporter, identity)


def deploy(scene: Scene, target: EmulatorTarget, release: str,
           identity: Identity = FIRST, reporter: Any = None) -> bluegreen.Result:
    chosen = deployer(scene, target, identity, reporter)
    with chosen.session("deploy", release) as session:
        result = bluegreen.promote(CloudFormationColours(session), release)
        session.record.result = str(result.outcome)
    scene.values["deployer"] = chosen
    scene.values["record"] = session.record
    return result


@given("the emulator holds no stack")
def emulator_empty(emulator: EmulatorTarget) -> None:
    emulator.reset()
    assert emulator.client("cloudformation").describe_stacks()["Stacks"] == []


@given(parsers.parse('{env} is deployed to the emulator as release "{release}"'))
@when(parsers.parse('{env} is deployed to the emulator as release "{release}"'))
def deployed(scene: Scene, emulator: EmulatorTarget, env: str, release: str) -> None:
    assert env == ENVIRONMENT
    scene.values["result"] = deploy(scene, emulator, release)


def _deployer(scene: Scene) -> Deployer:
    found: Deployer = scene.values["deployer"]
    return found


@then("blue serves and green does not exist")
def blue_only(scene: Scene) -> None:
    rollout = _deployer(scene).deployed_rollout()
    assert rollout is not None
    assert rollout.active is Colour.BLUE and rollout.colours == (Colour.BLUE,)
    assert scene.values["result"].outcome is bluegreen.Outcome.CREATED


@then("every resource of the template is found by a describe call, as the template says")
def every_resource_verified(scene: Scene, emulator: EmulatorTarget) -> None:
    report = emulator.last_report
    assert report is not None
    template = _deployer(scene).deployed_stack().template
    assert {c.logical_id for c in report.checks} == set(template["Resources"])
    assert not report.problems, [f"{c.logical_id}: {c.status} {c.detail}"
                                 for c in report.problems]
    assert report.count("ok") + len(report.not_emulated) == len(template["Resources"])
    assert scene.values["record"].verification["ok"] == report.count("ok")


@then("the resource types moto has no API for are reported as not emulated, with the reason")
def not_emulated(emulator: EmulatorTarget) -> None:
    report = emulator.last_report
    assert report is not None and report.not_emulated
    for check in report.not_emulated:
        assert check.resource_type in NOT_EMULATED
        assert check.detail == NOT_EMULATED[check.resource_type]


@then("the deploy record names who deployed, the release, the template version and its changes")
def record_kept(scene: Scene) -> None:
    kept = _deployer(scene).records().history()[-1]
    assert kept.id == scene.values["record"].id
    assert kept.who == str(FIRST) and kept.version == "1.0.0" and kept.result == "created"
    [step] = kept.steps
    assert step.template_version, "the template was not kept as an object version"
    resources = _deployer(scene).deployed_stack().template["Resources"]
    assert {c.action for c in step.changes} == {"Add"}
    assert {c.logical_id for c in step.changes} == set(resources)


@then("the deploy went through the five steps of the design")
def five_steps(scene: Scene) -> None:
    result: bluegreen.Result = scene.values["result"]
    assert result.outcome is bluegreen.Outcome.PROMOTED, result
    assert [step[0] for step in result.steps] == ["①", "②", "③", "④", "⑤"], result.steps
    names = [step.name for step in scene.values["record"].steps]
    assert [name[0] for name in names] == ["②", "④", "⑤"], names


@then("the HTTPS listener forwards to green's target group")
def listener_on_green(scene: Scene, emulator: EmulatorTarget) -> None:
    stack = _deployer(scene).deployed_stack()
    entry = scene.model.cloud.edge.entry_service
    [action] = emulator.client("elbv2").describe_listeners(
        ListenerArns=[stack.physical_id("HttpsListener")])["Listeners"][0]["DefaultActions"]
    assert action["TargetGroupArn"] == stack.physical_id(logical(entry, "green", "TargetGroup"))


@then(parsers.parse('blue\'s ECS services are gone and green\'s run release "{release}"'))
def blue_gone(scene: Scene, emulator: EmulatorTarget, release: str) -> None:
    stack = _deployer(scene).deployed_stack()
    ecs = emulator.client("ecs")
    cluster = stack.physical_id("Cluster")
    for spec in scene.model.compute.services:
        [blue] = ecs.describe_services(cluster=cluster,
                                       services=[f"{spec.name}-blue"])["services"] or [None]
        assert blue is None or blue["status"] == "INACTIVE", blue
        [green] = ecs.describe_services(cluster=cluster,
                                        services=[f"{spec.name}-green"])["services"]
        assert green["status"] == "ACTIVE" and green["runningCount"] == green["desiredCount"]
        definition = ecs.describe_task_definition(taskDefinition=green["taskDefinition"])
        assert definition["taskDefinition"]["containerDefinitions"][0]["image"].endswith(
            f":{release}")


class PausingReporter(SilentReporter):
    """Holds a deploy just before it executes its change set, until told to go on."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go_on = threading.Event()

    def change_set(self, stack: str, changes: list[Change]) -> None:
        if not stack.endswith("-bootstrap"):
            self.reached.set()
            assert self.go_on.wait(WAIT_S), "the scenario never let the first deploy go on"


@given("a deploy of dev to the emulator is about to execute its change set")
def first_deploy_paused(scene: Scene, emulator: EmulatorTarget) -> None:
    reporter = PausingReporter()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = deploy(scene, emulator, "1.0.0", FIRST, reporter)
        except BaseException as err:  # reported by the last step
            outcome["error"] = err
            reporter.reached.set()

    thread = threading.Thread(target=run, name="first deploy", daemon=True)
    thread.start()
    assert reporter.reached.wait(WAIT_S), "the first deploy never reached its change set"
    assert "error" not in outcome, outcome.get("error")
    scene.values.update(first=(thread, reporter, outcome))


@when("a second deploy of dev to the emulator starts")
def second_deploy(scene: Scene, emulator: EmulatorTarget) -> None:
    try:
        deploy(scene, emulator, "2.0.0", SECOND)
    except LockHeld as refused:
        scene.values["refusal"] = refused
    finally:
        scene.values["first"][1].go_on.set()


@then("the second deploy is refused and told who holds the lock, since when, for what")
def refused(scene: Scene) -> None:
    refusal = scene.values.get("refusal")
    assert isinstance(refusal, LockHeld), "the second deploy was not refused"
    assert refusal.info.holder == str(FIRST)
    assert "deploy dev 1.0.0" in refusal.info.reason
    assert str(FIRST) in str(refusal) and "since" in str(refusal)


@then("the first deploy completes when it goes on")
def first_completes(scene: Scene) -> None:
    thread, _reporter, outcome = scene.values["first"]
    thread.join(WAIT_S)
    assert not thread.is_alive(), "the first deploy did not finish"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].outcome is bluegreen.Outcome.CREATED
    assert _deployer(scene).holder() is None, "the lock was not released"
