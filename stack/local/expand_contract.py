"""Expand, then contract: a schema change of the user service across two releases and colours.

Colours share PostgreSQL, and a colour's tasks migrate their service's schema when they start
— while the other colour still serves from the same tables. So a change happens in two
releases, each deployed blue/green:

1. **expand** (`build_expand`): the user service adds a *nullable* column ``users.locale``; its
   code writes it at sign-up (``ko-KR``) and returns it. The previous release never names the
   column, so its inserts (NULL) and reads keep working beside the new colour, after the
   switch, and after a rollback; its tasks even restart on the expanded schema
   (`services.common.database.Database.migrate` runs an older release on a newer schema).
2. **contract** (`build_contract`), a release later: rows the previous release wrote get the
   default and the column becomes ``NOT NULL``, which the previous release's inserts would
   break. Its migration says ``contracts = "expand_user_locale"``, so the local runtime refuses
   to deploy it beside any release that lacks the expansion (`stack.local.release_trees`).

The rule: expand → switch → retire the old colour → contract. `ColourTraffic` is the bounded
probe a feature points at the old colour to show that it never failed meanwhile.
"""

from __future__ import annotations

import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlalchemy import Connection, create_engine

from stack import bluegreen
from stack.local.bluegreen import LocalColours
from stack.local.controlplane import ControlPlaneClient
from stack.local.postgres import ADMIN_SECRET
from stack.local.release_trees import ReleaseTree, migrate_to, migration_script
from stack.local.user_client import UserClient
from stack.local.workspace import Workspace
from stack.model import Platform

SERVICE = "user"
SCHEMA = "user_service"  # services.user.app.SCHEMA, not imported: that pulls in the app
EXPANSION = "expand_user_locale"
CONTRACTION = "contract_user_locale"
DEFAULT_LOCALE = "ko-KR"
COLOUR_HEADER = "x-come2us-colour"
# The contraction's upgrade: members the previous release signed up get the default locale.
CONTRACT_UPGRADE = """\
op.execute(sa.text("UPDATE users SET locale = :locale WHERE locale IS NULL")
           .bindparams(locale="ko-KR"))  # DEFAULT_LOCALE
op.alter_column("users", "locale", nullable=False)
"""


def build_expand(source: Path, root: Path) -> ReleaseTree:
    """The checkout's code plus the expansion: a nullable ``users.locale`` the code writes at
    sign-up and returns with the member."""
    tree = ReleaseTree.copy_of(source, root)
    try:
        tree.add_migration(
            SERVICE, EXPANSION, "Expand: members get a locale (nullable, so the previous "
                                "release's inserts still work).",
            upgrade='op.add_column("users", sa.Column("locale", sa.Text(), nullable=True))',
            downgrade='op.drop_column("users", "locale")')
        user = "services/user"
        tree.replace(f"{user}/models.py", '    Column("phone", Text),\n',
                     '    Column("phone", Text),\n    Column("locale", Text),\n')
        tree.replace(f"{user}/domain/users.py",
                     "    roles: frozenset[str]\n    created_at: datetime\n"
                     "    updated_at: datetime\n",
                     "    roles: frozenset[str]\n    created_at: datetime\n"
                     "    updated_at: datetime\n    locale: str | None = None\n")
        tree.replace(f"{user}/repository.py",
                     "users.c.roles, users.c.created_at, users.c.updated_at)",
                     "users.c.roles, users.c.created_at, users.c.updated_at, users.c.locale)")
        tree.replace(f"{user}/repository.py",
                     'created_at=data["created_at"], updated_at=data["updated_at"])',
                     'created_at=data["created_at"], updated_at=data["updated_at"],\n'
                     '                locale=data["locale"])')
        tree.replace(f"{user}/repository.py",
                     "display_name=user.display_name, roles=sorted(user.roles))",
                     f"display_name=user.display_name, roles=sorted(user.roles),\n"
                     f"                        locale=\"{DEFAULT_LOCALE}\")")
        tree.replace(f"{user}/api/schemas.py",
                     "    updated_at: datetime\n\n    @classmethod\n    def of(cls, user: User)",
                     "    updated_at: datetime\n    locale: str | None = None\n\n"
                     "    @classmethod\n    def of(cls, user: User)")
        tree.replace(f"{user}/api/schemas.py",
                     "created_at=user.created_at, updated_at=user.updated_at)",
                     "created_at=user.created_at, updated_at=user.updated_at,\n"
                     "                   locale=user.locale)")
    except Exception:
        tree.remove()
        raise
    return tree


