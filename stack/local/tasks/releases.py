"""Releases of the local runtime: a label, and the tree whose code the tasks run.

On AWS a release is an image tag; locally it is a label (``come2us deploy --version``) and a
directory holding the project's code (by default this checkout; a scratch copy with a new
migration is another release). Every release a colour ran is recorded in the workspace, so
`come2us status` can say what each colour runs and where its code came from; a label names one
tree for good, as an image tag is immutable.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from stack.local.tasks.task import Release
from stack.local.workspace import PROJECT_ROOT


class ReleaseRefused(ValueError):
    """A label that already names another tree (or other faults) cannot be reused."""


def checkout_label(directory: Path = PROJECT_ROOT) -> str:
    """The checkout's release label: its commit, ``-dirty`` when files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                              text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unversioned"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return f"{commit}-dirty" if dirty else commit


class ReleaseBook:
    """The releases recorded in ``releases.json`` of the workspace's run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Release]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {label: Release(label, Path(item["directory"]), tuple(item.get("faults", ())),
                               float(item.get("recorded_at", 0.0)))
                for label, item in raw.items()}

    def record(self, label: str, directory: Path | None = None,
               faults: tuple[str, ...] = ()) -> Release:
        """The release ``label`` (recorded now if new); refused if it names something else."""
        tree = (directory or PROJECT_ROOT).resolve()
        if not (tree / "services").is_dir():
            raise ReleaseRefused(f"{tree} holds no services/ folder: not a tree of this project")
        with self._lock:
            releases = self._read()
            known = releases.get(label)
            if known is not None:
                if (known.directory, known.faults) != (tree, tuple(faults)):
                    raise ReleaseRefused(
                        f"release {label} is {known.directory}"
                        f"{' with faults ' + ','.join(known.faults) if known.faults else ''}; "
                        f"a label names one tree for good: choose another --version")
                return known
            release = Release(label, tree, tuple(faults), time.time())
            releases[label] = release
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({k: {key: value for key, value in r.view().items()
                                           if key != "label"}
                                       for k, r in releases.items()}, indent=2))
            tmp.replace(self.path)
            return release

    def all(self) -> list[Release]:
        with self._lock:
            return sorted(self._read().values(), key=lambda r: r.recorded_at)
