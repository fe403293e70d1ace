"""Blue/green (seed §7-1), written once: the five steps and the rollback, against `ColourPlatform`.

| step | seed                    | here                                                        |
|------|-------------------------|-------------------------------------------------------------|
| ①    | active_color=blue, AZ-a | `state()`: which colour serves now (first deploy: blue)      |
| ②    | green created in AZ-b   | `deploy_colour(new)`: the new colour beside the old one      |
| ③    | ALB target group health | `wait_healthy(new, grace period)`: every target healthy      |
| ④    | listener blue → green   | `switch(new)`: the listener forwards to the new colour       |
| ⑤    | blue destroyed          | `retire(old)`: only the new colour remains                   |

If the new colour is not healthy within its grace period (③), or ② or ④ fails, the deploy
rolls back: the old colour keeps (or takes back) the traffic and the new colour is removed;
the result says so. A colour is never retired while it serves.

The procedure knows nothing of CloudFormation, ECS or HAProxy. `stack.aws.colours` implements
`ColourPlatform` for AWS and the emulator (each step a stack update, the colour written into
the template); the local runtime implements it with processes behind HAProxy, its health
checks real. CI runs the steps as separate stages (`until`, then `switch`, then `retire`);
each stage starts from what the platform says is deployed, so a stage can be re-run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from stack.model.edge import Colour


@dataclass(frozen=True)
class ColourState:
    """What is deployed: the colours that exist, the one that serves, and their releases."""

    active: Colour
    colours: tuple[Colour, ...]
    releases: dict[Colour, str] = field(default_factory=dict)

    @property
    def idle(self) -> Colour | None:
        """The colour that exists but does not serve (only during a deploy)."""
        others = [c for c in self.colours if c is not self.active]
        return others[0] if others else None


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str


class ColourPlatform(Protocol):
    """What blue/green needs from a platform; AWS, the emulator and the local runtime provide it."""

    @property
    def grace_period_s(self) -> float:
        """How long a new colour's tasks may take to become healthy (the model's grace period)."""
        ...

    def state(self) -> ColourState | None:
        """What is deployed now; None before the first deploy."""
        ...

    def create(self, colour: Colour, release: str) -> None:
        """The first deploy: only ``colour``, serving."""
        ...

    def deploy_colour(self, colour: Colour, release: str) -> None:
        """② Start ``colour``'s services in its AZ beside the serving colour; no traffic yet."""
        ...

    def wait_healthy(self, colour: Colour, timeout_s: float) -> Health:
        """③ Wait until every target of ``colour`` is healthy, at most ``timeout_s``."""
        ...

    def switch(self, colour: Colour) -> None:
        """④ The listener forwards to ``colour``; both colours still exist."""
        ...

    def retire(self, colour: Colour) -> None:
        """⑤ Remove ``colour``'s services; the other colour serves."""
        ...


class Stage(StrEnum):
    """How far a deploy goes in one run (CI runs the stages one by one)."""

    HEALTHY = "healthy"  # ①-③: the new colour runs beside the old, healthy, without traffic
    SWITCHED = "switched"  # ④: the new colour serves, the old one is kept for a quick way back
    RETIRED = "retired"  # ⑤: only the new colour remains


class Outcome(StrEnum):
    CREATED = "created"  # the first deploy
    READY = "ready"  # stopped after ③ or ④ on request
    PROMOTED = "promoted"  # ⑤ done
    ROLLED_BACK = "rolled back"
    SWITCHED = "switched"
    RETIRED = "retired"


@dataclass
class Result:
    outcome: Outcome
    active: Colour
    steps: list[str] = field(default_factory=list)
    reason: str = ""


class Unfinished(RuntimeError):
    """A previous deploy stopped half-way (both colours exist): finish or undo it first."""


class NothingToDo(RuntimeError):
    """The step asked for has nothing to act on (no idle colour): not an error, so that a
    pipeline's switch and retire stages pass after a first deploy."""


