"""The access-token and revocation contract between the user service and the gateway.

The user service issues RS256 access tokens and revokes them; the gateway verifies them at the
edge and refuses revoked ones without a Redis round trip per request. Both sides import the
names below so neither can drift:

- **Claims.** Every access token carries ``sub`` (user id), ``roles`` (list of role names),
  ``sid`` (login session id: one per login, shared by the refresh chain), ``jti`` (this token's
  id), ``iss``, ``iat`` and ``exp`` (seconds since the epoch).
- **Revocation.** Revoking a whole session (logout, password change) or one token writes
  ``revoked:sid:<sid>`` or ``revoked:jti:<jti>`` in the *session* Redis with a TTL of at least
  :data:`MAX_ACCESS_TOKEN_TTL_S` (after that every token it could match has expired anyway), then
  publishes ``sid:<sid>`` or ``jti:<jti>`` on the channel :data:`REVOCATION_CHANNEL`.
- **Readers** (the gateway) keep the revoked ids in memory: a SCAN of ``revoked:*`` at start and
  after every reconnect (a failover may have dropped messages), the channel in between.

The key is written before the message is published, in one MULTI/EXEC, so a reader that loads by
SCAN after subscribing cannot miss a revocation that happened in between.

**Durability.** The session Redis replicates asynchronously: a revocation acknowledged by the
primary can be lost if the primary fails before its replica has it, and the revoked session
would work again. A writer that must not let that happen passes ``replicas=1`` to `revoke`,
which then waits (``WAIT``, on the same connection) until the replica acknowledged the
revocation and everything written before it, and returns how many replicas did.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from redis.asyncio import Redis

ISSUER_DEFAULT = "come2us-user-service"
ALGORITHM = "RS256"
# The longest lifetime an access token may have; revocation keys must outlive it.
MAX_ACCESS_TOKEN_TTL_S = 15 * 60
REQUIRED_CLAIMS = ("sub", "roles", "sid", "jti", "iss", "iat", "exp")

REVOCATION_CHANNEL = "revocations"
REVOKED_KEY_PREFIX = "revoked:"
REVOKED_KEY_PATTERN = REVOKED_KEY_PREFIX + "*"

RevocationKind = Literal["sid", "jti"]
KINDS: tuple[RevocationKind, ...] = ("sid", "jti")


@dataclass(frozen=True)
class Revocation:
    """One revoked session (``sid``) or token (``jti``)."""

    kind: RevocationKind
    value: str

    @property
    def key(self) -> str:
        """The Redis key that records it: ``revoked:sid:<sid>``."""
        return f"{REVOKED_KEY_PREFIX}{self.kind}:{self.value}"

    @property
    def message(self) -> str:
        """What goes on :data:`REVOCATION_CHANNEL`: ``sid:<sid>``."""
        return f"{self.kind}:{self.value}"


def parse_message(message: str) -> Revocation | None:
    """A channel message as a Revocation, or None when it is not one (ignored, not fatal)."""
    kind, sep, value = message.partition(":")
    if not sep or not value or kind not in KINDS:
        return None
    return Revocation(kind, value)


def parse_key(key: str) -> Revocation | None:
    """A ``revoked:<kind>:<value>`` key as a Revocation, or None for anything else."""
    if not key.startswith(REVOKED_KEY_PREFIX):
        return None
    return parse_message(key[len(REVOKED_KEY_PREFIX):])


# The MULTI/EXEC of `revoke` as one script, so that WAIT can follow it on the same connection
# (WAIT inside MULTI does not block, and a pipeline's connection is its own).
_REVOKE_SCRIPT = """
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""


async def revoke(
    redis: Redis, revocation: Revocation, ttl_s: int = MAX_ACCESS_TOKEN_TTL_S, *,
    replicas: int = 0, replica_timeout_ms: int = 100,
) -> int | None:
    """Record a revocation and announce it, atomically (the writing side of the contract).

    The TTL is clamped up to :data:`MAX_ACCESS_TOKEN_TTL_S`: a shorter one could let a revoked
    token that is still valid become usable again.

    With ``replicas`` > 0, waits up to ``replica_timeout_ms`` for that many replicas to
    acknowledge the revocation (and every write the primary took before it) and returns how
    many did; fewer means a failover right now could still lose it. Without, returns None.
    """
    ttl = max(ttl_s, MAX_ACCESS_TOKEN_TTL_S)
    if replicas <= 0:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(revocation.key, "1", ex=ttl)
            pipe.publish(REVOCATION_CHANNEL, revocation.message)
            await pipe.execute()
        return None
    async with redis.pipeline(transaction=False) as pipe:
        pipe.eval(_REVOKE_SCRIPT, 1, revocation.key, ttl, REVOCATION_CHANNEL,
                  revocation.message)
        pipe.wait(replicas, replica_timeout_ms)
        _, acknowledged = await pipe.execute()
    return int(acknowledged)


@dataclass(frozen=True)
class AccessToken:
    token: str
    claims: dict[str, Any]


def load_private_key(private_key_pem: str) -> RSAPrivateKey:
    """The signing key, parsed once: parsing a PEM costs ~75 ms (RSA key checks), signing with
    a parsed key ~0.5 ms — so an issuer keeps the result instead of passing the PEM each time."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(f"the JWT private key must be an RSA key ({ALGORITHM})")
    return key


def issue_access_token(
    private_key_pem: str | RSAPrivateKey,
    *,
    subject: str,
    roles: Sequence[str],
    session_id: str,
    ttl_s: int,
    issuer: str = ISSUER_DEFAULT,
    now: float | None = None,
) -> AccessToken:
    """Sign an access token with every claim of the contract (the issuing side).

    The key is a PEM string or, much faster when signing many, `load_private_key`'s result.

    A lifetime above :data:`MAX_ACCESS_TOKEN_TTL_S` is refused: revocation keys live that long,
    so a longer-lived token could outlive its own revocation.
    """
    if not 0 < ttl_s <= MAX_ACCESS_TOKEN_TTL_S:
        raise ValueError(f"an access token lives 1..{MAX_ACCESS_TOKEN_TTL_S} s, not {ttl_s}")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": subject, "roles": list(roles), "sid": session_id, "jti": uuid.uuid4().hex,
        "iss": issuer, "iat": issued, "exp": issued + ttl_s,
    }
    return AccessToken(jwt.encode(claims, private_key_pem, algorithm=ALGORITHM), claims)
