"""Claiming a data directory: created whole or not at all, and never overwritten.

A data directory is initialised in a sibling scratch folder and renamed into place only when
initialisation succeeded, then stamped with a marker naming the node and the kind of server it
belongs to. On every later start the marker is checked, so a directory left by another program,
another node, or a half-finished run is refused with a message instead of being reused or wiped.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MARKER = ".come2us-node.json"


class DataDirError(RuntimeError):
    """A data directory exists but cannot be trusted; the message says what to do."""


@dataclass(frozen=True)
class DataDir:
    path: Path
    node: str
    kind: str

    def exists(self) -> bool:
        return self.path.exists() and any(self.path.iterdir())

    def verify(self, check: Callable[[Path], str | None] | None = None) -> None:
        """Raise DataDirError unless the directory is ours; ``check`` adds kind-specific tests."""
        marker = self.path / MARKER
        if not marker.exists():
            raise DataDirError(
                f"{self.path} is not empty but has no {MARKER}: it was not created by come2us "
                f"(or its initialisation was interrupted). It is left untouched. Move it away, or "
                f"remove every local data directory with `come2us down --purge`."
            )
        try:
            stamp = json.loads(marker.read_text())
            if not isinstance(stamp, dict):
                raise ValueError(f"a JSON {type(stamp).__name__}, not an object")
        except (OSError, ValueError) as err:
            raise DataDirError(
                f"{marker} is unreadable ({err}); the directory {self.path} is left untouched. "
                f"Move it away, or remove every local data directory with "
                f"`come2us down --purge`."
            ) from err
        if stamp.get("node") != self.node or stamp.get("kind") != self.kind:
            raise DataDirError(
                f"{self.path} holds data of {stamp.get('kind')} node {stamp.get('node')!r}, not "
                f"of {self.kind} node {self.node!r}; it is left untouched. Move it away, or "
                f"remove every local data directory with `come2us down --purge`."
            )
        if check is not None:
            problem = check(self.path)
            if problem:
                raise DataDirError(
                    f"{self.path} looks damaged: {problem}. It is left untouched; restore it "
                    f"from a copy, or start afresh with `come2us down --purge`."
                )

    def create(self, initialise: Callable[[Path], None]) -> None:
        """Run ``initialise`` on a scratch folder and move the result into place."""
        scratch = self.path.with_name(self.path.name + ".initialising")
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        try:
            initialise(scratch)
            (scratch / MARKER).write_text(json.dumps({"node": self.node, "kind": self.kind}))
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        if self.path.exists():
            self.path.rmdir()  # only ever an empty folder here; exists() was False
        scratch.rename(self.path)

    def claim(
        self,
        initialise: Callable[[Path], None],
        check: Callable[[Path], str | None] | None = None,
    ) -> bool:
        """Verify an existing directory or create a new one; True when it was created."""
        if self.exists():
            self.verify(check)
            return False
        self.create(initialise)
        return True
