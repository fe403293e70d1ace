"""Data directories: created whole or not at all, and never reused or overwritten unless ours."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from stack.local.datadir import MARKER, DataDir, DataDirError


def tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry under ``root`` with its mode and (for files) its bytes."""
    return {
        str(path.relative_to(root)): (path.stat().st_mode,
                                      path.read_bytes() if path.is_file() else None)
        for path in sorted(root.rglob("*"))
    }


def write_version(folder: Path) -> None:
    (folder / "PG_VERSION").write_text("15\n")


def test_create_initialises_in_scratch_then_moves_into_place(tmp_path: Path) -> None:
    seen: list[Path] = []

    def initialise(folder: Path) -> None:
        seen.append(folder)
        write_version(folder)

    data = DataDir(tmp_path / "rds-writer", "rds-writer", "postgres")
    assert data.claim(initialise) is True

    assert seen == [tmp_path / "rds-writer.initialising"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rds-writer"]
    assert (data.path / "PG_VERSION").read_text() == "15\n"
    assert json.loads((data.path / MARKER).read_text()) == {
        "node": "rds-writer", "kind": "postgres"}


def test_an_initialise_that_raises_leaves_no_directory_and_no_scratch(tmp_path: Path) -> None:
    def half_done(folder: Path) -> None:
        write_version(folder)
        raise RuntimeError("initdb: disk full")

    data = DataDir(tmp_path / "rds-writer", "rds-writer", "postgres")
    with pytest.raises(RuntimeError, match="disk full"):
        data.claim(half_done)

    assert list(tmp_path.iterdir()) == []


def test_a_scratch_folder_left_by_an_interrupted_run_is_started_afresh(tmp_path: Path) -> None:
    leftover = tmp_path / "rds-writer.initialising"
    leftover.mkdir()
    (leftover / "half-written").write_text("junk")

    data = DataDir(tmp_path / "rds-writer", "rds-writer", "postgres")
    data.claim(write_version)

    assert sorted(p.name for p in data.path.iterdir()) == [MARKER, "PG_VERSION"]
    assert not leftover.exists()


def test_an_empty_folder_is_initialised_in_place(tmp_path: Path) -> None:
    (tmp_path / "cache-redis").mkdir()
    data = DataDir(tmp_path / "cache-redis", "cache-redis", "redis")

    assert data.claim(lambda folder: None) is True
    assert (data.path / MARKER).exists()


def test_claim_verifies_an_existing_directory_without_touching_it(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "rds-writer", "rds-writer", "postgres")
    data.claim(write_version)
    before = tree(tmp_path)
    checked: list[Path] = []

    def check(folder: Path) -> str | None:
        checked.append(folder)
        return None

    def must_not_run(folder: Path) -> None:
        raise AssertionError("an existing directory was initialised again")

    assert data.claim(must_not_run, check) is False
    assert checked == [data.path]
    assert tree(tmp_path) == before


def foreign(path: Path) -> None:
    (path / "base").mkdir()
    (path / "base" / "1").write_bytes(b"\x00\x01 someone's table")


def stamped(node: str, kind: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        foreign(path)
        (path / MARKER).write_text(json.dumps({"node": node, "kind": kind}))
    return write


def unreadable(content: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        foreign(path)
        (path / MARKER).write_text(content)
    return write


def damaged(path: Path) -> str | None:
    version = (path / "PG_VERSION").read_text().strip() if (path / "PG_VERSION").exists() else None
    return None if version == "15" else f"PG_VERSION is {version}, not 15"


REFUSALS = {
    "no marker": (foreign, None, ["has no " + MARKER, "not created by come2us",
                                  "`come2us down --purge`"]),
    "another node's marker": (stamped("rds-standby", "postgres"), None,
                              ["node 'rds-standby'", "not of postgres node 'rds-writer'",
                               "`come2us down --purge`"]),
    "another kind's marker": (stamped("rds-writer", "redis"), None,
                              ["redis node 'rds-writer'", "not of postgres node 'rds-writer'",
                               "`come2us down --purge`"]),
    "a marker that is not JSON": (unreadable("{half a stamp"), None,
                                  ["is unreadable", "`come2us down --purge`"]),
    "a marker that is not an object": (unreadable('["rds-writer"]'), None,
                                       ["is unreadable", "`come2us down --purge`"]),
    "a failing kind check": (stamped("rds-writer", "postgres"), damaged,
                             ["looks damaged: PG_VERSION is None, not 15",
                              "`come2us down --purge`"]),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_a_directory_that_is_not_ours_is_refused_and_left_untouched(tmp_path: Path,
                                                                     case: str) -> None:
    fill, check, said = REFUSALS[case]
    path = tmp_path / "rds-writer"
    path.mkdir()
    fill(path)
    before = tree(tmp_path)

    def must_not_run(folder: Path) -> None:
        raise AssertionError("a refused directory was initialised")

    with pytest.raises(DataDirError) as refused:
        DataDir(path, "rds-writer", "postgres").claim(must_not_run, check)

    message = str(refused.value)
    assert str(path) in message
    assert "left untouched" in message
    for words in said:
        assert words in message
    assert tree(tmp_path) == before
