"""Blue/green on the local runtime: `ColourPlatform` over the control plane's API.

`come2us deploy --target local` runs the same procedure (`stack.bluegreen`) as AWS and the
emulator — ② deploy the new colour in its AZ, ③ wait until healthy, ④ switch the listener,
⑤ retire the old colour, with the same automatic rollback — and this class answers each step
from the local control plane, where the task runner and HAProxy do the work:

| step | here                                                                             |
|------|----------------------------------------------------------------------------------|
| ①    | `state`: the deployed colours with their releases; the listener's active colour  |
| ②    | `deploy_colour`: the release recorded, its tasks started in the colour's AZ      |
| ③    | `wait_healthy`: every target of the colour's group HEALTHY on the ALB, every     |
|      | task RUNNING and registered UP in discovery, one registry fetch more; it fails   |
|      | early when the deploy's circuit breaker opens (tasks replaced for health)        |
| ④    | `switch`: HAProxy's map entry flips, no reload                                   |
| ⑤    | `retire`: the colour's gateways drain (deregistration delay), then its services  |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from stack.bluegreen import ColourState, Health
from stack.model import Platform
from stack.model.edge import Colour


class ColourControl(Protocol):
    """The part of `ControlPlaneClient` blue/green uses (a fake stands in for unit tests)."""

    def deployment(self) -> dict[str, Any]: ...

    def deploy_colour(self, colour: str, version: str, directory: str | None = None,
                      faults: tuple[str, ...] = ()) -> dict[str, Any]: ...

    def colour_health(self, colour: str, wait_s: float = 0.0) -> dict[str, Any]: ...

    def switch(self, colour: str) -> dict[str, Any]: ...

    def retire_colour(self, colour: str) -> dict[str, Any]: ...


class NotHealthy(RuntimeError):
    """The first deploy's colour did not become healthy."""


class LocalColours:
    """`ColourPlatform` for the local runtime; ``directory`` and ``faults`` make up the
    release (its code and testing hooks) with the label the procedure passes."""

    def __init__(self, control: ColourControl, model: Platform, directory: Path | None = None,
                 faults: tuple[str, ...] = ()) -> None:
        self.control = control
        self.model = model
        self.directory = directory
        self.faults = faults

    @property
    def grace_period_s(self) -> float:
        """How long ③ waits: `LocalTasks.healthy_timeout_s` (a whole colour starting on a
        loaded 2-core machine), not the health check's grace period alone."""
        return self.model.compute.tasks.healthy_timeout_s

    def state(self) -> ColourState | None:
        deployment = self.control.deployment()
        releases = {Colour(c): label for c, label in deployment["colours"].items()}
        if not releases:
            return None
        active = Colour(deployment["active"])
        if active not in releases:  # the listener points at nothing deployed: take what is
            active = next(iter(releases))
        return ColourState(active=active, colours=tuple(sorted(releases)), releases=releases)

    def _deploy(self, colour: Colour, release: str) -> None:
        self.control.deploy_colour(str(colour), release,
                                   str(self.directory) if self.directory else None,
                                   self.faults)

    def create(self, colour: Colour, release: str) -> None:
        self._deploy(colour, release)
        self.control.switch(str(colour))
        health = self.wait_healthy(colour, self.grace_period_s)
        if not health.healthy:
            raise NotHealthy(f"{colour} did not become healthy: {health.detail}")

    def deploy_colour(self, colour: Colour, release: str) -> None:
        self._deploy(colour, release)

    def wait_healthy(self, colour: Colour, timeout_s: float) -> Health:
        answer = self.control.colour_health(str(colour), wait_s=timeout_s)
        return Health(bool(answer["healthy"]), str(answer["detail"]))

    def switch(self, colour: Colour) -> None:
        self.control.switch(str(colour))

    def retire(self, colour: Colour) -> None:
        self.control.retire_colour(str(colour))
