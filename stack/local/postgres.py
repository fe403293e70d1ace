"""RDS PostgreSQL Multi-AZ, locally: a writer in AZ-a and a synchronous hot standby in AZ-b.

The standby is cloned from the writer with pg_basebackup through a physical replication slot,
serves reads (the reader endpoint prefers it), and acknowledges every commit before the writer
does (synchronous_standby_names), so no acknowledged write is lost when the writer's AZ fails.
Synchronous commit is switched on only once the standby streams: set earlier, every commit on
the writer would wait for a standby that does not exist yet (../shared/NOTES.md).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from stack.local.backend import Backend
from stack.local.component import Component, ComponentError, Health, ProcessSpec
from stack.local.datadir import DataDir
from stack.local.workspace import Workspace
from stack.model import Node, Platform, PostgresCluster
from stack.waiting import wait_for

POSTGRES_OS_USER = "postgres"
# Names under which Workspace.secret() keeps the generated passwords (not passwords).
ADMIN_SECRET = "postgres-admin-password"  # noqa: S105
REPLICATION_SECRET = "postgres-replication-password"  # noqa: S105
PG_HBA = """\
# Written by come2us: password logins from loopback only; no Unix sockets are opened.
host  all          all  127.0.0.0/8  scram-sha-256
host  replication  all  127.0.0.0/8  scram-sha-256
"""


@cache
def postgres_bindir() -> Path:
    """The newest PostgreSQL server installed from Debian's packages (or on PATH)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent
    raise ComponentError(
        "PostgreSQL server binaries were not found (looked in /usr/lib/postgresql/*/bin and "
        "on PATH). Install them with `sudo apt-get install postgresql`, or run `make up`, "
        "which installs what is missing."
    )


def server_major_version() -> str:
    return postgres_bindir().parent.name


def _run_as_server_user() -> str | None:
    """PostgreSQL refuses to run as root; as root we run it as the Debian `postgres` user."""
    return POSTGRES_OS_USER if os.geteuid() == 0 else None


def _hand_over(path: Path, mode: int = 0o700) -> None:
    user = _run_as_server_user()
    if user:
        account = pwd.getpwnam(user)
        os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(mode)


