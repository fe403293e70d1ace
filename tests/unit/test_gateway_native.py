"""The gateway's native build is used only when it was built from exactly these sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.gateway import native


def test_a_directory_without_a_manifest_is_not_a_current_build(tmp_path: Path) -> None:
    assert not native.is_current(tmp_path)


def test_a_build_of_other_sources_is_not_current(tmp_path: Path) -> None:
    (tmp_path / native.MANIFEST).write_text(json.dumps({"digest": "0" * 64}))

    assert not native.is_current(tmp_path)


def test_a_build_of_these_sources_is_current(tmp_path: Path) -> None:
    (tmp_path / native.MANIFEST).write_text(json.dumps({"digest": native.source_digest()}))

    assert native.is_current(tmp_path)


def test_ensure_leaves_a_current_build_alone(tmp_path: Path) -> None:
    manifest = tmp_path / native.MANIFEST
    manifest.write_text(json.dumps({"digest": native.source_digest()}))
    before = manifest.stat().st_mtime_ns

    assert native.main(["ensure", str(tmp_path)]) == 0
    assert manifest.stat().st_mtime_ns == before


def test_an_unknown_command_is_refused_with_the_usage(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert native.main(["compile", "somewhere"]) == 2
    assert "usage: python -m services.gateway.native build|ensure DIR" in capsys.readouterr().err
