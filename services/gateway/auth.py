"""Access-token verification at the edge: RS256 signature, expiry, issuer — then cached.

An RS256 verification costs tens of microseconds, more than forwarding a request, and a client
sends the same token for minutes. So a verified token is kept (bounded) until it expires and
the next request only looks it up and compares ``exp`` with the clock. Rejections are cached as
well (a bad signature never becomes good), so a client replaying a forged token cannot make the
gateway pay for RSA on every request. Revocation is *not* cached here: it is checked on every
request against the in-memory revocation set.

The verified identity goes to the services as ``X-User-Id``, ``X-User-Roles`` (comma-separated)
and ``X-User-Session``; the gateway strips any such header a client sent.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from services.common.tokens import ALGORITHM, REQUIRED_CLAIMS

IDENTITY_HEADERS = (b"x-user-id", b"x-user-roles", b"x-user-session")


class AuthError(Exception):
    """The token cannot be accepted; ``str()`` is the reason given to the client."""


class Identity:
    """The verified claims the gateway needs, and the header lines it forwards."""

    __slots__ = ("exp", "headers", "jti", "roles", "sid", "sub")

    def __init__(self, claims: dict[str, Any]) -> None:
        self.sub = str(claims["sub"])
        roles = claims.get("roles") or []
        self.roles = tuple(str(role) for role in (roles if isinstance(roles, list) else [roles]))
        self.sid = str(claims["sid"])
        self.jti = str(claims["jti"])
        self.exp = float(claims["exp"])
        self.headers = b"".join(
            name + b": " + _header_value(value) + b"\r\n"
            for name, value in zip(IDENTITY_HEADERS,
                                   (self.sub, ",".join(self.roles), self.sid), strict=True))


def _header_value(value: str) -> bytes:
    """A claim as a header value; control characters (header injection) are refused."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise AuthError("token claims contain control characters")
    return value.encode("utf-8")


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    if authorization is None or len(authorization) < 8 \
            or authorization[:7].lower() != b"bearer ":
        return None
    token = authorization[7:].strip()
    return token or None


class TokenVerifier:
    """Verifies access tokens for one issuer and key; thread-unsafe by design (one event loop)."""

    def __init__(self, issuer: str, public_key_pem: str, *, leeway_s: float = 5.0,
                 cache_size: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self.leeway_s = leeway_s
        self.cache_size = cache_size
        self.clock = clock
        key = load_pem_public_key(public_key_pem.encode())
        if not isinstance(key, RSAPublicKey):
            raise ValueError("the JWT public key must be an RSA key (RS256)")
        self._key = key
        # Verified tokens, oldest first. Eviction is oldest-inserted-first rather than LRU: a
        # token still in use that falls out is verified again once (a plain dict lookup is
        # what the forwarding path does per request, see proxy.Exchange.dispatch).
        self.valid: dict[bytes, Identity] = {}
        self._rejected: OrderedDict[bytes, str] = OrderedDict()
        self.verifications = 0  # full RSA verifications done: the cache's effect, for tests

    def verify(self, token: bytes) -> Identity:
        """The identity in ``token``, or AuthError with the reason."""
        identity = self.valid.get(token)
        if identity is not None:
            if identity.exp + self.leeway_s <= self.clock():
                del self.valid[token]
                self._remember_rejection(token, "token expired")
                raise AuthError("token expired")
            return identity
        reason = self._rejected.get(token)
        if reason is not None:
            raise AuthError(reason)
        try:
            identity = self._verify_signature(token)
        except AuthError as error:
            self._remember_rejection(token, str(error))
            raise
        valid = self.valid
        valid[token] = identity
        if len(valid) > self.cache_size:
            del valid[next(iter(valid))]
        return identity

    def _remember_rejection(self, token: bytes, reason: str) -> None:
        self._rejected[token] = reason
        if len(self._rejected) > self.cache_size:
            self._rejected.popitem(last=False)

    def _verify_signature(self, token: bytes) -> Identity:
        self.verifications += 1
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": list(REQUIRED_CLAIMS), "verify_aud": False},
            )
            # PyJWT checks exp against its own clock; check ours too (tests inject time).
            if float(claims["exp"]) + self.leeway_s <= self.clock():
                raise jwt.ExpiredSignatureError("Signature has expired")
            return Identity(claims)
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidIssuerError:
            raise AuthError("token issuer not accepted") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthError(f"token lacks the {error.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature invalid") from None
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError):
            raise AuthError("token malformed") from None
