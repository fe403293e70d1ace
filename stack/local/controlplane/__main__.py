"""`python -m stack.local.controlplane --home DIR [--backend process|docker]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from stack.local.controlplane.server import serve
from stack.local.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(prog="come2us-controlplane", description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="workspace folder")
    parser.add_argument("--backend", choices=("process", "docker"), default="process")
    args = parser.parse_args()
    serve(Workspace(args.home.resolve()), args.backend)


if __name__ == "__main__":
    main()
