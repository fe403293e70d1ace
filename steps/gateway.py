"""Steps of features/gateway.feature."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from pytest_bdd import given, parsers, then, when

from services.common.tokens import AccessToken, Revocation
from stack.local import clients
from stack.local.config_repo import ConfigRepository, filter_args, route
from stack.local.session import CloudSession
from stack.local.token_forge import BAD_TOKENS
from stack.waiting import wait_for
from steps.common import Scene
from steps.configuration import ECHO_ROUTE, GATEWAY_FILE, RATE_LIMITER
from steps.discovery import ECHO_PATH

ERROR_FIELDS = {"status", "error", "message", "requestId", "path"}


def call(scene: Scene, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with clients.gateway(scene.model) as gateway:
        return gateway.get(path, headers=headers)


def assert_error_shape(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= ERROR_FIELDS, body
    assert body["status"] == status
    assert body["requestId"] == response.headers["X-Request-Id"]


@when("I call the echo route holding a valid token")
def call_with_valid_token(scene: Scene, caller: AccessToken) -> None:
    scene.values["response"] = call(scene, ECHO_PATH, caller.token)


@then("the echo instance answers with my user id and roles, and the request id I was given")
def identity_forwarded(scene: Scene, caller: AccessToken) -> None:
    response: httpx.Response = scene.values["response"]
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["identity"]["x-user-id"] == caller.claims["sub"]
    assert body["identity"]["x-user-roles"] == ",".join(caller.claims["roles"])
    assert body["requestId"] == response.headers["X-Request-Id"]


@when(parsers.parse("I call the echo route with {token}"))
def call_with_bad_token(cloud: CloudSession, scene: Scene, token: str) -> None:
    scene.values["response"] = call(scene, ECHO_PATH, BAD_TOKENS[token](cloud.workspace))


@then(parsers.parse("the gateway answers {status:d} with the JSON error shape"))
def error_shape(scene: Scene, status: int) -> None:
    assert_error_shape(scene.values["response"], status)


@given("I hold a valid token that the echo route accepts")
def token_accepted(scene: Scene, caller: AccessToken) -> None:
    assert call(scene, ECHO_PATH, caller.token).status_code == 200


@when("my session is revoked in the session store")
def revoke_session(scene: Scene, caller: AccessToken) -> None:
    clients.revoke(scene.model, Revocation("sid", caller.claims["sid"]))


@then(parsers.parse("within {seconds:d} seconds the same token gets 401"))
def refused_after_revocation(scene: Scene, caller: AccessToken, seconds: int) -> None:
    def attempt() -> tuple[httpx.Response | None, str]:
        response = call(scene, ECHO_PATH, caller.token)
        return (response if response.status_code == 401 else None), str(response.status_code)

    assert_error_shape(wait_for(attempt, timeout=seconds, what="the revoked token refused"),
                       401)


@when("I send twice the echo route's burst capacity of requests at once")
def flood(scene: Scene, caller: AccessToken, config_repository: ConfigRepository) -> None:
    args = filter_args(route(config_repository.read(GATEWAY_FILE), ECHO_ROUTE), RATE_LIMITER)
    # Twice the bucket, plus what it refills in the second the burst takes on a slow machine.
    count = 2 * int(args["burstCapacity"]) + int(args["replenishRate"])
    headers = {"Authorization": f"Bearer {caller.token}"}
    with clients.gateway(scene.model) as gateway, ThreadPoolExecutor(max_workers=16) as pool:
        scene.values["responses"] = list(
            pool.map(lambda _: gateway.get(ECHO_PATH, headers=headers), range(count)))


@then("some are answered 429 with a Retry-After header and the JSON error shape")
def some_limited(scene: Scene) -> None:
    responses: list[httpx.Response] = scene.values["responses"]
    limited = [r for r in responses if r.status_code == 429]
    assert limited, sorted({r.status_code for r in responses})
    others = [r.json() for r in responses if r.status_code not in (200, 429)]
    assert not others, others[:3]
    for response in limited:
        assert int(response.headers["Retry-After"]) >= 1
        assert_error_shape(response, 429)


@when("I call a path that no route matches")
def call_unknown(scene: Scene, caller: AccessToken) -> None:
    scene.values["response"] = call(scene, "/api/no-such-resource/1", caller.token)
