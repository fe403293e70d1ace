"""Optional: the forwarding path's modules compiled with mypyc — the same sources, at C speed.

The gateway is plain Python and runs as such everywhere (tests, development). Compiling its
modules with mypyc (shipped with mypy) turns each Python-level call and attribute access into
C; on this project's 2-core machine it cut the gateway's CPU per request by a fifth (about 37
to 30 µs against nginx; ``bench/gateway_overhead.py`` measures both). It is a build product, never
committed and never mixed up with the sources:

    python -m services.gateway.native build DIR     # ~20 s; needs gcc and Python headers
    python -m services.gateway.native ensure DIR    # build only when DIR does not match
    COME2US_GATEWAY_NATIVE=DIR python -m services.gateway ...

The set-up runs ``ensure`` into ``build/gateway-native`` (`NATIVE_BUILD`) and the local runtime
starts every gateway task with it, so the platform runs what the benchmark measures.

``build`` compiles a scratch copy of ``services/`` and writes the extension modules to DIR with
a manifest holding a digest of the gateway's sources and the Python version. With the
environment variable set, importing ``services.gateway`` puts DIR first on the package's path —
but only if the manifest still matches the sources; otherwise the gateway runs as plain Python
and says why (an edited ``.py`` never runs as a stale compiled copy).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ENV = "COME2US_GATEWAY_NATIVE"
# Everything the request path touches; __main__, sources, session_redis and this module stay
# plain Python (start-up and wiring only).
HOT_MODULES = ("proxy", "upstream", "routes", "auth", "breaker", "access_log", "gateway",
               "balancer", "instances", "revocation", "ratelimit", "settings", "errors")
PACKAGE_DIR = Path(__file__).resolve().parent
SERVICES_DIR = PACKAGE_DIR.parent
ROOT = SERVICES_DIR.parent
MANIFEST = "manifest.json"
NATIVE_BUILD = ROOT / "build" / "gateway-native"  # where the set-up builds it for the runtime

# Set by activate(): the directory in use, or why none is.
status = "not requested"


def source_digest() -> str:
    """A digest of everything the compiled modules were built from."""
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted([*PACKAGE_DIR.glob("*.py"), *(SERVICES_DIR / "common").glob("*.py")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build(target: Path) -> None:
    """Compile the hot modules into ``target`` (replacing an earlier build there)."""
    with tempfile.TemporaryDirectory(prefix="gateway-native-") as scratch:
        work = Path(scratch)
        shutil.copytree(SERVICES_DIR, work / "services",
                        ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        for name in ("pyproject.toml", "README.md"):  # setuptools reads both
            shutil.copy(ROOT / name, work / name)
        compiled = subprocess.run([sys.executable, "-m", "mypyc",
                                   *(f"services/gateway/{name}.py" for name in HOT_MODULES)],
                                  cwd=work, capture_output=True, text=True, check=False)
        if compiled.returncode != 0:  # setuptools' warnings are noise unless it failed
            raise OSError(f"mypyc exited with {compiled.returncode}:\n"
                          f"{compiled.stderr[-2000:]}")
        if target.exists():
            shutil.rmtree(target)
        (target / "services" / "gateway").mkdir(parents=True)
        for library in work.glob("*.so"):  # mypyc's shared runtime module
            shutil.copy(library, target / library.name)
        for module in (work / "services" / "gateway").glob("*.so"):
            shutil.copy(module, target / "services" / "gateway" / module.name)
    (target / MANIFEST).write_text(json.dumps(
        {"digest": source_digest(), "modules": list(HOT_MODULES)}, indent=2))


def is_current(target: Path) -> bool:
    """Whether ``target`` holds a build of exactly these sources for this Python."""
    try:
        manifest = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return bool(manifest.get("digest") == source_digest())


def activate(target: Path, package_path: list[str]) -> bool:
    """Put ``target``'s compiled modules ahead of the sources, if they match the sources."""
    global status
    try:
        manifest = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        status = f"no native build in {target}: running plain Python"
        return False
    if manifest.get("digest") != source_digest():
        status = f"native build in {target} is stale (sources changed): running plain Python"
        return False
    sys.path.insert(0, str(target))
    package_path.insert(0, str(target / "services" / "gateway"))
    status = f"native build in {target}"
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("build", "ensure"):
        print("usage: python -m services.gateway.native build|ensure DIR", file=sys.stderr)
        return 2
    target = Path(argv[1]).resolve()
    if argv[0] == "ensure" and is_current(target):
        return 0
    print(f"compiling the gateway's forwarding path with mypyc into {target} (~20 s) ...",
          flush=True)
    try:
        build(target)
    except OSError as err:
        print(f"could not compile the gateway's modules ({err}); the gateway runs as plain "
              f"Python. mypyc needs gcc and the Python headers: apt-get install -y gcc "
              f"python3-dev", file=sys.stderr)
        return 1
    print(f"compiled {', '.join(HOT_MODULES)} into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
