"""The user service assembled: stores, domain objects, routes, readiness checks.

`build` is what `services.common.runtime.serve` calls with the running instance's runtime;
`install` puts routes and domain objects on an app, and is also how the API tests assemble the
same routes over fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from services.common.runtime import ServiceRuntime, create_app, secret
from services.common.tokens import (
    ISSUER_DEFAULT,
    AccessToken,
    issue_access_token,
    load_private_key,
)
from services.user.api import auth, users
from services.user.domain.accounts import Accounts
from services.user.domain.passwords import Passwords
from services.user.domain.sessions import Sessions, Signer
from services.user.domain.users import User
from services.user.repository import PostgresUsers
from services.user.session_store import RedisSessionStore
from services.user.settings import UserSettings

NAME = "user-service"  # in discovery, at the config server, in logs and metrics
SCHEMA = "user_service"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
TITLE = "COME2US user service"
JWT_PRIVATE_KEY = "COME2US_JWT_PRIVATE_KEY"


def signer(private_key_pem: str, issuer: Callable[[], str]) -> Signer:
    """Access tokens signed with the platform's key; the issuer is read per token (config)."""
    key = load_private_key(private_key_pem)  # parsed once: ~75 ms each time otherwise

    def sign(user: User, session_id: str, ttl_s: int) -> AccessToken:
        return issue_access_token(key, subject=user.id, roles=sorted(user.roles),
                                  session_id=session_id, ttl_s=ttl_s, issuer=issuer())

    return sign


def install(app: FastAPI, accounts: Accounts, sessions: Sessions) -> FastAPI:
    app.state.accounts = accounts
    app.state.sessions = sessions
    app.include_router(auth.router)
    app.include_router(users.router)
    return app


def build(runtime: ServiceRuntime[UserSettings]) -> FastAPI:
    assert runtime.database is not None, "serve() opens the database for a service with a schema"
    settings = runtime.settings
    members = PostgresUsers(runtime.database)
    store = RedisSessionStore(runtime.session_redis())
    sessions = Sessions(
        store, signer(secret(JWT_PRIVATE_KEY),
                      issuer=lambda: runtime.platform.jwt.issuer or ISSUER_DEFAULT),
        lifetimes=lambda: settings.value.user.sessions.lifetimes(),
        current_user=lambda user_id: members.get(user_id, fresh=True))
    passwords = Passwords(lambda: settings.value.user.password_hashing.parameters())
    runtime.checks["session-redis"] = store.check
    return install(create_app(runtime, TITLE), Accounts(members, passwords, sessions), sessions)
