"""What routes need, taken from the app's state (set once by `services.user.app.install`).

Tests install the same routes over fakes, so a route never knows which store it talks to.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from services.user.domain.accounts import Accounts
from services.user.domain.sessions import Sessions


def _accounts(request: Request) -> Accounts:
    return cast(Accounts, request.app.state.accounts)


def _sessions(request: Request) -> Sessions:
    return cast(Sessions, request.app.state.sessions)


AccountsDep = Annotated[Accounts, Depends(_accounts)]
SessionsDep = Annotated[Sessions, Depends(_sessions)]
