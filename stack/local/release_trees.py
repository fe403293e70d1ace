"""Release trees: the checkout's code, copied and changed, as the code of a release of its own.

A local release runs its tasks from a directory (`stack.local.tasks.releases`): by default the
checkout, or any tree holding ``services/``. A copy with one more migration is how a feature
deploys "the next version" of a service without a branch — what an image built from another
commit is on AWS. ``python -m services.<name>`` imports nothing outside ``services/`` (the
stack is the runtime's business, the settings come from the config server), so a tree is a
copy of ``services/`` alone: ~1.4 MB, copied in well under a second.

Colours share the database, and each service migrates its schema when a task starts, so the
order of releases matters: a change the previous release cannot live with (a column made
required, dropped or renamed) may only run once no task of that release is left. A migration
that is such a *contraction* says which *expansion* it finishes, with a module-level
``contracts = "<revision>"``; `contract_blockers` names every running release that does not
carry that expansion yet, and the local runtime refuses to deploy the contraction beside one.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

TREE_CONTENT = ("services",)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")
CONTRACTS = "contracts"  # the module attribute a contracting migration sets

MIGRATION_TEMPLATE = '''"""{message}

Revision ID: {revision}
Revises: {down_revision}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None
{contracts}

def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


class TreeChangeFailed(RuntimeError):
    """The change no longer fits the code it changes (the checkout moved on): rewrite it."""


class ContractTooEarly(ValueError):
    """A release would contract the schema while a release that needs it uncontracted runs."""


def _indent(body: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in body.strip("\n").splitlines())


def migration_script(service_tree: Path) -> ScriptDirectory:
    """The Alembic scripts of one service (``services/<name>/migrations``) of a tree."""
    config = Config()
    config.set_main_option("script_location", str(service_tree / "migrations"))
    return ScriptDirectory.from_config(config)


