"""`come2us deploy --target local`: the shared blue/green procedure over the control plane.

A fake control plane plays the runtime (deployed colours, the listener, health as the
release's faults make it); the procedure and `LocalColours` are the real ones.
"""

from __future__ import annotations

from typing import Any

from stack import bluegreen
from stack.come2us import come2us
from stack.local.bluegreen import LocalColours


class FakeControl:
    """The control plane's colour API, with a release whose gateways fail their checks
    never becoming healthy."""

    def __init__(self) -> None:
        self.active = "blue"
        self.colours: dict[str, str] = {}
        self.faults: dict[str, tuple[str, ...]] = {}
        self.calls: list[str] = []

    def deployment(self) -> dict[str, Any]:
        return {"active": self.active, "colours": dict(self.colours)}

    def deploy_colour(self, colour: str, version: str, directory: str | None = None,
                      faults: tuple[str, ...] = ()) -> dict[str, Any]:
        self.calls.append(f"deploy {colour} {version}")
        self.colours[colour], self.faults[colour] = version, faults
        return {}

    def colour_health(self, colour: str, wait_s: float = 0.0) -> dict[str, Any]:
        self.calls.append(f"health {colour}")
        failing = "gateway-health" in self.faults.get(colour, ())
        return {"healthy": not failing,
                "detail": "2 task(s) failed their health checks" if failing else "all healthy"}

    def switch(self, colour: str) -> dict[str, Any]:
        self.calls.append(f"switch {colour}")
        self.active = colour
        return {}

    def retire_colour(self, colour: str) -> dict[str, Any]:
        self.calls.append(f"retire {colour}")
        del self.colours[colour]
        return {}


def test_the_first_deploy_creates_blue_and_points_the_listener_at_it() -> None:
    control = FakeControl()

    result = bluegreen.promote(LocalColours(control, come2us()), "v1")

    assert result.outcome is bluegreen.Outcome.CREATED
    assert control.deployment() == {"active": "blue", "colours": {"blue": "v1"}}


def test_a_new_release_goes_to_green_which_is_switched_to_before_blue_is_retired() -> None:
    control = FakeControl()
    control.colours["blue"] = "v1"

    result = bluegreen.promote(LocalColours(control, come2us()), "v2")

    assert result.outcome is bluegreen.Outcome.PROMOTED
    assert control.calls == ["deploy green v2", "health green", "switch green", "retire blue"]
    assert control.deployment() == {"active": "green", "colours": {"green": "v2"}}


def test_a_green_failing_its_health_checks_is_never_switched_to_and_is_retired() -> None:
    control = FakeControl()
    control.colours["blue"] = "v1"

    result = bluegreen.promote(
        LocalColours(control, come2us(), faults=("gateway-health",)), "v3")

    assert result.outcome is bluegreen.Outcome.ROLLED_BACK
    assert "failed their health checks" in result.reason
    assert "switch green" not in control.calls
    assert control.deployment() == {"active": "blue", "colours": {"blue": "v1"}}


def test_the_health_wait_is_the_model_s_whole_colour_bound() -> None:
    model = come2us()

    assert LocalColours(FakeControl(), model).grace_period_s == \
        model.compute.tasks.healthy_timeout_s
