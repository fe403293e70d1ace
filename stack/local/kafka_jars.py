"""The Apache Kafka broker's jars, fetched from Maven Central by Maven, once per pom version.

No OS package ships Kafka and the local cloud needs no Docker, so the broker comes as plain jars:
``tools/kafka/pom.xml`` names them and ``mvn dependency:copy-dependencies`` copies them, with
their runtime dependencies, into a git-ignored folder. The folder is stamped with the pom's hash,
so fetching is skipped when nothing changed and repeated when the pom (e.g. the Kafka version)
did. Maven's own cache (~/.m2) makes a refetch cheap.

Run ``python -m stack.local.kafka_jars`` from the set-up script; the broker component calls
:func:`ensure_kafka_jars` too, so a forgotten set-up step costs a few seconds, not a failure.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from stack.local.workspace import PROJECT_ROOT

KAFKA_TOOLS = PROJECT_ROOT / "tools" / "kafka"
POM = KAFKA_TOOLS / "pom.xml"
JARS_DIR = KAFKA_TOOLS / "target" / "jars"
STAMP = ".pom-sha256"
# The jar that holds kafka.Kafka and kafka.tools.StorageTool; its name carries the version.
BROKER_JAR = re.compile(r"^kafka_2\.13-(?P<version>[\w.\-]+)\.jar$")
MIN_JAVA = 17  # Kafka 4.x brokers need Java 17 or newer
FETCH_TIMEOUT_S = 900.0


class KafkaJarsError(RuntimeError):
    """The jars are missing and could not be fetched; the message says what to install or fix."""


def pom_digest(pom: Path = POM) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def kafka_version(dest: Path = JARS_DIR) -> str | None:
    """The Kafka version of the jars in ``dest``, read from the broker jar's name."""
    if not dest.is_dir():
        return None
    for jar in dest.iterdir():
        match = BROKER_JAR.match(jar.name)
        if match:
            return match["version"]
    return None


def jars_ready(dest: Path = JARS_DIR, pom: Path = POM) -> bool:
    """True when ``dest`` was filled from exactly this pom and still holds the broker jar."""
    stamp = dest / STAMP
    try:
        fetched_from = stamp.read_text().strip()
    except OSError:
        return False
    return fetched_from == pom_digest(pom) and kafka_version(dest) is not None


def classpath(dest: Path = JARS_DIR) -> str:
    """The ``-cp`` value for every jar in ``dest`` (the JVM expands the wildcard itself)."""
    return f"{dest}/*"


def _require(tool: str, package: str, why: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise KafkaJarsError(
            f"`{tool}` is not installed; it is needed {why}. "
            f"Install it with `apt-get install {package}` (Debian/Ubuntu)."
        )
    return path


def java_major_version(java: str) -> int | None:
    """The major version of ``java`` (17 for "17.0.15"), or None when it cannot be told."""
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # `java -version` writes e.g. 'openjdk version "17.0.15" 2025-04-15' to stderr.
    match = re.search(r'version "(?:1\.)?(\d+)', done.stderr + done.stdout)
    return int(match.group(1)) if match else None


def require_java() -> str:
    """The path of a Java runtime that can run the broker, or a KafkaJarsError saying why not."""
    java = _require("java", "openjdk-17-jre-headless", "to run the Kafka broker")
    major = java_major_version(java)
    if major is not None and major < MIN_JAVA:
        raise KafkaJarsError(
            f"{java} is Java {major}; Kafka 4 brokers need Java {MIN_JAVA} or newer. "
            f"Install it with `apt-get install openjdk-17-jre-headless` and make it the default "
            f"(`update-alternatives --config java`)."
        )
    return java


def _fetch(dest: Path, pom: Path) -> None:
    """Copy the pom's dependencies into a fresh folder and swap it in, stamped, when complete.

    Maven writes into a scratch folder beside ``dest``: an interrupted fetch leaves no
    half-filled jar folder behind that could later pass for a complete one.
    """
    mvn = _require("mvn", "maven", "to fetch the Kafka broker's jars from Maven Central")
    require_java()
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.fetching-", dir=dest.parent))
    try:
        argv = [mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(pom),
                "dependency:copy-dependencies", f"-DoutputDirectory={scratch}"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired as err:
            raise KafkaJarsError(
                f"`mvn dependency:copy-dependencies` for {pom} did not finish within "
                f"{FETCH_TIMEOUT_S:g} s; is Maven Central reachable?"
            ) from err
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip().splitlines()
            raise KafkaJarsError(
                f"`{' '.join(argv)}` failed with code {done.returncode}:\n"
                + "\n".join(output[-25:])
            )
        if kafka_version(scratch) is None:
            raise KafkaJarsError(f"Maven ran, but {pom} brought no kafka_2.13 jar into {scratch}")
        (scratch / STAMP).write_text(pom_digest(pom) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        scratch.rename(dest)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


def ensure_kafka_jars(dest: Path = JARS_DIR, pom: Path = POM) -> Path:
    """Make ``dest`` hold the jars ``pom`` names, fetching only when they are missing or stale.

    A lock file serialises concurrent callers (two test sessions starting at once): the second
    waits for the first and then finds the jars ready.
    """
    if jars_ready(dest, pom):
        return dest
    if not pom.is_file():
        raise KafkaJarsError(f"{pom} is missing; it names the Kafka jars to fetch")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with (dest.parent / f".{dest.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not jars_ready(dest, pom):
            _fetch(dest, pom)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stack.local.kafka_jars",
        description="Fetch the Apache Kafka broker jars from Maven Central (skipped when present).",
    )
    parser.add_argument("--dest", type=Path, default=JARS_DIR, help="folder for the jars")
    parser.add_argument("--pom", type=Path, default=POM, help="the pom naming the jars")
    args = parser.parse_args(argv)
    try:
        dest = ensure_kafka_jars(args.dest, args.pom)
    except KafkaJarsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    count = sum(1 for jar in dest.glob("*.jar"))
    print(f"Kafka {kafka_version(dest)} broker jars ready in {dest} ({count} jars)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
