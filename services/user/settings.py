"""The user service's settings (config-repo/user-service.yml, under ``user:``).

Every value is read when it is used, so a commit plus ``POST /actuator/busrefresh`` changes
token lifetimes and hashing parameters of the running service without a restart.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from services.common.runtime import ServiceSettings
from services.common.tokens import MAX_ACCESS_TOKEN_TTL_S
from services.user.domain.passwords import HashParameters
from services.user.domain.sessions import Lifetimes


class SessionSettings(BaseModel):
    # Bounded by the revocation contract: a revoked sid is remembered this long.
    access_token_ttl_seconds: int = Field(default=300, ge=1, le=MAX_ACCESS_TOKEN_TTL_S)
    refresh_token_ttl_seconds: int = Field(default=86_400, ge=1)
    # How long a revocation waits for the session Redis replica before answering (0: never).
    replica_wait_ms: int = Field(default=100, ge=0, le=5_000)

    def lifetimes(self) -> Lifetimes:
        return Lifetimes(self.access_token_ttl_seconds, self.refresh_token_ttl_seconds,
                         self.replica_wait_ms)


class PasswordHashingSettings(BaseModel):
    time_cost: int = Field(default=2, ge=1)
    memory_kib: int = Field(default=19_456, ge=8 * 1024)
    parallelism: int = Field(default=1, ge=1)

    def parameters(self) -> HashParameters:
        return HashParameters(self.time_cost, self.memory_kib, self.parallelism)


class UserConfig(BaseModel):
    sessions: SessionSettings = SessionSettings()
    password_hashing: PasswordHashingSettings = PasswordHashingSettings()

    @model_validator(mode="after")
    def session_outlives_access_token(self) -> UserConfig:
        s = self.sessions
        if s.refresh_token_ttl_seconds < s.access_token_ttl_seconds:
            raise ValueError("user.sessions.refresh-token-ttl-seconds must be at least "
                             "access-token-ttl-seconds: an access token would outlive its "
                             "session")
        return self


class UserSettings(ServiceSettings):
    user: UserConfig = UserConfig()
