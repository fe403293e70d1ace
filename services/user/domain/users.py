"""Members: who they are, what they may change about themselves, and how the rules read.

Everything here is plain data and plain checks; a broken rule raises `Invalid` naming the field
and the rule, which the API answers as a 422.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from email_validator import EmailNotValidError, validate_email

from services.common.errors import Invalid

DISPLAY_NAME_MAX = 50
EMAIL_MAX = 254  # RFC 5321's limit on a forward path
PHONE_DIGITS = range(7, 16)  # E.164 allows at most 15 digits; 7 is the shortest real plan
_PHONE_SHAPE = re.compile(r"\+?[0-9(][0-9 ()\-]*")


@dataclass(frozen=True)
class User:
    id: str
    email: str
    display_name: str | None
    phone: str | None
    roles: frozenset[str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StoredUser:
    """A user with the password hash: only sign-in ever needs the hash."""

    user: User
    password_hash: str


@dataclass(frozen=True)
class NewUser:
    id: str
    email: str
    password_hash: str
    display_name: str | None
    roles: frozenset[str]


@dataclass(frozen=True)
class ProfileChanges:
    """The fields a PATCH named; a field left out is not changed, None clears it."""

    display_name: str | None = None
    phone: str | None = None
    fields: frozenset[str] = frozenset()

    def apply_to(self, user: User) -> tuple[str | None, str | None]:
        return (self.display_name if "display_name" in self.fields else user.display_name,
                self.phone if "phone" in self.fields else user.phone)


class EmailTaken(Exception):
    """Another account has this email (the store's unique constraint said so)."""


RoleChange = Callable[[frozenset[str]], frozenset[str]]


class Users(Protocol):
    """Where members are kept (`services.user.repository.PostgresUsers`; fakes in tests)."""

    async def add(self, user: NewUser) -> User:
        """Store a new member; `EmailTaken` if the email is in use by another."""

    async def credentials(self, email: str) -> StoredUser | None:
        """The member with this (normalised) email and the hash, read from the writer."""

    async def get(self, user_id: str, *, fresh: bool = False) -> User | None:
        """A member by id: from the reader endpoint, or the writer when ``fresh``."""

    async def update_profile(self, user_id: str, changes: ProfileChanges) -> User | None:
        """Apply the changes in one transaction; None if there is no such member."""

    async def change_roles(self, user_id: str, change: RoleChange) -> User | None:
        """Replace the roles by ``change(current)`` under a row lock; None if no such member."""

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Store a new hash of the same password (stronger parameters)."""


UserLookup = Callable[[str], Awaitable[User | None]]


def new_user_id() -> str:
    """Ids are made here, before the insert, so a retried insert can recognise itself."""
    return str(uuid.uuid4())


def parse_user_id(raw: str) -> str | None:
    """The canonical form of a user id, or None when ``raw`` cannot be one (so: no such user)."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def normalise_email(raw: str) -> str:
    """The email as it is stored and compared: validated, lower-case, no surrounding blanks.

    Lower-casing the local part is stricter than RFC 5321 allows but what every mail provider
    does; it stops ``Kim@x.com`` and ``kim@x.com`` from being two accounts.
    """
    candidate = raw.strip()
    if len(candidate) > EMAIL_MAX:
        raise Invalid("email", "max_length", f"an email has at most {EMAIL_MAX} characters")
    try:
        valid = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as error:
        raise Invalid("email", "format", f"not a valid email address: {error}") from None
    return valid.normalized.lower()


def normalise_display_name(raw: str | None) -> str | None:
    """A trimmed display name of 1..50 printable characters, or None (no name)."""
    if raw is None:
        return None
    name = unicodedata.normalize("NFC", raw.strip())
    if not name:
        return None
    if len(name) > DISPLAY_NAME_MAX:
        raise Invalid("displayName", "max_length",
                      f"a display name has at most {DISPLAY_NAME_MAX} characters")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise Invalid("displayName", "printable",
                      "a display name may not contain control or invisible format characters")
    return name


def normalise_phone(raw: str | None) -> str | None:
    """Digits with an optional leading ``+`` (``010-1234-5678`` -> ``01012345678``), or None."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if not _PHONE_SHAPE.fullmatch(text):
        raise Invalid("phone", "format", "a phone number has digits, spaces, dashes and "
                                         "brackets only, with an optional leading +")
    digits = re.sub(r"\D", "", text)
    if len(digits) not in PHONE_DIGITS:
        raise Invalid("phone", "length", f"a phone number has {PHONE_DIGITS.start} to "
                                         f"{PHONE_DIGITS.stop - 1} digits")
    return ("+" if text.startswith("+") else "") + digits