class Refused(RuntimeError):
    """The step asked for would harm what serves (e.g. retiring the serving colour)."""


Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def promote(platform: ColourPlatform, release: str, until: Stage = Stage.RETIRED,
            say: Say = _quiet) -> Result:
    """Deploy ``release``: the first time as blue; then as the idle colour, blue/green."""
    state = platform.state()
    if state is None:
        say(f"① nothing is deployed: {Colour.BLUE} is created and serves")
        platform.create(Colour.BLUE, release)
        return Result(Outcome.CREATED, Colour.BLUE, ["① create blue"])
    if state.idle is not None:
        raise Unfinished(
            f"both colours exist ({state.active} serves, {state.idle} is idle): a previous "
            f"deploy stopped half-way. Finish it with `come2us switch` and `come2us retire`, "
            f"or undo it with `come2us retire --colour {state.idle}`")
    old, new = state.active, state.active.other
    result = Result(Outcome.READY, old, [f"① {old} serves"])
    say(f"① {old} serves; {new} gets release {release}")
    try:
        say(f"② deploy {new} beside {old}")
        platform.deploy_colour(new, release)
        result.steps.append(f"② deploy {new}")
    except Exception as err:
        return _roll_back(platform, old, new, result, f"② deploying {new} failed: {err}", say)
    health = _check(platform, new, result, say)
    if not health.healthy:
        return _roll_back(platform, old, new, result, health.detail, say)
    if until is Stage.HEALTHY:
        return result
    return _switch_and_retire(platform, old, new, result, until, say)


def switch(platform: ColourPlatform, say: Say = _quiet) -> Result:
    """④ alone (CI's switch stage): the idle colour, healthy, takes the traffic."""
    state = _half_way(platform.state())
    old, new = state.active, state.idle
    assert new is not None
    result = Result(Outcome.SWITCHED, old, [f"① {old} serves, {new} idle"])
    health = _check(platform, new, result, say)
    if not health.healthy:
        return _roll_back(platform, old, new, result, health.detail, say)
    return _switch_and_retire(platform, old, new, result, Stage.SWITCHED, say)


def retire(platform: ColourPlatform, colour: Colour | None = None, say: Say = _quiet) -> Result:
    """⑤ alone (CI's retire stage): remove the idle colour (by default the old one, after a
    switch; naming the idle colour before a switch undoes a deploy)."""
    state = _half_way(platform.state())
    idle = state.idle
    assert idle is not None
    if colour is not None and colour is not idle:
        raise Refused(f"{colour} serves: only the idle colour ({idle}) can be retired")
    say(f"⑤ retire {idle}; {state.active} serves")
    platform.retire(idle)
    return Result(Outcome.RETIRED, state.active, [f"⑤ retire {idle}"])


def _half_way(state: ColourState | None) -> ColourState:
    if state is None:
        raise Refused("nothing is deployed: deploy a release first")
    if state.idle is None:
        raise NothingToDo(f"only {state.active} exists and serves: there is no idle colour")
    return state


def _check(platform: ColourPlatform, colour: Colour, result: Result, say: Say) -> Health:
    say(f"③ wait until {colour}'s targets are healthy (at most {platform.grace_period_s:g} s)")
    health = platform.wait_healthy(colour, platform.grace_period_s)
    say(f"③ {colour}: {health.detail}")
    result.steps.append(f"③ {colour} {'healthy' if health.healthy else 'not healthy'}")
    return health


def _switch_and_retire(platform: ColourPlatform, old: Colour, new: Colour, result: Result,
                       until: Stage, say: Say) -> Result:
    try:
        say(f"④ switch the listener {old} → {new}")
        platform.switch(new)
        result.steps.append(f"④ switch to {new}")
    except Exception as err:
        return _roll_back(platform, old, new, result, f"④ switching to {new} failed: {err}",
                          say, switch_back=True)
    result.active = new
    if until is not Stage.RETIRED:
        return result
    say(f"⑤ retire {old}")
    platform.retire(old)
    result.steps.append(f"⑤ retire {old}")
    result.outcome = Outcome.PROMOTED
    return result


def _roll_back(platform: ColourPlatform, old: Colour, new: Colour, result: Result, reason: str,
               say: Say, switch_back: bool = False) -> Result:
    """The old colour serves (again) and the new one is removed; the reason is kept."""
    say(f"rollback: {reason}")
    if switch_back:
        platform.switch(old)
        result.steps.append(f"rollback: switch back to {old}")
    platform.retire(new)
    result.steps.append(f"rollback: retire {new}")
    result.outcome, result.active, result.reason = Outcome.ROLLED_BACK, old, reason
    return result
