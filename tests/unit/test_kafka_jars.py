"""Fetching the Kafka jars: once per pom, again when the pom changes, and a clear word when Maven
or Java is missing. A stand-in `mvn` on PATH plays Maven, so nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.local.kafka_jars import (
    STAMP,
    KafkaJarsError,
    ensure_kafka_jars,
    jars_ready,
    kafka_version,
    main,
)

FAKE_MVN = """#!/bin/sh
# Records each call, then "copies" two jars into -DoutputDirectory=…
echo "$@" >> "{calls}"
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${{arg#-DoutputDirectory=}}";; esac
done
[ -n "{fail}" ] && {{ echo "[ERROR] Could not resolve dependencies" >&2; exit 1; }}
: > "$out/kafka_2.13-{version}.jar"; : > "$out/kafka-clients-{version}.jar"
"""
FAKE_JAVA = """#!/bin/sh
echo 'openjdk version "{major}.0.15" 2025-04-15' >&2
"""


def _tool(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


def _maven(bin_dir: Path, version: str = "4.4.0", fail: bool = False, java: int = 17) -> Path:
    calls = bin_dir / "calls.txt"
    _tool(bin_dir, "mvn", FAKE_MVN.format(calls=calls, version=version, fail="1" if fail else ""))
    _tool(bin_dir, "java", FAKE_JAVA.format(major=java))
    return calls


def test_fetches_once_and_again_when_the_pom_changes(tmp_path: Path, bin_dir: Path) -> None:
    calls = _maven(bin_dir)
    pom = tmp_path / "pom.xml"
    pom.write_text("<project>4.4.0</project>")
    dest = tmp_path / "target" / "jars"

    assert ensure_kafka_jars(dest, pom) == dest
    assert kafka_version(dest) == "4.4.0" and jars_ready(dest, pom)
    assert "-B -q" in calls.read_text() and "dependency:copy-dependencies" in calls.read_text()
    ensure_kafka_jars(dest, pom)
    assert len(calls.read_text().splitlines()) == 1  # the stamp matched: no second fetch

    _maven(bin_dir, version="4.5.0")
    pom.write_text("<project>4.5.0</project>")
    assert not jars_ready(dest, pom)
    ensure_kafka_jars(dest, pom)
    assert kafka_version(dest) == "4.5.0"
    assert sorted(p.name for p in dest.iterdir()) == [
        STAMP, "kafka-clients-4.5.0.jar", "kafka_2.13-4.5.0.jar"]  # nothing of 4.4.0 is left


def test_a_failed_fetch_leaves_no_half_folder(tmp_path: Path, bin_dir: Path) -> None:
    _maven(bin_dir, fail=True)
    pom = tmp_path / "pom.xml"
    pom.write_text("<project/>")
    dest = tmp_path / "target" / "jars"
    with pytest.raises(KafkaJarsError, match="Could not resolve dependencies"):
        ensure_kafka_jars(dest, pom)
    assert list(dest.parent.iterdir()) == [dest.parent / ".jars.lock"]


def test_missing_maven_names_the_debian_package(tmp_path: Path, bin_dir: Path) -> None:
    (tmp_path / "pom.xml").write_text("<project/>")
    with pytest.raises(KafkaJarsError, match=r"`mvn` is not installed.*apt-get install maven"):
        ensure_kafka_jars(tmp_path / "jars", tmp_path / "pom.xml")


def test_missing_or_old_java_names_the_debian_package(tmp_path: Path, bin_dir: Path) -> None:
    _tool(bin_dir, "mvn", "#!/bin/sh\nexit 0\n")
    (tmp_path / "pom.xml").write_text("<project/>")
    with pytest.raises(KafkaJarsError, match="apt-get install openjdk-17-jre-headless"):
        ensure_kafka_jars(tmp_path / "jars", tmp_path / "pom.xml")
    _maven(bin_dir, java=11)
    with pytest.raises(KafkaJarsError, match="Java 11; Kafka 4 brokers need Java 17"):
        ensure_kafka_jars(tmp_path / "jars", tmp_path / "pom.xml")


def test_command_line_reports_and_fails_cleanly(
    tmp_path: Path, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text("<project/>")
    assert main(["--dest", str(tmp_path / "jars"), "--pom", str(pom)]) == 1
    assert "error: `mvn` is not installed" in capsys.readouterr().err
    _maven(bin_dir)
    assert main(["--dest", str(tmp_path / "jars"), "--pom", str(pom)]) == 0
    assert "Kafka 4.4.0 broker jars ready" in capsys.readouterr().out
