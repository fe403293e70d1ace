"""Which colours a template deploys, which one takes traffic, and which release each runs.

The seed's blue/green (§7-1) is a sequence of templates: ① only blue, active; ② blue active,
green deployed beside it; ④ both, green active; ⑤ only green. A `Rollout` is one step of that
sequence. The active colour is written into the template at synth time — never selected by a
parameter and ``Fn::If``, which moto does not re-evaluate on update (DESIGN.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.model.edge import Colour

DEFAULT_RELEASE = "latest"


@dataclass(frozen=True)
class Rollout:
    active: Colour
    colours: tuple[Colour, ...]  # the colours whose services exist, in Colour order
    releases: tuple[tuple[Colour, str], ...] = ()  # image tag per colour; default "latest"

    def __post_init__(self) -> None:
        if self.active not in self.colours:
            raise ValueError(f"the active colour {self.active} is not deployed "
                             f"({', '.join(self.colours)})")
        if list(self.colours) != sorted(set(self.colours), key=list(Colour).index):
            raise ValueError(f"colours must be distinct and in order blue, green: {self.colours}")

    @classmethod
    def only(cls, colour: Colour, release: str = DEFAULT_RELEASE) -> Rollout:
        """Steady state: one colour, active (§7-1 ① and ⑤)."""
        return cls(active=colour, colours=(colour,), releases=((colour, release),))

    @classmethod
    def both(cls, active: Colour, releases: dict[Colour, str] | None = None) -> Rollout:
        """During a deploy: both colours exist, ``active`` takes the traffic (②-④)."""
        chosen = releases or {}
        return cls(active=active, colours=tuple(Colour),
                   releases=tuple((c, chosen.get(c, DEFAULT_RELEASE)) for c in Colour))

    def release(self, colour: Colour) -> str:
        return dict(self.releases).get(colour, DEFAULT_RELEASE)
