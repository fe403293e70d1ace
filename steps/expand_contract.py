"""Steps of features/expand_contract.feature: releases built by stack.local.expand_contract,
deployed with the blue/green procedure on the session's local runtime."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pytest_bdd import given, then, when

from stack import bluegreen
from stack.local import expand_contract as change
from stack.local.bluegreen import LocalColours
from stack.local.controlplane import ControlPlaneClient
from stack.local.postgres import ADMIN_SECRET
from stack.local.release_trees import ReleaseTree, revisions_of
from stack.local.session import CloudSession
from stack.local.tasks.task import TaskState
from stack.local.workspace import PROJECT_ROOT
from stack.model import Platform
from steps.common import Scene

PASSWORD = "correct horse 42"  # noqa: S105 - a scratch member's
MIN_OLD_COLOUR_REQUESTS = 40  # the overlap lasts tens of seconds at 20 requests/s


@dataclass
class SchemaChange:
    """The scenario's releases, the colours, the member and the probe on the old colour."""

    control: ControlPlaneClient
    model: Platform
    workdir: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    old: str = ""
    new: str = ""
    found_label: str = ""
    found_tree: Path = PROJECT_ROOT
    expand: ReleaseTree | None = None
    contract: ReleaseTree | None = None
    members: dict[str, str] = field(default_factory=dict)  # email → who signed it up
    token: str = ""
    traffic: change.ColourTraffic | None = None
    results: dict[str, bluegreen.Result] = field(default_factory=dict)

    def label(self, kind: str) -> str:
        return f"{self.found_label}-{kind}-{self.suffix}"

    def contract_tree(self) -> ReleaseTree:
        if self.contract is None:
            self.contract = change.build_contract(PROJECT_ROOT, self.workdir / "contract")
        return self.contract

    def expand_tree(self) -> ReleaseTree:
        if self.expand is None:
            self.expand = change.build_expand(PROJECT_ROOT, self.workdir / "expand")
        return self.expand

    def promote(self, tree: ReleaseTree, kind: str,
                until: bluegreen.Stage = bluegreen.Stage.RETIRED) -> bluegreen.Result:
        platform = LocalColours(self.control, self.model, tree.root)
        result = bluegreen.promote(platform, self.label(kind), until)
        self.results[kind] = result
        return result

    @property
    def user_service(self) -> str:
        """The user service's name in the model (its tasks' ``service``)."""
        return next(spec.name for spec in self.model.compute.services
                    if spec.module == f"services.{change.SERVICE}")

    def platform(self) -> LocalColours:
        return LocalColours(self.control, self.model)

    def facts(self, cloud: CloudSession) -> change.SchemaFacts:
        url = self.model.data.postgres.writer_url(cloud.workspace.secret(ADMIN_SECRET))
        with psycopg.connect(url, autocommit=True) as conn:
            return change.SchemaFacts.read(conn)

    def sign_up(self, colour: str | None, who: str) -> tuple[dict[str, Any], str]:
        """A new member through ``colour`` (None: the listener); the body and the colour that
        answered."""
        email = f"locale-{self.suffix}-{len(self.members)}@example.com"
        with change.member_client(self.model, colour) as users:
            response = users.call("POST", "/api/auth/signup",
                                  json={"email": email, "password": PASSWORD})
        self.members[email] = who
        return response.json(), response.headers.get(change.COLOUR_HEADER, "")

    def me(self, colour: str | None, email: str) -> tuple[dict[str, Any], str]:
        with change.member_client(self.model, colour) as users:
            tokens = users.login(email, PASSWORD)
            response = users.call("GET", "/api/users/me",
                                  headers={"Authorization": f"Bearer {tokens.access_token}"})
        return response.json(), response.headers.get(change.COLOUR_HEADER, "")


