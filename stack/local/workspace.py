"""Where the local cloud keeps its state on disk: data, logs, the control-plane socket, secrets.

Everything lives under one git-ignored folder (``.come2us/`` in the project, or
``$COME2US_HOME``), so ``come2us down --purge`` has exactly one thing to remove and two test
sessions can run side by side with different homes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from stack.model import Node

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOME_ENV = "COME2US_HOME"


@dataclass(frozen=True)
class Workspace:
    home: Path

    @classmethod
    def default(cls) -> Workspace:
        configured = os.environ.get(HOME_ENV)
        return cls(Path(configured).resolve() if configured else PROJECT_ROOT / ".come2us")

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def control_socket(self) -> Path:
        return self.run / "controlplane.sock"

    @property
    def control_pidfile(self) -> Path:
        return self.run / "controlplane.pid"

    @property
    def processes_file(self) -> Path:
        """Pids of the processes the control plane started, for clean-up after it died."""
        return self.run / "processes.json"

    def data_dir(self, node: Node) -> Path:
        return self.data / node.name

    def log_file(self, node: Node) -> Path:
        return self.logs / f"{node.name}.log"

    def ensure(self) -> None:
        for folder in (self.home, self.data, self.logs, self.run):
            folder.mkdir(parents=True, exist_ok=True)
        # Data directories of servers that drop root privileges must be reachable by them.
        self.home.chmod(0o755)
        self.data.chmod(0o755)

    def secret(self, name: str) -> str:
        """A password generated once per home and kept in a file only the owner can read.

        Locally this plays the role of Secrets Manager: no password is written in the model,
        the repository or a template.
        """
        path = self.home / "secrets.json"
        values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        if name not in values:
            values[name] = secrets.token_urlsafe(18)
            self.home.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(values, indent=2))
            tmp.chmod(0o600)
            tmp.replace(path)
        return values[name]

    def keypair(self, name: str) -> tuple[str, str]:
        """An RSA key pair (private PEM, public PEM) generated once per home, kept 0600.

        The user service signs access tokens with the private key; the gateway verifies them
        with the public one. On AWS both would come from Secrets Manager.
        """
        folder = self.home / "keys"
        private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
        if not private.exists():
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
            for path, data in (
                (public, key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)),
                (private, key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption())),
            ):
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.chmod(0o600)
                tmp.replace(path)
        return private.read_text(), public.read_text()

    def purge(self) -> None:
        """Remove every data directory, log and secret of this home."""
        if self.home.exists():
            shutil.rmtree(self.home)
