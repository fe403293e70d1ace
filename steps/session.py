"""Steps of features/session_persistence.feature: a member's session through the gateway."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pytest_bdd import given, parsers, then, when

from stack.local.config_repo import ConfigRepository
from stack.local.session import CloudSession
from stack.local.user_client import (
    Tokens,
    UserApiError,
    UserClient,
    gateway_token_leeway_s,
)
from stack.waiting import wait_for
from steps.common import Scene
from steps.configuration import refresh_bus

USER_SERVICE = "user-service"
GATEWAY = "gateway"
CONFIG_FILE = "user-service.yml"
# A newly started cloud registers the user service within a lease or two; a loaded machine
# needs slack on top.
ROUTED_S = 30.0
CONFIG_APPLIED_S = 15.0
# Slack for a loaded 2-core machine on top of the lifetimes and the gateway's leeway.
MARGIN_S = 5.0
UNAVAILABLE = (502, 503, 504)


@dataclass(frozen=True)
class Member:
    email: str
    password: str


@pytest.fixture
def users(scene: Scene) -> Iterator[UserClient]:
    with UserClient(scene.model) as client:
        yield client


def member(scene: Scene) -> Member:
    found: Member = scene.values["member"]
    return found


def tokens(scene: Scene, name: str = "tokens") -> Tokens:
    found: Tokens = scene.values[name]
    return found


def profile_or_status(users: UserClient, access_token: str) -> tuple[dict[str, Any] | None, str]:
    """The profile, or what came instead: a status and message, or a connection error."""
    try:
        return users.me(access_token), "200"
    except UserApiError as error:
        return None, f"{error.status} {error.message}"
    except httpx.TransportError as error:
        return None, type(error).__name__


def refused(users: UserClient, access_token: str, *,
            never_accepted: bool = False) -> tuple[UserApiError | None, str]:
    """The gateway's 401 for this token, or what came instead; with ``never_accepted``, an
    accepted token fails the step at once."""
    try:
        users.me(access_token)
    except UserApiError as error:
        if error.status == 401:
            return error, f"401 {error.message}"
        return None, f"{error.status} {error.message}"
    except httpx.TransportError as error:
        return None, type(error).__name__
    assert not never_accepted, "the token was accepted: the session is alive again"
    return None, "200: still accepted"


def refresh_refused(users: UserClient, refresh_token: str) -> UserApiError:
    with pytest.raises(UserApiError) as refusal:
        users.refresh(refresh_token)
    assert refusal.value.status == 401, refusal.value
    return refusal.value


# -- Background ------------------------------------------------------------------------------


@given("a member has signed up and logged in through the gateway")
def signed_up_and_logged_in(users: UserClient, scene: Scene) -> None:
    who = Member(f"member-{uuid.uuid4().hex[:12]}@example.com",
                 f"pass {uuid.uuid4().hex} 1")  # fits the policy: long, letters and digits

    def sign_up() -> tuple[dict[str, Any] | None, str]:
        try:
            return users.signup(who.email, who.password, "Session Tester"), "201"
        except UserApiError as error:
            if error.status not in UNAVAILABLE:  # anything but "not routed yet" is a failure
                raise
            return None, f"{error.status} {error.message}"

    wait_for(sign_up, timeout=ROUTED_S, what="sign-up through the gateway", interval=0.5)
    scene.values["member"] = who
    scene.values["tokens"] = users.login(who.email, who.password)


# -- restarts --------------------------------------------------------------------------------


@when("the user service restarts")
def user_service_restarts(cloud: CloudSession, scene: Scene) -> None:
    cloud.client.replace(USER_SERVICE)


@when("the gateway restarts")
def gateway_restarts(cloud: CloudSession, scene: Scene) -> None:
    cloud.client.replace(GATEWAY)


@when("every task of the user service and of the gateway is replaced at once")
def all_tasks_replaced(cloud: CloudSession, scene: Scene) -> None:
    for service in (USER_SERVICE, GATEWAY):  # no old task survives to serve the next request
        cloud.client.replace(service)


@then(parsers.parse("the member's access token reads their profile again within {seconds:d} "
                    "seconds, never refused as unauthorized"))
def profile_read_again(users: UserClient, scene: Scene, seconds: int) -> None:
    def attempt() -> tuple[dict[str, Any] | None, str]:
        profile, seen = profile_or_status(users, tokens(scene).access_token)
        assert not seen.startswith(("401", "403")), f"the member was signed out: {seen}"
        return profile, seen

    profile = wait_for(attempt, timeout=seconds, what="the profile read with the same token",
                       interval=0.25)
    assert profile["email"] == member(scene).email


@then("the member's refresh token still gives them new tokens")
def refresh_still_works(users: UserClient, scene: Scene) -> None:
    renewed = users.refresh(tokens(scene).refresh_token)
    assert renewed.session_id == tokens(scene).session_id
    assert users.me(renewed.access_token)["email"] == member(scene).email


# -- rotation and reuse ----------------------------------------------------------------------


@when("the member refreshes their tokens")
def member_refreshes(users: UserClient, scene: Scene) -> None:
    scene.values["refreshed"] = users.refresh(tokens(scene).refresh_token)


@then("they get a new access token and a new refresh token for the same session")
def new_pair_same_session(scene: Scene) -> None:
    first, refreshed = tokens(scene), tokens(scene, "refreshed")
    assert refreshed.access_token != first.access_token
    assert refreshed.refresh_token != first.refresh_token
    assert refreshed.session_id == first.session_id


@then("the new access token reads their profile through the gateway")
def new_token_reads_profile(users: UserClient, scene: Scene) -> None:
    assert users.me(tokens(scene, "refreshed").access_token)["email"] == member(scene).email


@when("the member's first refresh token is presented again")
def first_refresh_token_again(users: UserClient, scene: Scene) -> None:
    try:
        scene.values["reuse"] = users.refresh(tokens(scene).refresh_token)
    except UserApiError as error:
        scene.values["reuse"] = error


@then("it is refused with 401")
def reuse_refused(scene: Scene) -> None:
    answer = scene.values["reuse"]
    assert isinstance(answer, UserApiError), f"the reused token was accepted: {answer}"
    assert answer.status == 401, answer


@then(parsers.parse("within {seconds:d} seconds the gateway refuses the access token from the "
                    "refresh with 401"))
def refreshed_token_refused(users: UserClient, scene: Scene, seconds: int) -> None:
    error = wait_for(lambda: refused(users, tokens(scene, "refreshed").access_token),
                     timeout=seconds, what="the session's newest access token refused")
    assert error.message == "token revoked"


@then("the refresh token from the refresh is refused as well")
def refreshed_refresh_token_refused(users: UserClient, scene: Scene) -> None:
    refresh_refused(users, tokens(scene, "refreshed").refresh_token)


# -- logout ----------------------------------------------------------------------------------


@when("the member logs out through the gateway")
def member_logs_out(users: UserClient, scene: Scene) -> None:
    users.logout(tokens(scene).access_token)


@then(parsers.parse("within {seconds:d} seconds the gateway refuses the member's access token "
                    "with 401"))
def access_token_refused(users: UserClient, scene: Scene, seconds: int) -> None:
    error = wait_for(lambda: refused(users, tokens(scene).access_token), timeout=seconds,
                     what="the logged-out access token refused")
    assert error.message == "token revoked"


@then("the member's refresh token is refused")
def refresh_token_refused(users: UserClient, scene: Scene) -> None:
    refresh_refused(users, tokens(scene).refresh_token)


@then("after the gateway restarts, the member's access token is still refused")
def still_refused_after_gateway_restart(cloud: CloudSession, users: UserClient,
                                        scene: Scene) -> None:
    gateway_restarts(cloud, scene)  # returns once it is ready: revocations loaded
    error = wait_for(lambda: refused(users, tokens(scene).access_token, never_accepted=True),
                     timeout=ROUTED_S, what="the restarted gateway answering for the token")
    assert error.message == "token revoked"


# -- expiry ----------------------------------------------------------------------------------


def set_lifetimes(config: ConfigRepository, scene: Scene, access_s: int, session_s: int) -> None:
    def edit(document: dict[str, Any]) -> None:
        sessions = document["user"]["sessions"]
        sessions["access-token-ttl-seconds"] = access_s
        sessions["refresh-token-ttl-seconds"] = session_s

    config.change(CONFIG_FILE, edit, f"user sessions: access {access_s} s, session {session_s} s")
    refresh_bus(scene)


def wait_lifetimes_applied(users: UserClient, scene: Scene, access_s: int) -> None:
    """Logins give tokens of the new lifetime: every instance has reloaded its settings."""
    who = member(scene)

    def attempt() -> tuple[bool | None, str]:
        issued = users.login(who.email, who.password)
        return (True if issued.expires_in == access_s else None), f"expiresIn {issued.expires_in}"

    wait_for(attempt, timeout=CONFIG_APPLIED_S, what=f"access tokens of {access_s} s",
             interval=0.5)


@pytest.fixture
def restore_user_config(config_repository: ConfigRepository, users: UserClient,
                        scene: Scene) -> Iterator[None]:
    """Put user-service.yml back and wait until it applies, so later scenarios get the
    usual lifetimes."""
    original = config_repository.file(CONFIG_FILE).read_text()
    yield
    if config_repository.file(CONFIG_FILE).read_text() == original:
        return
    config_repository.restore(CONFIG_FILE, original, "restore user-service.yml")
    refresh_bus(scene)
    access_s = config_repository.read(CONFIG_FILE)["user"]["sessions"][
        "access-token-ttl-seconds"]
    wait_lifetimes_applied(users, scene, int(access_s))


@given(parsers.parse("the user service gives access tokens of {access:d} second and sessions "
                     "of {session:d} seconds"))
def short_lifetimes(config_repository: ConfigRepository, restore_user_config: None,
                    users: UserClient, scene: Scene, access: int, session: int) -> None:
    set_lifetimes(config_repository, scene, access, session)
    wait_lifetimes_applied(users, scene, access)
    scene.values["session lifetime"] = session


@when("the member logs in and stays idle until the gateway refuses their access token")
def idle_until_expired(users: UserClient, scene: Scene) -> None:
    who = member(scene)
    logged_in = time.monotonic()
    scene.values["tokens"] = issued = users.login(who.email, who.password)
    session_s = scene.values["session lifetime"]
    bound = issued.expires_in + gateway_token_leeway_s(scene.model) + session_s + MARGIN_S

    def attempt() -> tuple[UserApiError | None, str]:
        error, seen = refused(users, issued.access_token)
        idle_long_enough = time.monotonic() - logged_in > session_s
        return (error if idle_long_enough else None), seen

    error = wait_for(attempt, timeout=bound, what="the access token expired", interval=0.5)
    assert error.message == "token expired"


@then("the member's refresh token is refused: the session has expired")
def session_expired(users: UserClient, scene: Scene) -> None:
    error = refresh_refused(users, tokens(scene).refresh_token)
    assert "unknown or expired" in error.message


@then("logging in again gives an access token that reads their profile")
def log_in_again(users: UserClient, scene: Scene) -> None:
    who = member(scene)
    fresh = users.login(who.email, who.password)
    assert users.me(fresh.access_token)["email"] == who.email
