"""The git repository the config server serves, changed the way people change it: by commits.

A test session serves a scratch copy of `config-repo/` so that features can commit changes
and call the refresh bus without touching the project's own history.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

SEARCH_PATH = "config-repo"
BRANCH = "main"
AUTHOR = ("-c", "user.name=come2us testbed", "-c", "user.email=testbed@come2us.local")


class ConfigRepository:
    def __init__(self, path: Path, search_path: str = SEARCH_PATH) -> None:
        self.path = path
        self.search_path = search_path

    @classmethod
    def scratch_copy(cls, source: Path, destination: Path) -> ConfigRepository:
        """A new repository whose `main` holds a copy of ``source`` under the search path."""
        repo = cls(destination)
        shutil.copytree(source, destination / SEARCH_PATH)
        repo._git("init", "-q", "-b", BRANCH)
        repo._git("add", SEARCH_PATH)
        repo._git(*AUTHOR, "commit", "-q", "-m", f"copy of {source}")
        return repo

    def _git(self, *args: str) -> str:
        result = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True,
                                text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed in {self.path}: {result.stderr}")
        return result.stdout.strip()

    def head(self) -> str:
        """The commit id of the branch the config server serves."""
        return self._git("rev-parse", BRANCH)

    def file(self, name: str) -> Path:
        return self.path / self.search_path / name

    def read(self, name: str) -> dict[str, Any]:
        loaded = yaml.safe_load(self.file(name).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{name} does not hold a YAML mapping")
        return loaded

    def change(self, name: str, edit: Callable[[dict[str, Any]], None], message: str) -> str:
        """Apply ``edit`` to the YAML document ``name``, commit it; returns the commit id."""
        document = self.read(name)
        edit(document)
        self.file(name).write_text(yaml.safe_dump(document, sort_keys=False))
        self._commit(name, message)
        return self.head()

    def restore(self, name: str, text: str, message: str) -> str:
        """Put ``name`` back to ``text`` word for word and commit; returns the commit id."""
        self.file(name).write_text(text)
        self._commit(name, message)
        return self.head()

    def _commit(self, name: str, message: str) -> None:
        self._git("add", str(self.file(name)))
        self._git(*AUTHOR, "commit", "-q", "--allow-empty", "-m", message)


def route(document: dict[str, Any], route_id: str) -> dict[str, Any]:
    """The Spring Cloud Gateway route ``route_id`` of a gateway.yml document."""
    routes = document["spring"]["cloud"]["gateway"]["routes"]
    for candidate in routes:
        if candidate.get("id") == route_id:
            found: dict[str, Any] = candidate
            return found
    raise KeyError(f"no route {route_id!r}; routes: {[r.get('id') for r in routes]}")


def filter_args(route_doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``args`` of the filter ``name`` of a route (its long form: name + args)."""
    for item in route_doc.get("filters", []):
        if isinstance(item, dict) and item.get("name") == name:
            args: dict[str, Any] = item.setdefault("args", {})
            return args
    raise KeyError(f"route {route_doc.get('id')!r} has no {name} filter in its long form")
