"""A throwaway git repository for the config server's tests: write files, commit, branch, tag.

The tests drive the real git binary, as the config server does, so labels, packed refs and
annotated tags behave exactly as in a real configuration repository.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Commits need an author; the environment keeps the user's own git configuration out of it.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "config test", "GIT_AUTHOR_EMAIL": "config-test@come2us.invalid",
    "GIT_COMMITTER_NAME": "config test", "GIT_COMMITTER_EMAIL": "config-test@come2us.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


class ScratchRepo:
    """``ScratchRepo(tmp_path / "repo").commit({"config-repo/application.yml": "a: 1\\n"})``."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", branch)

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True,
                              text=True, check=True, env={**os.environ, **_GIT_ENV})
        return done.stdout.strip()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Write (or, for None, delete) files, commit them all, return the commit id."""
        for name, text in files.items():
            target = self.path / name
            if text is None:
                self.git("rm", "-q", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            self.git("add", name)
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def checkout(self, branch: str, create: bool = False) -> None:
        self.git("checkout", "-q", *(["-b"] if create else []), branch)

    def tag(self, name: str, annotated: bool = False) -> None:
        self.git("tag", *(["-a", "-m", name] if annotated else []), name)