class ReleaseTree:
    """A tree of the project's code at ``root``, to change and then deploy as a release.

    ``ReleaseTree.copy_of(PROJECT_ROOT, dest)`` copies the checkout's ``services/``;
    `add_migration` chains a revision onto a service's head, `replace` edits code; the tree
    is then deployed with ``come2us deploy --target local --code <root>`` (or
    `stack.local.bluegreen.LocalColours`).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def copy_of(cls, source: Path, root: Path) -> ReleaseTree:
        """Copy what tasks import from ``source`` into ``root`` (which must not exist)."""
        if root.exists():
            raise FileExistsError(f"{root} exists: a release tree is made once, never merged")
        for name in TREE_CONTENT:
            shutil.copytree(source / name, root / name, ignore=IGNORED, symlinks=True)
        return cls(root)

    def service(self, name: str) -> Path:
        path = self.root / "services" / name
        if not (path / "migrations").is_dir():
            raise TreeChangeFailed(f"{path} has no migrations/ folder: not a service with a "
                                   f"schema")
        return path

    def head(self, service: str) -> str:
        """The service's single newest revision; a tree with several heads is refused, since
        `Database.migrate` upgrades to one head."""
        heads = migration_script(self.service(service)).get_heads()
        if len(heads) != 1:
            raise TreeChangeFailed(f"{service}'s migrations have {len(heads)} heads "
                                   f"({', '.join(heads) or 'none'}); merge them first")
        return heads[0]

    def revisions(self, service: str) -> set[str]:
        return revisions_of(self.service(service))

    def add_migration(self, service: str, revision: str, message: str, upgrade: str,
                      downgrade: str, contracts: str | None = None) -> Path:
        """Write a revision chained onto ``service``'s head; ``upgrade`` and ``downgrade`` are
        the bodies of the two functions (``op`` and ``sa`` are imported). ``contracts`` names
        the expansion this revision finishes (see the module's docstring)."""
        down = self.head(service)
        if revision in self.revisions(service):
            raise TreeChangeFailed(f"{service} already has a revision {revision}")
        if contracts is not None and contracts not in self.revisions(service):
            raise TreeChangeFailed(f"{revision} contracts {contracts}, which {service}'s "
                                   f"migrations do not contain")
        path = self.service(service) / "migrations" / "versions" / f"{revision}.py"
        path.write_text(MIGRATION_TEMPLATE.format(
            message=message, revision=revision, down_revision=down,
            contracts=(f"# Runs only once no release without {contracts} runs "
                       f"(stack.local.release_trees).\n{CONTRACTS} = \"{contracts}\"\n"
                       if contracts else ""),
            upgrade=_indent(upgrade), downgrade=_indent(downgrade)))
        return path

    def replace(self, relative: str, old: str, new: str) -> None:
        """Replace the one occurrence of ``old`` in a file of the tree; fails loudly when the
        text is missing or ambiguous, so a change that no longer fits is never half-applied."""
        path = self.root / relative
        text = path.read_text()
        found = text.count(old)
        if found != 1:
            raise TreeChangeFailed(f"{relative}: expected the text once, found it {found} "
                                   f"times: {old.strip()[:80]!r}")
        path.write_text(text.replace(old, new))

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _assignments(path: Path) -> dict[str, Any]:
    """The module's top-level constant assignments (``revision = "…"``), read without
    importing it: a tree's migrations import their own tree's code."""
    values: dict[str, Any] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = node.value.value
    return values


def _migrations(service_tree: Path) -> list[dict[str, Any]]:
    versions = service_tree / "migrations" / "versions"
    return [_assignments(path) for path in sorted(versions.glob("*.py"))]


def revisions_of(service_tree: Path) -> set[str]:
    return {str(m["revision"]) for m in _migrations(service_tree) if "revision" in m}


def contractions(tree: Path) -> dict[str, dict[str, str]]:
    """service → {contracting revision → the expansion it finishes}, in a tree."""
    found: dict[str, dict[str, str]] = {}
    if not (tree / "services").is_dir():
        return found
    for service_tree in sorted((tree / "services").iterdir()):
        if not (service_tree / "migrations" / "versions").is_dir():
            continue
        for migration in _migrations(service_tree):
            if CONTRACTS in migration:
                found.setdefault(service_tree.name, {})[str(migration["revision"])] = \
                    str(migration[CONTRACTS])
    return found


def contract_blockers(tree: Path, running: Mapping[str, Path]) -> list[str]:
    """Why ``tree`` may not be deployed now: each running release (name → its tree) that
    lacks an expansion ``tree`` contracts. Empty when the deploy is safe for the schema."""
    blockers = []
    for service, contracted in contractions(tree).items():
        for revision, expansion in sorted(contracted.items()):
            for name, directory in sorted(running.items()):
                if expansion not in revisions_of(directory / "services" / service):
                    blockers.append(f"{name} runs {service} without {expansion}, which "
                                    f"{revision} contracts")
    return blockers


def refuse_early_contract(tree: Path, running: Mapping[str, Path]) -> None:
    blockers = contract_blockers(tree, running)
    if blockers:
        raise ContractTooEarly(
            "this release contracts the shared schema while a release that needs it "
            "uncontracted still runs: " + "; ".join(blockers) + ". Deploy the expansion "
            "first, switch, retire the old colour, then deploy the contraction")


def migrate_to(service_tree: Path, connection: Connection, schema: str, revision: str) -> None:
    """Move a service's schema to ``revision``, up or down, with a tree's migrations, on
    ``connection``: how a feature puts back the schema its releases changed."""
    config = Config()
    config.set_main_option("script_location", str(service_tree / "migrations"))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    script = ScriptDirectory.from_config(config)
    current = MigrationContext.configure(
        connection, opts={"version_table_schema": schema}).get_current_heads()
    if set(current) == {revision}:
        return
    behind = {r.revision for head in current for r in script.iterate_revisions(head, "base")}
    if revision in behind:
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)
