"""Access tokens for the gateway's tests and benchmark, shaped by the contract in
``services.common.tokens`` (the user service mints the real ones)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "come2us-user-service"


@dataclass(frozen=True)
class KeyPair:
    private: rsa.RSAPrivateKey
    public_pem: str

    @classmethod
    def generate(cls) -> KeyPair:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return cls(private, public_pem)

    def token(self, *, sub: str = "42", roles: list[str] | None = None, sid: str | None = None,
              jti: str | None = None, issuer: str = ISSUER, lifetime_s: float = 600,
              now: float | None = None, drop: tuple[str, ...] = (), **extra: Any) -> str:
        issued = time.time() if now is None else now
        claims: dict[str, Any] = {
            "sub": sub, "roles": roles if roles is not None else ["USER"],
            "sid": sid or uuid.uuid4().hex, "jti": jti or uuid.uuid4().hex, "iss": issuer,
            "iat": int(issued), "exp": int(issued + lifetime_s), **extra}
        for name in drop:
            claims.pop(name, None)
        return jwt.encode(claims, self.private, algorithm="RS256")


def tamper(token: str) -> str:
    """The same token with its payload changed (sub -> admin) and the old signature kept."""
    header, _payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return ".".join([header, forged, signature])
