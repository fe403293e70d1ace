"""JWT verification at the edge: the accepted token, every way a token can be wrong, the cache."""

from __future__ import annotations

import time

import pytest

from services.gateway.auth import AuthError, TokenVerifier, bearer_token
from tests.gateway_tokens import ISSUER, KeyPair, tamper


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture(scope="module")
def other_keys() -> KeyPair:
    return KeyPair.generate()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def verifier(keys: KeyPair, clock: Clock | None = None, **options: float) -> TokenVerifier:
    return TokenVerifier(ISSUER, keys.public_pem, clock=clock or time.time,
                         leeway_s=options.get("leeway_s", 5.0),
                         cache_size=int(options.get("cache_size", 100)))


def test_good_token_gives_identity_and_headers(keys: KeyPair) -> None:
    token = keys.token(sub="7", roles=["USER", "SELLER"], sid="s-1", jti="j-1")
    identity = verifier(keys).verify(token.encode())
    assert (identity.sub, identity.roles, identity.sid, identity.jti) == \
        ("7", ("USER", "SELLER"), "s-1", "j-1")
    assert identity.headers == (b"x-user-id: 7\r\nx-user-roles: USER,SELLER\r\n"
                                b"x-user-session: s-1\r\n")


@pytest.mark.parametrize(("make", "reason"), [
    (lambda k, o: o.token(), "signature invalid"),                  # signed by another key
    (lambda k, o: tamper(k.token()), "signature invalid"),          # payload changed
    (lambda k, o: k.token(lifetime_s=-60), "expired"),              # beyond the leeway
    (lambda k, o: k.token(issuer="someone-else"), "issuer"),
    (lambda k, o: k.token(drop=("sid",)), "sid"),                   # the contract's claims
    (lambda k, o: "not.a.token", "malformed"),
    (lambda k, o: "garbage", "malformed"),
])
def test_bad_tokens_are_refused_with_a_reason(keys: KeyPair, other_keys: KeyPair, make: object,
                                              reason: str) -> None:
    token = make(keys, other_keys)  # type: ignore[operator]
    with pytest.raises(AuthError, match=reason):
        verifier(keys).verify(token.encode())


def test_expiry_within_leeway_is_accepted(keys: KeyPair) -> None:
    token = keys.token(lifetime_s=-2)
    assert verifier(keys, leeway_s=5).verify(token.encode()).sub == "42"


def test_missing_bearer_token() -> None:
    assert bearer_token(None) is None
    assert bearer_token(b"Basic dXNlcjpwYXNz") is None
    assert bearer_token(b"Bearer ") is None
    assert bearer_token(b"bearer abc.def.ghi") == b"abc.def.ghi"


def test_cache_skips_rsa_for_repeated_tokens(keys: KeyPair) -> None:
    check = verifier(keys)
    token = keys.token().encode()
    for _ in range(5):
        check.verify(token)
    assert check.verifications == 1


def test_cached_token_still_expires(keys: KeyPair) -> None:
    clock = Clock()
    check = verifier(keys, clock, leeway_s=1)
    token = keys.token(lifetime_s=30, now=clock.now).encode()
    check.verify(token)
    clock.now += 29
    check.verify(token)
    clock.now += 2.5
    with pytest.raises(AuthError, match="expired"):
        check.verify(token)
    assert check.verifications == 1


def test_rejections_are_cached_too(keys: KeyPair, other_keys: KeyPair) -> None:
    check = verifier(keys)
    forged = other_keys.token().encode()
    for _ in range(3):
        with pytest.raises(AuthError):
            check.verify(forged)
    assert check.verifications == 1


def test_cache_is_bounded_oldest_first(keys: KeyPair) -> None:
    check = verifier(keys, cache_size=2)
    first, second, third = (keys.token().encode() for _ in range(3))
    check.verify(first)
    check.verify(second)
    check.verify(third)       # evicts first, the oldest
    assert len(check.valid) == 2
    before = check.verifications
    check.verify(second)
    check.verify(third)
    assert check.verifications == before
    check.verify(first)       # verified again, once
    assert check.verifications == before + 1


def test_control_characters_in_claims_are_refused(keys: KeyPair) -> None:
    with pytest.raises(AuthError):
        verifier(keys).verify(keys.token(sub="7\r\nx-user-roles: ADMIN").encode())


def test_non_rsa_key_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(ValueError, match="RSA"):
        TokenVerifier(ISSUER, pem)
