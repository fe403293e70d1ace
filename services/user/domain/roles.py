"""Roles: customer (everyone), seller (may run stores), admin (may do anything, grant roles).

Sign-up gives ``customer``; only an admin changes roles. A grant takes effect at the member's
next login or token refresh (at most one access-token lifetime later); a removal ends the
member's sessions at once, because an access token still carrying the removed role would
otherwise keep working until it expires.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import Forbidden, Invalid
from services.common.identity import ROLES, Caller

CUSTOMER = "customer"
SELLER = "seller"
ADMIN = "admin"
SIGN_UP_ROLES = frozenset({CUSTOMER})


@dataclass(frozen=True)
class RoleChange:
    """Roles to add and roles to remove, as an admin asked for them."""

    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for field, roles in (("add", self.add), ("remove", self.remove)):
            unknown = sorted(roles - set(ROLES))
            if unknown:
                raise Invalid(field, "known_role",
                              f"unknown role(s) {unknown}; roles are {list(ROLES)}")
        both = sorted(self.add & self.remove)
        if both:
            raise Invalid("remove", "disjoint", f"{both} cannot be both added and removed")

    def apply(self, current: frozenset[str], *, actor_id: str, target_id: str) -> frozenset[str]:
        """The roles after the change; an admin cannot remove their own admin role (so the
        platform cannot be left without one by accident), and nobody is left with none."""
        if ADMIN in self.remove and actor_id == target_id:
            raise Invalid("remove", "own_admin", "an admin cannot remove their own admin role")
        roles = (current | self.add) - self.remove
        if not roles:
            raise Invalid("remove", "not_empty", "a member keeps at least one role")
        return roles

    def removes_from(self, before: frozenset[str]) -> bool:
        """Whether applying it took away a role the member had (their sessions must end)."""
        return bool(before & self.remove)


def may_read(caller: Caller, user_id: str) -> None:
    """A member reads their own record; an admin reads anyone's. Otherwise 403 — decided
    before looking the id up, so a 404 never tells a stranger that an id exists."""
    if caller.user_id != user_id and ADMIN not in caller.roles:
        raise Forbidden("you may read only your own member record")
