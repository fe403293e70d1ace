"""Sessions' rules against a fake store: rotation, reuse detection, expiry, revocation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from user_fakes import FakeSessionStore, private_key_pem

from services.common.errors import Unauthorized
from services.common.tokens import ALGORITHM, REQUIRED_CLAIMS
from services.user.app import signer
from services.user.domain.sessions import Lifetimes, Sessions, TokenPair, digest
from services.user.domain.users import User

KEY = private_key_pem()
ISSUER = "test-issuer"
NOW = datetime.now(UTC)
MEMBER = User("5e2bcbfd-dfba-4add-8f89-62ee0f3fcafa", "kim@example.com", "Kim", None,
              frozenset({"customer", "seller"}), NOW, NOW)


class Harness:
    def __init__(self) -> None:
        self.store = FakeSessionStore()
        self.lifetimes = Lifetimes(access_s=300, refresh_s=3_600, replica_wait_ms=100)
        self.members: dict[str, User] = {MEMBER.id: MEMBER}

        async def current_user(user_id: str) -> User | None:
            return self.members.get(user_id)

        self.sessions = Sessions(self.store, signer(KEY, lambda: ISSUER),
                                 lambda: self.lifetimes, current_user)

    def run(self, work: Coroutine[Any, Any, TokenPair]) -> TokenPair:
        return asyncio.run(work)

    def refused(self, refresh_token: str) -> str:
        with pytest.raises(Unauthorized) as refused:
            asyncio.run(self.sessions.refresh(refresh_token))
        return refused.value.message


@pytest.fixture
def harness() -> Harness:
    return Harness()


def claims(pair: TokenPair) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(pair.access.token, options={"verify_signature": False},
                                            algorithms=[ALGORITHM])
    return decoded


def test_a_login_gives_an_access_token_of_the_contract_and_an_opaque_refresh_token(
        harness: Harness) -> None:
    pair = harness.run(harness.sessions.start(MEMBER))
    issued = claims(pair)
    assert set(REQUIRED_CLAIMS) <= set(issued)
    assert issued["sub"] == MEMBER.id
    assert issued["roles"] == ["customer", "seller"]
    assert issued["iss"] == ISSUER
    assert issued["exp"] == issued["iat"] + 300  # type: ignore[operator]
    assert pair.refresh_expires_in == 3_600
    assert len(pair.refresh_token) >= 43  # 256 bits, base64url
    assert MEMBER.id not in pair.refresh_token and pair.session_id not in pair.refresh_token
    assert digest(pair.refresh_token) in harness.store.issued  # only the digest is kept


def test_a_refresh_rotates_both_tokens_in_the_same_session(harness: Harness) -> None:
    first = harness.run(harness.sessions.start(MEMBER))
    second = harness.run(harness.sessions.refresh(first.refresh_token))
    assert second.refresh_token != first.refresh_token
    assert second.access.token != first.access.token
    assert second.session_id == first.session_id
    third = harness.run(harness.sessions.refresh(second.refresh_token))
    assert third.session_id == first.session_id
    assert harness.store.revoked == []


def test_a_reused_refresh_token_revokes_the_whole_family(harness: Harness) -> None:
    first = harness.run(harness.sessions.start(MEMBER))
    second = harness.run(harness.sessions.refresh(first.refresh_token))
    assert "already used" in harness.refused(first.refresh_token)
    assert harness.store.revoked == [first.session_id]  # the sid: every access token of it
    assert "ended" in harness.refused(second.refresh_token)  # the newest one is dead too


def test_of_two_racing_refreshes_with_one_token_exactly_one_wins(harness: Harness) -> None:
    first = harness.run(harness.sessions.start(MEMBER))

    async def race() -> list[TokenPair | BaseException]:
        return await asyncio.gather(harness.sessions.refresh(first.refresh_token),
                                    harness.sessions.refresh(first.refresh_token),
                                    return_exceptions=True)

    outcomes = asyncio.run(race())
    assert sum(isinstance(o, TokenPair) for o in outcomes) == 1
    assert sum(isinstance(o, Unauthorized) for o in outcomes) == 1
    assert harness.store.revoked == [first.session_id]  # the loser looks like a reuse


def test_an_unknown_refresh_token_is_refused_without_revoking_anything(
        harness: Harness) -> None:
    harness.run(harness.sessions.start(MEMBER))
    assert "unknown or expired" in harness.refused("never-issued")
    assert harness.store.revoked == []


def test_a_session_expires_after_its_lifetime_without_a_refresh(harness: Harness) -> None:
    pair = harness.run(harness.sessions.start(MEMBER))
    harness.store.now += 3_600
    assert "unknown or expired" in harness.refused(pair.refresh_token)


def test_each_refresh_renews_the_session_lifetime(harness: Harness) -> None:
    pair = harness.run(harness.sessions.start(MEMBER))
    for _ in range(3):
        harness.store.now += 3_000
        pair = harness.run(harness.sessions.refresh(pair.refresh_token))
    assert harness.store.now > 3_600  # older than one lifetime, still alive


def test_new_lifetimes_apply_to_the_next_token(harness: Harness) -> None:
    pair = harness.run(harness.sessions.start(MEMBER))
    harness.lifetimes = Lifetimes(access_s=1, refresh_s=3, replica_wait_ms=100)
    renewed = harness.run(harness.sessions.refresh(pair.refresh_token))
    assert claims(renewed)["exp"] == claims(renewed)["iat"] + 1  # type: ignore[operator]
    assert renewed.refresh_expires_in == 3


def test_a_refresh_carries_the_roles_the_member_has_now(harness: Harness) -> None:
    pair = harness.run(harness.sessions.start(MEMBER))
    harness.members[MEMBER.id] = User(MEMBER.id, MEMBER.email, None, None,
                                      frozenset({"customer", "seller", "admin"}), NOW, NOW)
    renewed = harness.run(harness.sessions.refresh(pair.refresh_token))
    assert claims(renewed)["roles"] == ["admin", "customer", "seller"]


def test_a_refresh_for_a_member_who_is_gone_ends_the_session(harness: Harness) -> None:
    pair = harness.run(harness.sessions.start(MEMBER))
    del harness.members[MEMBER.id]
    harness.refused(pair.refresh_token)
    assert harness.store.revoked == [pair.session_id]


def test_logout_revokes_the_session_and_its_refresh_token(harness: Harness) -> None:
    pair = harness.run(harness.sessions.start(MEMBER))
    asyncio.run(harness.sessions.end(pair.session_id, MEMBER.id, "logout"))
    assert harness.store.revoked == [pair.session_id]
    assert harness.store.waits == [100]  # a revocation waits for the replica
    assert "ended" in harness.refused(pair.refresh_token)
    asyncio.run(harness.sessions.end(pair.session_id, MEMBER.id, "logout"))  # harmless twice


def test_a_revocation_the_replica_did_not_confirm_is_logged(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    pair = harness.run(harness.sessions.start(MEMBER))
    harness.store.replicas = 0
    with caplog.at_level(logging.WARNING, logger="come2us.user.sessions"):
        asyncio.run(harness.sessions.end(pair.session_id, MEMBER.id, "logout"))
    assert "without replica confirmation" in caplog.text


def test_ending_all_of_a_members_sessions(harness: Harness) -> None:
    pairs = [harness.run(harness.sessions.start(MEMBER)) for _ in range(3)]
    assert asyncio.run(harness.sessions.end_all(MEMBER.id, "role removed")) == 3
    assert sorted(harness.store.revoked) == sorted(p.session_id for p in pairs)
    for pair in pairs:
        harness.refused(pair.refresh_token)
