"""Passwords: the policy a new one must meet, and argon2id hashing.

The policy is deliberately short (length, letters and digits, not the email) — long passwords
beat composition rules — and every rule has a name the client sees in the 422. The upper bound
on length keeps one request from buying minutes of hashing.

Hashing uses argon2id with parameters from configuration; the defaults are OWASP's minimum
(19 MiB, 2 passes, 1 lane), about 30 ms on this project's 2-core machines, chosen over
argon2-cffi's 64 MiB default (~250-400 ms here) because a 512 MiB task would run out of memory
with a handful of concurrent logins. The parameters travel inside each hash, so changing them
takes effect for new hashes at once and for old ones at their owner's next login (rehash).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.common.errors import Invalid

MIN_LENGTH = 10
MAX_LENGTH = 256


def check_policy(password: str, email: str) -> None:
    """Raise `Invalid` (field ``password``) naming the first rule the password breaks."""
    if len(password) < MIN_LENGTH:
        raise Invalid("password", "min_length",
                      f"a password has at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise Invalid("password", "max_length",
                      f"a password has at most {MAX_LENGTH} characters")
    if not (any(c.isalpha() for c in password) and any(c.isdigit() for c in password)):
        raise Invalid("password", "letters_and_digits",
                      "a password contains at least one letter and one digit")
    folded = password.strip().casefold()
    local_part = email.partition("@")[0].casefold()
    if folded in (email.casefold(), local_part):
        raise Invalid("password", "not_email", "a password may not be the email address")


@dataclass(frozen=True)
class HashParameters:
    time_cost: int = 2
    memory_kib: int = 19_456
    parallelism: int = 1

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_kib,
                              parallelism=self.parallelism)


@functools.cache
def _decoy() -> str:
    """Verified against when the email is unknown, so that "no such user" takes as long as
    "wrong password" and response times do not tell which emails have accounts."""
    return HashParameters().hasher().hash("decoy password 0")


class Passwords:
    """Hash and verify; the parameters are read on each use, so a config refresh applies."""

    def __init__(self, parameters: Callable[[], HashParameters] = HashParameters) -> None:
        self._parameters = parameters

    def hash(self, password: str) -> str:
        return self._parameters().hasher().hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        hasher = self._parameters().hasher()
        try:
            return hasher.verify(password_hash or _decoy(), password) \
                and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._parameters().hasher().check_needs_rehash(password_hash)
