"""Operator commands: create members directly in the database (the first admin, seed data).

    eval $(come2us env)   # COME2US_DATABASE_URL (and _READER_URL) of the local cloud
    python -m services.user.manage create-admin --email admin@example.com
    python -m services.user.manage create-user --email s@example.com --role seller

The password comes from ``--password``, else ``$COME2US_USER_PASSWORD``, else a prompt. The
schema is migrated first, so this works before the service ever ran. Running it again for an
existing email adds the roles and leaves the password alone; each run prints one JSON line
(``id``, ``email``, ``roles``, ``created``). Sign-up rules apply (password policy, email).
`ensure_user` is the same thing for Python callers (the seeding command).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from services.common.database import Database
from services.common.errors import ServiceError
from services.common.identity import ROLES
from services.user.app import MIGRATIONS, SCHEMA
from services.user.domain.passwords import Passwords, check_policy
from services.user.domain.roles import CUSTOMER, RoleChange
from services.user.domain.users import (
    EmailTaken,
    NewUser,
    new_user_id,
    normalise_display_name,
    normalise_email,
)
from services.user.repository import PostgresUsers

DATABASE_URL = "COME2US_DATABASE_URL"
READER_URL = "COME2US_DATABASE_READER_URL"
PASSWORD = "COME2US_USER_PASSWORD"  # noqa: S105 - the name of a variable, not a password
EXIT_USAGE = 64


@dataclass(frozen=True)
class Ensured:
    id: str
    email: str
    roles: tuple[str, ...]
    created: bool

    def json(self) -> str:
        return json.dumps({"id": self.id, "email": self.email, "roles": list(self.roles),
                           "created": self.created})


async def ensure_user(database: Database, email: str, password: str, roles: Sequence[str],
                      display_name: str | None = None) -> Ensured:
    """A member with at least these roles: created (with the password) or completed."""
    members = PostgresUsers(database)
    wanted = RoleChange(add=frozenset(roles) | {CUSTOMER}).add  # refuses unknown roles
    normalised = normalise_email(email)
    stored = await members.credentials(normalised)
    if stored is None:
        check_policy(password, normalised)
        password_hash = await asyncio.to_thread(Passwords().hash, password)
        try:
            user = await members.add(NewUser(new_user_id(), normalised, password_hash,
                                             normalise_display_name(display_name), wanted))
            return Ensured(user.id, user.email, tuple(sorted(user.roles)), True)
        except EmailTaken:  # created meanwhile by someone else: complete its roles below
            stored = await members.credentials(normalised)
            assert stored is not None
    completed = await members.change_roles(stored.user.id, lambda current: current | wanted)
    assert completed is not None
    return Ensured(completed.id, completed.email, tuple(sorted(completed.roles)), False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.user.manage",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("create-admin", "create (or promote) an admin"),
                            ("create-user", "create (or complete) a member")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--email", required=True)
        command.add_argument("--password", help=f"default: ${PASSWORD}, else a prompt")
        command.add_argument("--display-name")
        if name == "create-user":
            command.add_argument("--role", action="append", default=[], choices=ROLES,
                                 help="repeat for several; customer is always given")
    return parser


def _password(given: str | None) -> str:
    password = given or os.environ.get(PASSWORD)
    if password:
        return password
    if not sys.stdin.isatty():
        raise SystemExit(f"no password: pass --password or set {PASSWORD}")
    return getpass.getpass("password: ")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    writer = os.environ.get(DATABASE_URL)
    if not writer:
        print(f"{DATABASE_URL} is not set (locally: eval $(come2us env))", file=sys.stderr)
        return EXIT_USAGE
    roles = ["admin"] if args.command == "create-admin" else args.role
    password = _password(args.password)
    database = Database(writer, os.environ.get(READER_URL) or writer, SCHEMA, pool_size=1)
    database.migrate(MIGRATIONS)

    async def run() -> Ensured:
        try:
            return await ensure_user(database, args.email, password, roles, args.display_name)
        finally:
            await database.close()

    try:
        ensured = asyncio.run(run())
    except ServiceError as error:
        print(f"refused: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    print(ensured.json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