def build_contract(source: Path, root: Path) -> ReleaseTree:
    """The expansion's code plus the contraction: every member has a locale, the column is
    required. Deployable only once no release without the expansion runs."""
    tree = build_expand(source, root)
    try:
        tree.add_migration(
            SERVICE, CONTRACTION, "Contract: every member has a locale (the previous release, "
                                  "which inserted none, is retired).",
            upgrade=CONTRACT_UPGRADE,
            downgrade='op.alter_column("users", "locale", nullable=True)',
            contracts=EXPANSION)
        tree.replace("services/user/models.py", '    Column("locale", Text),\n',
                     '    Column("locale", Text, nullable=False),\n')
    except Exception:
        tree.remove()
        raise
    return tree


def checkout_head(source: Path) -> str:
    """The user service's newest revision in ``source`` (the schema the checkout's code wants)."""
    heads = migration_script(source / "services" / SERVICE).get_heads()
    return heads[0]


@dataclass(frozen=True)
class SchemaFacts:
    """What the user service's schema looks like now."""

    revisions: tuple[str, ...]
    locale_column: str  # "absent", "nullable" or "required"

    @classmethod
    def read(cls, conn: psycopg.Connection[Any]) -> SchemaFacts:
        revisions = tuple(r[0] for r in conn.execute(
            sql.SQL("SELECT version_num FROM {}.alembic_version ORDER BY 1").format(
                sql.Identifier(SCHEMA))))
        row = conn.execute(
            "SELECT is_nullable FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'users' AND column_name = 'locale'", (SCHEMA,)).fetchone()
        column = "absent" if row is None else ("nullable" if row[0] == "YES" else "required")
        return cls(revisions, column)


@dataclass
class Outcome:
    """One request of the probe: when, what, the answer and the colour that gave it."""

    at: float
    action: str
    status: int  # 0: no answer (connection error or timeout)
    colour: str
    detail: str = ""
    stale: bool = False  # a read that returned the write before the last one