@pytest.fixture
def schema_change(cloud: CloudSession, scene: Scene) -> Iterator[SchemaChange]:
    """The scenario's state; afterwards the platform serves what it found, on its schema."""
    workdir = Path(tempfile.mkdtemp(prefix="expand-contract-"))
    with ControlPlaneClient(cloud.workspace, timeout=120.0) as control:
        run = SchemaChange(control, scene.model, workdir)
        try:
            yield run
        finally:
            if run.traffic is not None:
                run.traffic.stop()
            try:
                if run.found_label:
                    change.restore_platform(control, scene.model, cloud.workspace,
                                            run.found_label, run.found_tree,
                                            run.contract or run.expand)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)


@given("a member signed up through the serving colour, whose release lacks the expansion")
def member_of_serving_colour(schema_change: SchemaChange) -> None:
    run = schema_change
    run.old, run.found_label, run.found_tree = change.serving_release(run.control)
    run.new = "green" if run.old == "blue" else "blue"
    assert change.EXPANSION not in revisions_of(run.found_tree / "services" / change.SERVICE), \
        f"release {run.found_label} ({run.found_tree}) already has the expansion"
    body, colour = run.sign_up(None, run.old)
    assert colour == run.old and "locale" not in body, (colour, body)
    with change.member_client(run.model) as users:
        run.token = users.login(next(iter(run.members)), PASSWORD).access_token


@when("the contraction is deployed while the serving release lacks the expansion")
def deploy_contraction_too_early(schema_change: SchemaChange) -> None:
    schema_change.promote(schema_change.contract_tree(), "contract")


@then("the deploy is refused before any task of it starts and the old colour still serves")
def contraction_refused(schema_change: SchemaChange) -> None:
    run = schema_change
    result = run.results.pop("contract")
    assert result.outcome is bluegreen.Outcome.ROLLED_BACK, result
    assert "contracts the shared schema" in result.reason, result.reason
    assert run.control.deployment() == {"active": run.old, "colours": {run.old: run.found_label}}
    started = [t["id"] for t in run.control.status()["tasks"]
               if t["release"] == run.label("contract")]
    assert not started, f"tasks of the refused release: {started}"


@then("the user service's schema has no locale column")
def schema_unchanged(schema_change: SchemaChange, cloud: CloudSession) -> None:
    facts = schema_change.facts(cloud)
    head = change.checkout_head(schema_change.found_tree)
    assert facts == change.SchemaFacts((head,), "absent"), facts


@when("the expansion is deployed to the idle colour, up to healthy, while the member writes "
      "and reads through the old colour")
def deploy_expansion(schema_change: SchemaChange) -> None:
    run = schema_change
    tree = run.expand_tree()
    run.traffic = change.ColourTraffic(run.model, run.old, run.token)
    run.traffic.start()
    result = run.promote(tree, "expand", bluegreen.Stage.HEALTHY)
    assert result.outcome is bluegreen.Outcome.READY, result
    assert run.control.deployment()["colours"] == {run.old: run.found_label,
                                                   run.new: run.label("expand")}


@then("the expansion is applied and the locale column is nullable")
def expansion_applied(schema_change: SchemaChange, cloud: CloudSession) -> None:
    facts = schema_change.facts(cloud)
    assert facts == change.SchemaFacts((change.EXPANSION,), "nullable"), facts


@then("the new colour signs members up with a locale and reads the old colour's members "
      "without one")
def new_colour_uses_locale(schema_change: SchemaChange) -> None:
    run = schema_change
    body, colour = run.sign_up(run.new, run.new)
    assert (colour, body.get("locale")) == (run.new, change.DEFAULT_LOCALE), (colour, body)
    first = next(iter(run.members))
    body, colour = run.me(run.new, first)
    assert colour == run.new and "locale" in body and body["locale"] is None, (colour, body)


@then("the old colour signs members up and reads them, through the listener and by its "
      "preview header")
def old_colour_still_works(schema_change: SchemaChange) -> None:
    run = schema_change
    for route in (None, run.old):
        body, colour = run.sign_up(route, run.old)
        assert colour == run.old and "locale" not in body, (route, colour, body)
        email = body["email"]
        body, colour = run.me(route, email)
        assert colour == run.old and body["email"] == email and "locale" not in body, body


