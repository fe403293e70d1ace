"""Access tokens for features and benchmarks: good ones, and every kind of bad one.

Good tokens are signed with the workspace's key, exactly as the user service signs them, so the
gateway cannot tell them apart; the bad ones differ from a good one in one respect each, so a
401 for them proves the check of that one respect.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.tokens import ALGORITHM, AccessToken, issue_access_token
from stack.local.services import JWT_ISSUER, JWT_KEY
from stack.local.workspace import Workspace

DEFAULT_TTL_S = 300


def good_token(workspace: Workspace, subject: str | None = None,
               roles: tuple[str, ...] = ("customer",), ttl_s: int = DEFAULT_TTL_S,
               session_id: str | None = None) -> AccessToken:
    private_key, _ = workspace.keypair(JWT_KEY)
    return issue_access_token(
        private_key, subject=subject or f"user-{uuid.uuid4().hex[:8]}", roles=roles,
        session_id=session_id or uuid.uuid4().hex, ttl_s=ttl_s, issuer=JWT_ISSUER)


def _signed_by_another_key(workspace: Workspace) -> str:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = stranger.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    claims = good_token(workspace).claims
    return jwt.encode(claims, pem, algorithm=ALGORITHM)


def _expired(workspace: Workspace) -> str:
    an_hour_ago = time.time() - 3600
    return issue_access_token(
        workspace.keypair(JWT_KEY)[0], subject="expired-user", roles=("customer",),
        session_id=uuid.uuid4().hex, ttl_s=60, issuer=JWT_ISSUER, now=an_hour_ago).token


def _tampered(workspace: Workspace) -> str:
    """A good token whose payload now claims the admin role; the signature no longer fits."""
    header, payload, signature = good_token(workspace).token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _other_issuer(workspace: Workspace) -> str:
    return issue_access_token(
        workspace.keypair(JWT_KEY)[0], subject="someone", roles=("customer",),
        session_id=uuid.uuid4().hex, ttl_s=60, issuer="https://issuer.example.org").token


BAD_TOKENS: dict[str, Callable[[Workspace], str | None]] = {
    "no token": lambda workspace: None,
    "a token signed by another key": _signed_by_another_key,
    "an expired token": _expired,
    "a token whose payload was tampered with": _tampered,
    "a token from another issuer": _other_issuer,
}
