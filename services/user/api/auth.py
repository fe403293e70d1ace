"""``/auth/*``: sign-up, login, token refresh and logout (``/api/auth/**`` at the gateway).

Sign-up, login and refresh are public at the gateway (``gateway.public``); logout needs the
access token of the session it ends. Token answers carry ``Cache-Control: no-store``, as OAuth
2 requires, so no cache in between keeps a copy.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from services.common.errors import Unauthorized
from services.common.identity import CurrentCaller
from services.common.schemas import error_responses
from services.user.api.deps import AccountsDep, SessionsDep
from services.user.api.schemas import (
    LoginRequest,
    RefreshRequest,
    SignUpRequest,
    TokenResponse,
    UserResponse,
)
from services.user.domain.accounts import SignUp

router = APIRouter(prefix="/auth", tags=["auth"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post("/signup", status_code=status.HTTP_201_CREATED, summary="Create an account",
             response_model=UserResponse, responses=error_responses(409, 422, 503))
async def sign_up(body: SignUpRequest, accounts: AccountsDep) -> UserResponse:
    """A new member with the ``customer`` role. The password must have at least 10
    characters, letters and digits, and must not be the email."""
    user = await accounts.sign_up(SignUp(body.email, body.password, body.display_name))
    return UserResponse.of(user)


@router.post("/login", summary="Log in: an access token and a refresh token",
             response_model=TokenResponse, responses=error_responses(401, 422, 503))
async def log_in(body: LoginRequest, response: Response, accounts: AccountsDep,
                 sessions: SessionsDep) -> TokenResponse:
    user = await accounts.authenticate(body.email, body.password)
    response.headers.update(NO_STORE)
    return TokenResponse.of(await sessions.start(user))


@router.post("/refresh", summary="Exchange the refresh token for new tokens (rotation)",
             response_model=TokenResponse, responses=error_responses(401, 422, 503))
async def refresh(body: RefreshRequest, response: Response,
                  sessions: SessionsDep) -> TokenResponse:
    """The refresh token is consumed: use the new one next time. Presenting a consumed one
    again revokes the whole session (all its access and refresh tokens)."""
    pair = await sessions.refresh(body.refresh_token)
    response.headers.update(NO_STORE)
    return TokenResponse.of(pair)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
             summary="End this session everywhere", responses=error_responses(401, 503))
async def log_out(caller: CurrentCaller, sessions: SessionsDep) -> Response:
    """Revokes the caller's session: its refresh token stops working and every gateway
    refuses its access tokens. Repeating it is harmless."""
    if not caller.session_id:
        raise Unauthorized("no session in this request (call it with an access token "
                           "through the gateway)")
    await sessions.end(caller.session_id, caller.user_id, "logout")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