@then("a new user task of the old release starts on the expanded schema and becomes healthy")
def old_release_starts_on_expanded_schema(schema_change: SchemaChange,
                                          cloud: CloudSession) -> None:
    run = schema_change
    before = {t["id"] for t in run.control.status()["tasks"]}
    count = sum(1 for t in run.control.status()["tasks"] if t["service"] == run.user_service
                and t["colour"] == run.old and t["state"] != TaskState.STOPPED)
    run.control.scale(run.user_service, run.old, count + 1)
    health = run.control.colour_health(run.old, wait_s=run.model.compute.tasks.healthy_timeout_s)
    assert health["healthy"], health
    started = [t for t in run.control.status()["tasks"] if t["id"] not in before
               and t["service"] == run.user_service and t["colour"] == run.old]
    assert [(t["release"], t["state"]) for t in started] == \
        [(run.found_label, TaskState.RUNNING)], started
    log = (cloud.workspace.logs / f"{started[0]['id']}.log").read_text()
    assert f"at revision {change.EXPANSION}, which this release does not know" in log, log[-2000:]


@when("the listener is switched to the new colour")
def switch_to_new(schema_change: SchemaChange) -> None:
    result = bluegreen.switch(schema_change.platform())
    assert result.outcome is bluegreen.Outcome.SWITCHED, result


@then("the listener answers from the new colour and the old colour still answers by its "
      "preview header")
def both_answer(schema_change: SchemaChange) -> None:
    run = schema_change
    first = next(iter(run.members))
    assert run.me(None, first)[1] == run.new
    body, colour = run.me(run.old, first)
    assert colour == run.old and "locale" not in body, (colour, body)


@when("the old colour is retired")
def retire_old(schema_change: SchemaChange) -> None:
    run = schema_change
    assert run.traffic is not None
    run.traffic.stop()  # requests made before the retire; the retire drains what is in flight
    result = bluegreen.retire(run.platform())
    assert result.outcome is bluegreen.Outcome.RETIRED, result


@then("no request to the old colour failed while both colours ran")
def old_colour_never_failed(schema_change: SchemaChange) -> None:
    run = schema_change
    assert run.traffic is not None
    outcomes = run.traffic.outcomes
    summary = change.summary(outcomes)
    print(f"old colour ({run.old}) during expand → switch: {summary}")
    assert summary["failures"] == 0, summary
    assert len(outcomes) >= MIN_OLD_COLOUR_REQUESTS, summary
    assert {o.colour for o in outcomes} == {run.old}, summary


@when("the contraction is deployed")
def deploy_contraction(schema_change: SchemaChange) -> None:
    result = schema_change.promote(schema_change.contract_tree(), "contract")
    assert result.outcome is bluegreen.Outcome.PROMOTED, result


@then("the contraction is applied with no task of the pre-expand release running")
def contraction_applied(schema_change: SchemaChange, cloud: CloudSession) -> None:
    run = schema_change
    facts = run.facts(cloud)
    assert facts == change.SchemaFacts((change.CONTRACTION,), "required"), facts
    tasks = run.control.status()["tasks"]
    contract_started = min(t["started_at"] for t in tasks if t["release"] ==
                           run.label("contract") and t["service"] == run.user_service)
    old_tasks = [t for t in tasks if t["release"] == run.found_label]
    assert all(t["state"] == TaskState.STOPPED for t in old_tasks), old_tasks
    late = [t["id"] for t in old_tasks
            if t["stopped_at"] is not None and t["stopped_at"] > contract_started]
    assert not late, f"tasks of {run.found_label} stopped after the contraction started: {late}"
    assert run.control.deployment()["colours"] == {run.old: run.label("contract")}


@then("every member has a locale, the default for those the old colour signed up")
def every_member_has_locale(schema_change: SchemaChange) -> None:
    run = schema_change
    for email, who in run.members.items():
        body, _ = run.me(None, email)
        assert body.get("locale") == change.DEFAULT_LOCALE, (email, who, body)
