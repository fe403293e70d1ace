"""Endpoints: the URLs people and services connect with; the password is shown only on request."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from stack.come2us import come2us
from stack.local.endpoints import MASK, endpoints
from stack.local.postgres import ADMIN_SECRET
from stack.local.workspace import Workspace

DATABASE_URLS = ("COME2US_DATABASE_URL", "COME2US_DATABASE_READER_URL")


def workspace_with_password(home: Path, password: str) -> Workspace:
    home.mkdir()
    (home / "secrets.json").write_text(json.dumps({ADMIN_SECRET: password}))
    return Workspace(home)


def values(workspace: Workspace, reveal: bool) -> dict[str, str]:
    return {e.variable: e.value for e in endpoints(come2us(), workspace, reveal=reveal)}


def test_revealed_urls_carry_the_workspace_password(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    password = workspace.secret(ADMIN_SECRET)

    shown = values(workspace, reveal=True)

    assert shown["COME2US_DATABASE_URL"] == come2us().data.postgres.writer_url(password)
    assert shown["COME2US_DATABASE_READER_URL"] == come2us().data.postgres.reader_url(password)
    assert shown["COME2US_DATABASE_URL"].startswith(f"postgresql://come2us:{password}@127.0.1.11")


def test_masked_urls_differ_from_revealed_ones_only_in_the_password(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    password = workspace.secret(ADMIN_SECRET)

    masked, revealed = values(workspace, reveal=False), values(workspace, reveal=True)

    for variable in DATABASE_URLS:
        assert password not in masked[variable]
        assert masked[variable] == revealed[variable].replace(f":{password}@", f":{MASK}@")
    others = set(masked) - set(DATABASE_URLS)
    assert {v: masked[v] for v in others} == {v: revealed[v] for v in others}


@pytest.mark.parametrize("password", ["p@ss/w:rd?&", "come2us", "5432"],
                         ids=["url-special", "same-as-user", "same-as-port"])
def test_the_mask_replaces_exactly_the_password(tmp_path: Path, password: str) -> None:
    workspace = workspace_with_password(tmp_path / "home", password)
    postgres = come2us().data.postgres

    masked = values(workspace, reveal=False)

    assert masked["COME2US_DATABASE_URL"] == postgres.writer_url(password).replace(
        f":{quote(password, safe='')}@", f":{MASK}@")
    assert masked["COME2US_DATABASE_URL"] == (
        f"postgresql://come2us:{MASK}@127.0.1.11:5432,127.0.2.11:5432/come2us"
        "?target_session_attrs=read-write&connect_timeout=2"
    )


def test_every_variable_is_described_once(tmp_path: Path) -> None:
    found = endpoints(come2us(), Workspace(tmp_path))
    variables = [e.variable for e in found]

    assert len(variables) == len(set(variables))
    assert all(e.what for e in found)
    assert {"AWS_ENDPOINT_URL", "COME2US_CACHE_REDIS_URL", "COME2US_KAFKA_BOOTSTRAP",
            "COME2US_SESSION_SENTINELS", "COME2US_LOCK_TABLE"} <= set(variables)
