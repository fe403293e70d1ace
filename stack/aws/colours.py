"""Blue/green on AWS (and on the emulator): each step of `stack.bluegreen` is one stack update.

The colour is written into the template at synth time (`stack.aws.rollout`): ② is the template
with both colours and the old one active, ④ the same with the new one active, ⑤ the template
with only the new colour. The listener is switched by a stack update rather than by
``ModifyListener``: the template then says what the listener does, so the next update cannot
silently switch it back (drift), the switch is in the change set a reviewer sees, and moto —
which does not re-evaluate ``Fn::If`` — switches exactly like AWS does.

Health (③) is what the ALB says about the new colour's target group, plus ECS saying every
service of the colour runs its desired count. On the emulator the targets are the stand-ins
the gap module registers (moto reports every registered target healthy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from stack.aws.deploy import DeploySession
from stack.aws.naming import logical
from stack.aws.rollout import Rollout
from stack.bluegreen import ColourState, Health
from stack.model.edge import Colour


class CloudFormationColours:
    """`ColourPlatform` over one environment's stack, inside one locked deploy session."""

    def __init__(self, session: DeploySession, poll_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session
        self.deployer = session.deployer
        self.platform = self.deployer.platform
        self.poll_s = poll_s if poll_s is not None else self.deployer.target.timing.poll_s
        self.clock = clock
        self.sleep = sleep

    @property
    def grace_period_s(self) -> float:
        return self.platform.cloud.tasks.health.grace_period_s

    def _rollout(self) -> Rollout:
        rollout = self.deployer.deployed_rollout()
        if rollout is None:
            raise RuntimeError(f"{self.deployer.stack} is not deployed")
        return rollout

    def state(self) -> ColourState | None:
        rollout = self.deployer.deployed_rollout()
        if rollout is None:
            return None
        return ColourState(active=rollout.active, colours=rollout.colours,
                           releases=dict(rollout.releases))

    def create(self, colour: Colour, release: str) -> None:
        self.session.apply(Rollout.only(colour, release), f"① first deploy: {colour} serves")

    def deploy_colour(self, colour: Colour, release: str) -> None:
        current = self._rollout()
        releases = {current.active: current.release(current.active), colour: release}
        self.session.apply(Rollout.both(current.active, releases),
                           f"② deploy {colour} beside {current.active}")

    def switch(self, colour: Colour) -> None:
        current = self._rollout()
        self.session.apply(Rollout.both(colour, dict(current.releases)),
                           f"④ switch the listener to {colour}")

    def retire(self, colour: Colour) -> None:
        current = self._rollout()
        keep = colour.other
        self.session.apply(Rollout.only(keep, current.release(keep)),
                           f"⑤ retire {colour}; {keep} serves")

    def wait_healthy(self, colour: Colour, timeout_s: float) -> Health:
        stack = self.deployer.deployed_stack()
        entry = self.platform.compute.service(self.platform.cloud.edge.entry_service)
        group = stack.physical_id(logical(entry.name, colour, "TargetGroup"))
        cluster = stack.physical_id("Cluster")
        deadline = self.clock() + timeout_s
        while True:
            health = self.health(colour, group, cluster)
            if health.healthy or self.clock() >= deadline:
                return health
            self.sleep(self.poll_s)

    def health(self, colour: Colour, group: str, cluster: str) -> Health:
        """The colour's target health (in ``group``) and service counts (in ``cluster``), now."""
        descriptions = self.deployer.target.client("elbv2").describe_target_health(
            TargetGroupArn=group)["TargetHealthDescriptions"]
        states = [d["TargetHealth"]["State"] for d in descriptions]
        healthy = states.count("healthy")
        lagging = self._services_not_running(cluster, colour)
        wanted = self.platform.compute.service(
            self.platform.cloud.edge.entry_service).scaling.min_tasks
        detail = (f"{healthy} of {len(states)} target(s) healthy in {colour}'s target group "
                  f"(at least {wanted} needed)"
                  + (f"; not running their desired count: {', '.join(lagging)}" if lagging
                     else "; every service runs its desired count"))
        ok = healthy >= wanted and healthy == len(states) and not lagging
        return Health(ok, detail)

    def _services_not_running(self, cluster: str, colour: Colour) -> list[str]:
        names = [f"{spec.name}-{colour}" for spec in self.platform.compute.services]
        ecs: Any = self.deployer.target.client("ecs")
        lagging: list[str] = []
        for start in range(0, len(names), 10):  # DescribeServices takes ten at a time
            try:
                found = ecs.describe_services(cluster=cluster,
                                              services=names[start:start + 10])["services"]
            except ClientError as err:
                return [f"(ECS: {err})"]
            running = {s["serviceName"]: s for s in found if s.get("status") == "ACTIVE"}
            for name in names[start:start + 10]:
                service = running.get(name)
                if service is None or service["runningCount"] < service["desiredCount"]:
                    lagging.append(name)
        return lagging
