"""The user service's HTTP API over fakes: status codes, bodies, headers, OpenAPI.

Requests carry the identity headers the gateway would forward after verifying a token, which
is all the service ever sees of a caller.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from user_fakes import FakeSessionStore, FakeUsers, private_key_pem

from services.common.errors import install_error_handlers
from services.user.app import install, signer
from services.user.domain.accounts import Accounts
from services.user.domain.passwords import HashParameters, Passwords
from services.user.domain.sessions import Lifetimes, Sessions

KEY = private_key_pem()
PASSWORD = "correct horse 42"
FAST = HashParameters(time_cost=1, memory_kib=8 * 1024, parallelism=1)


class Api:
    def __init__(self) -> None:
        self.users = FakeUsers()
        self.store = FakeSessionStore()
        sessions = Sessions(self.store, signer(KEY, lambda: "test-issuer"),
                            lambda: Lifetimes(300, 3_600, 100),
                            lambda user_id: self.users.get(user_id, fresh=True))
        app = FastAPI()
        install_error_handlers(app)
        install(app, Accounts(self.users, Passwords(lambda: FAST), sessions), sessions)
        self.app = app
        self.http = TestClient(app)

    def sign_up(self, email: str = "kim@example.com", **extra: Any) -> dict[str, Any]:
        response = self.http.post("/auth/signup", json={"email": email, "password": PASSWORD,
                                                        **extra})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def log_in(self, email: str = "kim@example.com") -> dict[str, Any]:
        response = self.http.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    @staticmethod
    def as_caller(tokens: dict[str, Any]) -> dict[str, str]:
        """The headers the gateway forwards for this access token."""
        claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
        return {"X-User-Id": claims["sub"], "X-User-Roles": ",".join(claims["roles"]),
                "X-User-Session": claims["sid"]}

    def admin(self) -> dict[str, str]:
        """A signed-in admin (made one directly in the store, as the manage command does)."""
        user = self.sign_up("admin@example.com")
        self.users.grant(user["id"], "admin")
        return self.as_caller(self.log_in("admin@example.com"))


@pytest.fixture
def api() -> Api:
    return Api()


def field_errors(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(e["field"], e["rule"]) for e in response.json()["errors"]]


def test_sign_up_answers_the_member_in_camel_case(api: Api) -> None:
    body = api.sign_up("Kim@Example.com", displayName=" Kim ")
    assert body["email"] == "kim@example.com"
    assert body["displayName"] == "Kim"
    assert body["roles"] == ["customer"]
    assert set(body) == {"id", "email", "displayName", "phone", "roles", "createdAt",
                         "updatedAt"}
    stored = api.users.rows[body["id"]]
    assert stored.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(("body", "expected"), [
    ({"email": "kim@example.com", "password": "short1"}, [("password", "min_length")]),
    ({"email": "kim@example.com", "password": "onlyletters!"},
     [("password", "letters_and_digits")]),
    ({"email": "kim2024@example.com", "password": "kim2024@example.com"},
     [("password", "not_email")]),
    ({"email": "not-an-email", "password": PASSWORD}, [("email", "format")]),
    ({"password": PASSWORD}, [("email", "missing")]),
    ({"email": "kim@example.com", "password": PASSWORD, "displayName": "\x07"},
     [("displayName", "printable")]),
])
def test_sign_up_refusals_name_the_field_and_the_rule(api: Api, body: dict[str, Any],
                                                      expected: list[tuple[str, str]]) -> None:
    assert field_errors(api.http.post("/auth/signup", json=body)) == expected
    assert api.users.rows == {}


def test_an_email_signs_up_once_whatever_its_case(api: Api) -> None:
    api.sign_up("kim@example.com")
    response = api.http.post("/auth/signup", json={"email": "KIM@example.com",
                                                   "password": PASSWORD})
    assert response.status_code == 409
    assert response.json()["status"] == 409


def test_login_answers_tokens_that_no_cache_keeps(api: Api) -> None:
    api.sign_up()
    response = api.http.post("/auth/login", json={"email": "kim@example.com",
                                                  "password": PASSWORD})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 300
    assert body["refreshExpiresIn"] == 3_600


@pytest.mark.parametrize(("email", "password"), [
    ("kim@example.com", "wrong horse 42"), ("nobody@example.com", PASSWORD),
    ("not an email", PASSWORD),
])
def test_login_refusals_do_not_say_what_was_wrong(api: Api, email: str, password: str) -> None:
    api.sign_up()
    response = api.http.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 401
    assert response.json()["message"] == "email or password is wrong"


def test_refresh_rotates_and_a_reused_token_revokes_the_session(api: Api) -> None:
    api.sign_up()
    first = api.log_in()
    second = api.http.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert second.status_code == 200, second.text
    assert second.headers["Cache-Control"] == "no-store"
    reused = api.http.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reused.status_code == 401
    assert api.store.revoked == [api.as_caller(first)["X-User-Session"]]
    newest = api.http.post("/auth/refresh",
                           json={"refreshToken": second.json()["refreshToken"]})
    assert newest.status_code == 401


def test_logout_ends_the_callers_session(api: Api) -> None:
    api.sign_up()
    tokens = api.log_in()
    caller = api.as_caller(tokens)
    response = api.http.post("/auth/logout", headers=caller)
    assert response.status_code == 204
    assert response.content == b""
    assert api.store.revoked == [caller["X-User-Session"]]
    refused = api.http.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert refused.status_code == 401


def test_logout_without_an_identity_or_a_session_is_401(api: Api) -> None:
    assert api.http.post("/auth/logout").status_code == 401
    no_session = api.http.post("/auth/logout", headers={"X-User-Id": "u1",
                                                        "X-User-Roles": "customer"})
    assert no_session.status_code == 401


def test_a_member_reads_and_patches_their_profile(api: Api) -> None:
    api.sign_up(displayName="Kim")
    caller = api.as_caller(api.log_in())
    assert api.http.get("/users/me", headers=caller).json()["displayName"] == "Kim"
    patched = api.http.patch("/users/me", headers=caller, json={"phone": "010-1234-5678"})
    assert patched.status_code == 200
    assert patched.json()["phone"] == "01012345678"
    assert patched.json()["displayName"] == "Kim"  # left out: unchanged
    cleared = api.http.patch("/users/me", headers=caller, json={"displayName": None})
    assert cleared.json()["displayName"] is None
    assert cleared.json()["phone"] == "01012345678"


@pytest.mark.parametrize(("patch", "expected"), [
    ({"phone": "call me"}, [("phone", "format")]),
    ({"displayName": "x" * 51}, [("displayName", "max_length")]),
    ({"displayName": 5}, [("displayName", "string_type")]),
])
def test_profile_patches_are_validated(api: Api, patch: dict[str, Any],
                                       expected: list[tuple[str, str]]) -> None:
    api.sign_up()
    caller = api.as_caller(api.log_in())
    assert field_errors(api.http.patch("/users/me", headers=caller, json=patch)) == expected


def test_profile_routes_need_an_identity(api: Api) -> None:
    assert api.http.get("/users/me").status_code == 401
    assert api.http.patch("/users/me", json={"phone": None}).status_code == 401


def test_a_forwarded_identity_without_a_member_is_404(api: Api) -> None:
    response = api.http.get("/users/me", headers={"X-User-Id": "user-1234",
                                                  "X-User-Roles": "customer"})
    assert response.status_code == 404


def test_members_read_themselves_admins_anyone_others_get_403(api: Api) -> None:
    kim = api.sign_up()
    lee = api.sign_up("lee@example.com")
    kim_caller = api.as_caller(api.log_in())
    assert api.http.get(f"/users/{kim['id']}", headers=kim_caller).status_code == 200
    assert api.http.get(f"/users/{lee['id']}", headers=kim_caller).status_code == 403
    admin = api.admin()
    assert api.http.get(f"/users/{lee['id']}", headers=admin).json()["email"] == \
        "lee@example.com"
    missing = "00000000-0000-4000-8000-000000000000"
    assert api.http.get(f"/users/{missing}", headers=admin).status_code == 404
    assert api.http.get(f"/users/{missing}", headers=kim_caller).status_code == 403
    assert field_errors(api.http.get("/users/42", headers=admin)) == [("user_id",
                                                                        "uuid_parsing")]


def test_only_an_admin_grants_seller(api: Api) -> None:
    kim = api.sign_up()
    kim_caller = api.as_caller(api.log_in())
    path = f"/users/{kim['id']}/roles"
    assert api.http.patch(path, headers=kim_caller, json={"add": ["seller"]}).status_code == 403
    granted = api.http.patch(path, headers=api.admin(), json={"add": ["seller"]})
    assert granted.status_code == 200, granted.text
    assert granted.json()["roles"] == ["customer", "seller"]
    assert api.store.revoked == []  # a grant ends no session: it comes with the next token


def test_removing_a_role_ends_the_members_sessions(api: Api) -> None:
    kim = api.sign_up()
    admin = api.admin()
    path = f"/users/{kim['id']}/roles"
    api.http.patch(path, headers=admin, json={"add": ["seller"]})
    tokens = api.log_in()
    removed = api.http.patch(path, headers=admin, json={"remove": ["seller"]})
    assert removed.json()["roles"] == ["customer"]
    assert api.store.revoked == [api.as_caller(tokens)["X-User-Session"]]
    refused = api.http.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert refused.status_code == 401


@pytest.mark.parametrize(("patch", "expected"), [
    ({"add": ["root"]}, [("add.0", "literal_error")]),
    ({"add": ["seller"], "remove": ["seller"]}, [("remove", "disjoint")]),
    ({"remove": ["customer"]}, [("remove", "not_empty")]),
])
def test_role_changes_are_validated(api: Api, patch: dict[str, Any],
                                    expected: list[tuple[str, str]]) -> None:
    kim = api.sign_up()
    response = api.http.patch(f"/users/{kim['id']}/roles", headers=api.admin(), json=patch)
    assert field_errors(response) == expected


def test_an_admin_cannot_remove_their_own_admin_role(api: Api) -> None:
    admin = api.admin()
    response = api.http.patch(f"/users/{admin['X-User-Id']}/roles", headers=admin,
                              json={"remove": ["admin"]})
    assert field_errors(response) == [("remove", "own_admin")]


def test_every_route_is_in_the_openapi_document_with_its_answers(api: Api) -> None:
    document = api.http.get("/openapi.json").json()
    operations = {(method.upper(), path): spec for path, methods in document["paths"].items()
                  for method, spec in methods.items()}
    assert set(operations) == {
        ("POST", "/auth/signup"), ("POST", "/auth/login"), ("POST", "/auth/refresh"),
        ("POST", "/auth/logout"), ("GET", "/users/me"), ("PATCH", "/users/me"),
        ("GET", "/users/{user_id}"), ("PATCH", "/users/{user_id}/roles")}
    for (method, path), spec in operations.items():
        success = [code for code in spec["responses"] if code.startswith("2")]
        assert success, f"{method} {path} documents no success"
        if success != ["204"]:
            assert "$ref" in str(spec["responses"][success[0]]), f"{method} {path}: no model"
        errors = [code for code in spec["responses"] if code[0] in "45"]
        for code in errors:
            assert "ErrorResponse" in str(spec["responses"][code]), f"{method} {path} {code}"
    schemas = document["components"]["schemas"]
    assert "displayName" in schemas["UserResponse"]["properties"]