def _run_tool(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run a PostgreSQL client tool as the server's user and raise with its stderr on failure."""
    user = _run_as_server_user()
    kwargs: dict[str, Any] = {}
    if user:
        account = pwd.getpwnam(user)
        kwargs.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
    result = subprocess.run(
        argv, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False,
        cwd="/", timeout=120, **kwargs,
    )
    if result.returncode != 0:
        raise ComponentError(f"{what} failed ({result.returncode}): {result.stderr.strip()}")


def _check_data_dir(path: Path) -> str | None:
    version_file = path / "PG_VERSION"
    if not version_file.exists():
        return "PG_VERSION is missing, so this is not a PostgreSQL data directory"
    found = version_file.read_text().strip()
    if found != server_major_version():
        return (f"it was created by PostgreSQL {found} but the installed server is "
                f"{server_major_version()}; upgrade it with pg_upgrade or purge it")
    if not (path / "global" / "pg_control").exists():
        return "global/pg_control is missing"
    return None


class PostgresNode(Component):
    """What the writer and the standby share: the server command line and the probe."""

    kind = "postgres"

    def __init__(self, node: Node, cluster: PostgresCluster, workspace: Workspace,
                 backend: Backend) -> None:
        super().__init__(node, cluster.timeouts, workspace, backend)
        self.cluster = cluster

    @property
    def admin_password(self) -> str:
        return self.workspace.secret(ADMIN_SECRET)

    def process(self) -> ProcessSpec:
        settings = {
            "listen_addresses": str(self.node.host),
            "port": str(self.node.port),
            "unix_socket_directories": "",
            "max_connections": str(self.cluster.max_connections),
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "hot_standby": "on",
            "hot_standby_feedback": "on",
            "wal_retrieve_retry_interval": "100ms",
            "password_encryption": "scram-sha-256",
            "logging_collector": "off",
            "log_line_prefix": f"%m [%p] {self.name} ",
            "cluster_name": self.name,
        }
        argv = [str(postgres_bindir() / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        # SIGINT is PostgreSQL's "fast" shutdown: SIGTERM would wait for clients to leave.
        return ProcessSpec(tuple(argv), user=_run_as_server_user(), stop_signal=signal.SIGINT)

    def connect(self, dbname: str = "postgres", timeout: int = 1) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=str(self.node.host), port=self.node.port, user=self.cluster.admin_user,
            password=self.admin_password, dbname=dbname, connect_timeout=timeout,
            autocommit=True,
        )

    def probe(self) -> Health:
        try:
            with self.connect() as conn:
                in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if in_recovery and in_recovery[0]:
                    return self._probe_standby(conn)
                return self._probe_writer(conn)
        except psycopg.Error as err:
            return Health(False, _first_line(err))

    def _probe_writer(self, conn: psycopg.Connection[Any]) -> Health:
        rows = conn.execute(
            "SELECT application_name, state, sync_state FROM pg_stat_replication"
        ).fetchall()
        standbys = ", ".join(f"{name} {state} ({sync})" for name, state, sync in rows)
        return Health(True, f"read-write; standbys: {standbys or 'none'}", role="writer")

    def _probe_standby(self, conn: psycopg.Connection[Any]) -> Health:
        row = conn.execute("SELECT status, sender_host FROM pg_stat_wal_receiver").fetchone()
        if row is None:
            return Health(False, "in recovery but not receiving WAL", role="standby")
        status, sender = row
        return Health(status == "streaming", f"hot standby, WAL {status} from {sender}",
                      role="standby")


class PostgresWriter(PostgresNode):
    """The writer: created with initdb, owner of the application database and replication role."""

    def prepare(self) -> None:
        DataDir(self.data_dir, self.name, self.kind).claim(self._initdb, _check_data_dir)

    def _initdb(self, scratch: Path) -> None:
        _hand_over(scratch)
        with tempfile.TemporaryDirectory(dir=self.workspace.run) as secret_dir:
            pwfile = Path(secret_dir) / "pw"
            pwfile.write_text(self.admin_password + "\n")
            _hand_over(Path(secret_dir))
            _hand_over(pwfile, 0o600)
            _run_tool(
                [str(postgres_bindir() / "initdb"), "-D", str(scratch),
                 "-U", self.cluster.admin_user, f"--pwfile={pwfile}",
                 "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8",
                 "--no-instructions"],
                f"initdb for {self.name}",
            )
        hba = scratch / "pg_hba.conf"
        hba.write_text(PG_HBA)
        _hand_over(hba, 0o600)

    def after_ready(self) -> None:
        """Create the replication role and the application database, once.

        Only ever creates: on a restart the writer already waits for its synchronous standby,
        so any write here (even re-setting a password) would block until the standby is back.
        """
        with self.connect() as conn:
            role = self.cluster.replication_user
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} WITH REPLICATION LOGIN PASSWORD {}").format(
                    sql.Identifier(role),
                    sql.Literal(self.workspace.secret(REPLICATION_SECRET))))
            database = self.cluster.database
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (database,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


class PostgresStandby(PostgresNode):
    """The synchronous standby: a base backup of the writer that keeps streaming from it."""

    def __init__(self, node: Node, cluster: PostgresCluster, writer: PostgresWriter,
                 workspace: Workspace, backend: Backend) -> None:
        super().__init__(node, cluster, workspace, backend)
        self.writer = writer

    @property
    def depends_on(self) -> tuple[str, ...]:
        return (self.writer.name,)

    def prepare(self) -> None:
        DataDir(self.data_dir, self.name, self.kind).claim(self._base_backup, _check_data_dir)

    def _base_backup(self, scratch: Path) -> None:
        slot = self.cluster.slot
        with self.writer.connect() as conn:
            # A slot left by an earlier standby (its data purged) would make `-C` fail; an
            # inactive one holds nothing a new clone needs.
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s AND NOT active", (slot,))
        _hand_over(scratch)
        writer = self.writer.node
        _run_tool(
            [str(postgres_bindir() / "pg_basebackup"),
             "-d", (f"host={writer.host} port={writer.port} "
                    f"user={self.cluster.replication_user} application_name={slot}"),
             "-D", str(scratch), "-R", "-X", "stream", "-C", "-S", slot, "-c", "fast"],
            f"pg_basebackup of {writer.name} for {self.name}",
            env={"PGPASSWORD": self.workspace.secret(REPLICATION_SECRET)},
        )
        # A clone must not itself wait for a synchronous standby of its own.
        with (scratch / "postgresql.auto.conf").open("a") as conf:
            conf.write("synchronous_standby_names = ''\n")

    def after_ready(self) -> None:
        if self.cluster.synchronous_commit:
            self.enable_synchronous_commit()

    def enable_synchronous_commit(self) -> None:
        """Make the writer wait for this standby on every commit, once it streams."""
        slot = self.cluster.slot
        query = "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = %s"
        with self.writer.connect() as conn:
            def streaming() -> tuple[bool | None, str]:
                row = conn.execute(query, (slot,)).fetchone()
                return (True if row and row[0] == "streaming" else None), f"{slot}: {row}"

            wait_for(streaming, timeout=self.timeouts.ready_s, what=f"{slot} streaming")
            wanted = f"FIRST 1 ({slot})"
            current = conn.execute("SHOW synchronous_standby_names").fetchone()
            if not current or current[0] != wanted:
                conn.execute(sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(
                    sql.Literal(wanted)))
                conn.execute("SELECT pg_reload_conf()")

            def synchronous() -> tuple[bool | None, str]:
                row = conn.execute(query, (slot,)).fetchone()
                return (True if row and row[1] == "sync" else None), f"{slot}: {row}"

            wait_for(synchronous, timeout=self.timeouts.ready_s, what=f"{slot} synchronous")


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def postgres_components(model: Platform, workspace: Workspace,
                        backend: Backend) -> list[Component]:
    cluster = model.data.postgres
    writer = PostgresWriter(cluster.writer, cluster, workspace, backend)
    standby = PostgresStandby(cluster.standby, cluster, writer, workspace, backend)
    return [writer, standby]
