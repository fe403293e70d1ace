"""config-repo/user-service.yml binds to the user service's settings, every key of it.

Pydantic ignores keys it does not know, so a misspelt key would silently leave a default in
force; each key of the file must therefore come out of the binding with its value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from services.common.properties import flatten
from services.common.settings import bind
from services.user.settings import UserSettings

CONFIG = Path(__file__).resolve().parents[2] / "config-repo" / "user-service.yml"


def bound_value(settings: UserSettings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part.replace("-", "_"))
    return value


def test_every_key_of_the_committed_file_reaches_the_settings() -> None:
    flat = flatten(yaml.safe_load(CONFIG.read_text()))
    settings = bind(UserSettings, flat)
    assert flat, "the file sets nothing"
    for key, value in flat.items():
        assert bound_value(settings, key) == value, key


def test_the_file_keeps_access_tokens_short_and_sessions_longer() -> None:
    sessions = bind(UserSettings, flatten(yaml.safe_load(CONFIG.read_text()))).user.sessions
    assert sessions.access_token_ttl_seconds <= 300
    assert sessions.refresh_token_ttl_seconds > sessions.access_token_ttl_seconds


@pytest.mark.parametrize("overrides", [
    {"user.sessions.access-token-ttl-seconds": 901},  # beyond the revocation contract
    {"user.sessions.access-token-ttl-seconds": 0},
    {"user.sessions.access-token-ttl-seconds": 60,
     "user.sessions.refresh-token-ttl-seconds": 30},  # the token would outlive its session
    {"user.password-hashing.memory-kib": 1024},
])
def test_unsafe_values_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        bind(UserSettings, overrides)
