"""The blue/green procedure (§7-1) against a fake platform: order of steps, stages, rollback."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from stack import bluegreen
from stack.bluegreen import ColourState, Health, Outcome, Stage
from stack.model.edge import Colour

BLUE, GREEN = Colour.BLUE, Colour.GREEN


@dataclass
class FakePlatform:
    """Records every call; health and failures are chosen by the test."""

    colours: dict[Colour, str] = field(default_factory=dict)  # deployed colour → release
    active: Colour | None = None
    healthy: bool = True
    failing: set[str] = field(default_factory=set)  # methods that raise
    calls: list[str] = field(default_factory=list)
    grace_period_s: float = 90.0

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if what.split()[0] in self.failing:
            raise RuntimeError(f"{what} failed")

    def state(self) -> ColourState | None:
        if self.active is None:
            return None
        return ColourState(self.active, tuple(c for c in Colour if c in self.colours),
                           dict(self.colours))

    def create(self, colour: Colour, release: str) -> None:
        self._call(f"create {colour}")
        self.colours, self.active = {colour: release}, colour

    def deploy_colour(self, colour: Colour, release: str) -> None:
        self._call(f"deploy {colour}")
        self.colours[colour] = release

    def wait_healthy(self, colour: Colour, timeout_s: float) -> Health:
        self.calls.append(f"wait {colour} {timeout_s:g}")
        return Health(self.healthy, "1 of 1 healthy" if self.healthy else "0 of 1 healthy")

    def switch(self, colour: Colour) -> None:
        self._call(f"switch {colour}")
        self.active = colour

    def retire(self, colour: Colour) -> None:
        self._call(f"retire {colour}")
        assert colour is not self.active, "the serving colour was retired"
        self.colours.pop(colour, None)  # after a failed ② it may never have existed


def serving_blue(**overrides: object) -> FakePlatform:
    platform = FakePlatform(colours={BLUE: "1.0"}, active=BLUE)
    for name, value in overrides.items():
        setattr(platform, name, value)
    return platform


def test_the_first_deploy_creates_blue() -> None:
    platform = FakePlatform()
    result = bluegreen.promote(platform, "1.0")
    assert result.outcome is Outcome.CREATED and result.active is BLUE
    assert platform.calls == ["create blue"]


def test_a_deploy_runs_the_five_steps_in_order_with_the_models_grace_period() -> None:
    platform = serving_blue()
    said: list[str] = []
    result = bluegreen.promote(platform, "1.1", say=said.append)
    assert platform.calls == ["deploy green", "wait green 90", "switch green", "retire blue"]
    assert result.outcome is Outcome.PROMOTED and result.active is GREEN
    assert [s[0] for s in result.steps] == ["①", "②", "③", "④", "⑤"]
    assert platform.colours == {GREEN: "1.1"}
    assert said[0].startswith("①") and any(s.startswith("④") for s in said)


def test_the_next_deploy_goes_back_to_blue() -> None:
    platform = FakePlatform(colours={GREEN: "1.1"}, active=GREEN)
    bluegreen.promote(platform, "1.2")
    assert platform.calls == ["deploy blue", "wait blue 90", "switch blue", "retire green"]


@pytest.mark.parametrize(("until", "calls", "active"), [
    (Stage.HEALTHY, ["deploy green", "wait green 90"], BLUE),
    (Stage.SWITCHED, ["deploy green", "wait green 90", "switch green"], GREEN),
])
def test_a_deploy_can_stop_after_a_stage(until: Stage, calls: list[str], active: Colour) -> None:
    platform = serving_blue()
    result = bluegreen.promote(platform, "1.1", until)
    assert platform.calls == calls
    assert result.outcome is Outcome.READY and result.active is active
    assert set(platform.colours) == {BLUE, GREEN}


def test_an_unhealthy_new_colour_is_rolled_back_and_the_old_keeps_serving() -> None:
    platform = serving_blue(healthy=False)
    result = bluegreen.promote(platform, "1.1")
    assert platform.calls == ["deploy green", "wait green 90", "retire green"]
    assert result.outcome is Outcome.ROLLED_BACK and result.active is BLUE
    assert "0 of 1 healthy" in result.reason
    assert platform.colours == {BLUE: "1.0"} and platform.active is BLUE


def test_a_failed_deploy_of_the_new_colour_is_rolled_back() -> None:
    platform = serving_blue(failing={"deploy"})
    result = bluegreen.promote(platform, "1.1")
    assert result.outcome is Outcome.ROLLED_BACK and "② deploying green failed" in result.reason
    assert platform.calls[-1] == "retire green" and platform.active is BLUE


def test_a_failed_switch_switches_back_and_removes_the_new_colour() -> None:
    platform = serving_blue()
    calls: list[str] = []

    def switch(colour: Colour) -> None:
        calls.append(f"switch {colour}")
        if colour is GREEN:
            raise RuntimeError("listener update failed")
        platform.active = colour

    platform.switch = switch  # type: ignore[method-assign]
    result = bluegreen.promote(platform, "1.1")
    assert calls == ["switch green", "switch blue"]
    assert result.outcome is Outcome.ROLLED_BACK and result.active is BLUE
    assert platform.calls[-1] == "retire green"


def test_a_half_finished_deploy_must_be_finished_first() -> None:
    platform = FakePlatform(colours={BLUE: "1.0", GREEN: "1.1"}, active=BLUE)
    with pytest.raises(bluegreen.Unfinished, match="come2us switch"):
        bluegreen.promote(platform, "1.2")


def test_switch_and_retire_are_the_pipelines_later_stages() -> None:
    platform = FakePlatform(colours={BLUE: "1.0", GREEN: "1.1"}, active=BLUE)
    switched = bluegreen.switch(platform)
    assert switched.outcome is Outcome.SWITCHED and platform.active is GREEN
    assert platform.calls == ["wait green 90", "switch green"]
    retired = bluegreen.retire(platform)
    assert retired.outcome is Outcome.RETIRED and platform.colours == {GREEN: "1.1"}


def test_switch_rolls_back_an_idle_colour_that_is_not_healthy() -> None:
    platform = FakePlatform(colours={BLUE: "1.0", GREEN: "1.1"}, active=BLUE, healthy=False)
    result = bluegreen.switch(platform)
    assert result.outcome is Outcome.ROLLED_BACK and platform.colours == {BLUE: "1.0"}


def test_retire_never_removes_the_serving_colour() -> None:
    platform = FakePlatform(colours={BLUE: "1.0", GREEN: "1.1"}, active=BLUE)
    with pytest.raises(bluegreen.Refused, match="blue serves"):
        bluegreen.retire(platform, BLUE)
    bluegreen.retire(platform, GREEN)  # undoing a deploy that stopped after ③
    assert platform.colours == {BLUE: "1.0"}


def test_switch_and_retire_with_no_idle_colour_have_nothing_to_do() -> None:
    platform = serving_blue()
    with pytest.raises(bluegreen.NothingToDo):
        bluegreen.switch(platform)
    with pytest.raises(bluegreen.NothingToDo):
        bluegreen.retire(platform)
    with pytest.raises(bluegreen.Refused, match="nothing is deployed"):
        bluegreen.switch(FakePlatform())