@dataclass
class ColourTraffic:
    """A member's bounded loop of writes and reads (PATCH then GET ``/api/users/me``) sent
    through the ALB with the preview header, so every request goes to ``colour`` whichever
    colour the listener forwards to; each read must return what the write before it wrote.

    Bounded in count (``max_requests``) and time (``max_s``); paced at ``rate`` requests per
    second so a 2-core machine running other clouds is not swamped.
    """

    model: Platform
    colour: str
    access_token: str
    rate: float = 20.0
    max_requests: int = 4000
    max_s: float = 300.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"traffic-{self.colour}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> list[Outcome]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
        return list(self.outcomes)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.access_token}",
                   self.model.load_balancer.preview_header: self.colour}
        interval = 1.0 / self.rate
        deadline = time.monotonic() + self.max_s
        written: set[str] = set()
        with httpx.Client(base_url=self.model.load_balancer.url, headers=headers,
                          timeout=5.0) as http:
            for n in range(self.max_requests // 2):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                started = time.monotonic()
                name = f"probe {n} {uuid.uuid4().hex[:6]}"
                written.add(name)
                wrote = self._send(http, "write", "PATCH", json={"displayName": name})
                if wrote.status == 200:
                    self._send(http, "read", "GET", expect=(name, written))
                self._stop.wait(max(0.0, 2 * interval - (time.monotonic() - started)))

    def _send(self, http: httpx.Client, action: str, method: str,
              expect: tuple[str, set[str]] | None = None, **kwargs: Any) -> Outcome:
        """One request; a read must return the name just written, or (counted as stale: the
        user service reads profiles from the standby, which may trail the writer by its
        replay delay) one written before; anything else is a failure."""
        at = time.time()
        try:
            response = http.request(method, "/api/users/me", **kwargs)
        except httpx.HTTPError as err:
            outcome = Outcome(at, action, 0, "", f"{type(err).__name__}: {err}")
        else:
            detail, stale = "" if response.is_success else response.text[:200], False
            if response.is_success and expect is not None:
                read, (latest, written) = response.json().get("displayName"), expect
                stale = read != latest and read in written
                if read != latest and not stale:
                    detail = f"read {read!r}, which this probe never wrote (last {latest!r})"
            outcome = Outcome(at, action, response.status_code,
                              response.headers.get(COLOUR_HEADER, ""), detail, stale)
        self.outcomes.append(outcome)
        return outcome


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts by action, status and serving colour, and the failures (first five)."""
    failures = [o for o in outcomes if o.status != 200 or o.detail]
    return {
        "requests": len(outcomes),
        "by": dict(Counter(f"{o.action} {o.status} {o.colour or '-'}" for o in outcomes)),
        "stale_reads": sum(1 for o in outcomes if o.stale),
        "failures": len(failures),
        "first_failures": [f"{o.action} {o.status} {o.colour}: {o.detail}"
                           for o in failures[:5]],
    }


def member_client(model: Platform, colour: str | None = None) -> UserClient:
    """A member's client through the ALB; with ``colour``, every request carries the preview
    header, so that colour answers whichever one the listener forwards to."""
    users = UserClient(model)
    if colour is not None:
        users.http.headers[model.load_balancer.preview_header] = colour
    return users


@contextmanager
def schema_session(model: Platform, workspace: Workspace) -> Iterator[Connection]:
    """A connection to the user service's schema on the writer, holding the advisory lock
    tasks take to migrate it (`Database.migrate`), so no task migrates meanwhile."""
    url = model.data.postgres.writer_url(workspace.secret(ADMIN_SECRET))
    lock_id = zlib.crc32(SCHEMA.encode())
    with psycopg.connect(url, autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
        engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(
            url, options=f"-c search_path={SCHEMA},public"))
        try:
            with engine.begin() as connection:
                yield connection
        finally:
            engine.dispose()
            lock.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))


def put_schema_back(model: Platform, workspace: Workspace, tree: ReleaseTree,
                    revision: str) -> SchemaFacts:
    """Move the user service's schema to ``revision`` with ``tree``'s migrations (which must
    know every revision between), e.g. back to the checkout's head once its release serves."""
    with schema_session(model, workspace) as connection:
        migrate_to(tree.service(SERVICE), connection, SCHEMA, revision)
    with psycopg.connect(model.data.postgres.writer_url(workspace.secret(ADMIN_SECRET)),
                         autocommit=True) as conn:
        return SchemaFacts.read(conn)


def serving_release(control: ControlPlaneClient) -> tuple[str, str, Path]:
    """(colour, release label, its tree) of what the listener forwards to now."""
    deployment = control.deployment()
    colour = str(deployment["active"])
    label = str(deployment["colours"][colour])
    trees = {r["label"]: Path(r["directory"]) for r in control.status()["releases"]}
    return colour, label, trees[label]


def restore_platform(control: ControlPlaneClient, model: Platform, workspace: Workspace,
                     label: str, directory: Path, tree: ReleaseTree | None) -> SchemaFacts:
    """Leave the platform as a scenario found it: release ``label`` (its tree ``directory``)
    serving from one colour, the user service's schema at that tree's head. ``tree`` holds
    every migration the scenario's releases applied (to go back down). Each move keeps the
    serving code working: the schema is widened again before the old release comes back, and
    narrowed only once it serves alone."""
    platform = LocalColours(control, model, directory)
    state = platform.state()
    if state is not None and state.idle is not None:
        bluegreen.retire(platform)  # the idle colour (a deploy stopped half-way)
    with psycopg.connect(model.data.postgres.writer_url(workspace.secret(ADMIN_SECRET)),
                         autocommit=True) as conn:
        facts = SchemaFacts.read(conn)
    if tree is not None and facts.locale_column == "required":
        put_schema_back(model, workspace, tree, EXPANSION)
    state = platform.state()
    if state is None or state.releases.get(state.active) != label:
        result = bluegreen.promote(platform, label)
        if result.outcome not in (bluegreen.Outcome.PROMOTED, bluegreen.Outcome.CREATED):
            raise RuntimeError(f"release {label} did not come back: {result.outcome} "
                               f"{result.reason}")
    if tree is None:
        with psycopg.connect(model.data.postgres.writer_url(workspace.secret(ADMIN_SECRET)),
                             autocommit=True) as conn:
            return SchemaFacts.read(conn)
    return put_schema_back(model, workspace, tree, checkout_head(directory))
