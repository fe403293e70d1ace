"""Loading settings from the config server: binding, retries with backoff, the failure message,
and refreshable settings — against a fake HTTP transport, with a recorded (not real) sleep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field

from services.common.settings import (
    EXIT_CONFIG_UNAVAILABLE,
    Backoff,
    ConfigError,
    ConfigLocation,
    ConfigRejected,
    ConfigUnavailable,
    RefreshableSettings,
    SettingsInvalid,
    bind,
    changed_keys,
    load_or_exit,
    load_settings,
)

URL = "http://127.0.1.151:8888"


class RateLimit(BaseModel):
    replenish_rate: float
    burst_capacity: int = 20


class Route(BaseModel):
    id: str
    uri: str
    predicates: list[str] = []


class GatewayConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    rate_limit: RateLimit
    routes: list[Route] = []
    public_paths: list[str] = []
    open_wait: timedelta = timedelta(seconds=5)
    service_ttls: dict[str, int] = Field(default_factory=dict)
    level: str = "INFO"


def environment(*sources: dict[str, Any], version: str = "abc") -> dict[str, Any]:
    return {"name": "gateway", "profiles": ["local"], "label": "main", "version": version,
            "state": None,
            "propertySources": [{"name": f"source-{index}", "source": source}
                                for index, source in enumerate(sources)]}


SOURCES = (
    {"rate-limit.replenish-rate": 1000, "level": "DEBUG"},
    {"rate-limit.replenish-rate": 10, "rate-limit.burstCapacity": 40,
     "routes[0].id": "users", "routes[0].uri": "lb://user-service",
     "routes[0].predicates[0]": "Path=/api/users/**",
     "public-paths": "/api/auth/login, /api/products/**",
     "open-wait": "750ms",
     "service-ttls.product-service": 60},
)


class FakeServer:
    """A transport that answers from a script: a dict (200 JSON), an int status, or an error."""

    def __init__(self, *answers: dict[str, Any] | int | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            return httpx.Response(answer, json={"status": answer, "error": "x",
                                                "message": f"answer {answer}", "path": "/"})
        return httpx.Response(200, json=answer)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


class RecordedSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def load(server: FakeServer, sleep: RecordedSleep | None = None, **kwargs: Any) -> GatewayConfig:
    return load_settings(GatewayConfig, "gateway", "local", URL, transport=server.transport,
                         sleep=sleep or RecordedSleep(), **kwargs)


def test_binds_merged_sources_with_relaxed_names() -> None:
    server = FakeServer(environment(*SOURCES))
    settings = load(server)
    assert settings.rate_limit == RateLimit(replenish_rate=1000, burst_capacity=40)
    assert settings.routes == [Route(id="users", uri="lb://user-service",
                                     predicates=["Path=/api/users/**"])]
    assert settings.public_paths == ["/api/auth/login", "/api/products/**"]
    assert settings.open_wait == timedelta(milliseconds=750)
    assert settings.service_ttls == {"product-service": 60}  # map keys are data, kept as is
    assert settings.level == "DEBUG"
    assert str(server.requests[0].url) == f"{URL}/gateway/local"


def test_request_names_profiles_and_label() -> None:
    location = ConfigLocation(URL + "/", "gateway", ("local", "dev"), "feature/tls")
    assert location.environment_url == f"{URL}/gateway/local,dev/feature(_)tls"
    server = FakeServer(environment(*SOURCES))
    load_settings(GatewayConfig, "gateway", ["local", "dev"], URL, label="v1",
                  transport=server.transport)
    assert str(server.requests[0].url) == f"{URL}/gateway/local,dev/v1"


def test_retries_with_exponential_backoff_then_succeeds() -> None:
    server = FakeServer(httpx.ConnectError("refused"), 503, httpx.ReadTimeout("slow"),
                        environment(*SOURCES))
    sleep = RecordedSleep()
    settings = load(server, sleep, attempts=5, backoff=Backoff(initial_s=0.1, factor=2, max_s=1))
    assert settings.level == "DEBUG"
    assert sleep.delays == [0.1, 0.2, 0.4]
    assert len(server.requests) == 4


def test_backoff_is_capped() -> None:
    backoff = Backoff(initial_s=1, factor=3, max_s=5)
    assert [backoff.delay(n) for n in range(4)] == [1, 3, 5, 5]


def test_gives_up_with_a_message_naming_url_attempts_and_last_error() -> None:
    server = FakeServer(httpx.ConnectError("[Errno 111] Connection refused"))
    sleep = RecordedSleep()
    with pytest.raises(ConfigUnavailable) as failure:
        load(server, sleep, attempts=3, backoff=Backoff(initial_s=0.01))
    message = str(failure.value)
    assert URL in message
    assert f"GET {URL}/gateway/local failed 3 times" in message
    assert "last error: ConnectError: [Errno 111] Connection refused" in message
    assert len(server.requests) == 3
    assert len(sleep.delays) == 2  # no sleep after the last attempt


def test_a_5xx_is_retried_and_reported() -> None:
    with pytest.raises(ConfigUnavailable, match="last error: HTTP 500: answer 500"):
        load(FakeServer(500), attempts=2)


def test_a_404_is_not_retried() -> None:
    server = FakeServer(404)
    with pytest.raises(ConfigRejected, match="HTTP 404: answer 404"):
        load(server, attempts=5)
    assert len(server.requests) == 1


def test_an_answer_that_is_not_an_environment_is_rejected() -> None:
    with pytest.raises(ConfigRejected, match="without propertySources"):
        load(FakeServer({"hello": "world"}))


def test_settings_that_do_not_fit_the_model_name_the_field() -> None:
    with pytest.raises(SettingsInvalid, match=r"rate_limit") as failure:
        load(FakeServer(environment({"level": "INFO"}, version="v9")))
    assert "version v9" in str(failure.value)


def test_load_or_exit_prints_the_reason_and_exits_non_zero(
        capsys: pytest.CaptureFixture[str]) -> None:
    server = FakeServer(httpx.ConnectError("refused"))
    with pytest.raises(SystemExit) as exited:
        load_or_exit(lambda: load(server, attempts=2), program="gateway")
    assert exited.value.code == EXIT_CONFIG_UNAVAILABLE != 0
    err = capsys.readouterr().err
    assert err.startswith("gateway: cannot start: config server http://127.0.1.151:8888")
    assert "failed 2 times" in err


def test_load_or_exit_returns_the_settings() -> None:
    settings = load_or_exit(lambda: load(FakeServer(environment(*SOURCES))), program="gateway")
    assert settings.level == "DEBUG"


def test_bind_keeps_unknown_keys_out_of_the_way() -> None:
    settings = bind(GatewayConfig, {"rate-limit.replenish-rate": 1, "eureka.client.x": 2})
    assert settings.rate_limit.replenish_rate == 1


def test_changed_keys() -> None:
    old = bind(GatewayConfig, {"rate-limit.replenish-rate": 1})
    new = bind(GatewayConfig, {"rate-limit.replenish-rate": 2, "routes[0].id": "a",
                               "routes[0].uri": "u"})
    # An empty list flattens to "" (as in Spring), so a list that fills is a change of "routes".
    assert changed_keys(old, new) == [
        "rate_limit.replenish_rate", "routes", "routes[0].id", "routes[0].predicates",
        "routes[0].uri"]
    assert changed_keys(old, old) == []


def test_refreshable_settings_swap_and_tell_callbacks(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer(environment({"rate-limit.replenish-rate": 10}),
                        environment({"rate-limit.replenish-rate": 10}),
                        environment({"rate-limit.replenish-rate": 99}))
    holder = RefreshableSettings.load(GatewayConfig, "gateway", "local", URL,
                                      transport=server.transport)
    seen: list[tuple[float, float]] = []
    unregister = holder.on_change(
        lambda old, new: seen.append((old.rate_limit.replenish_rate,
                                      new.rate_limit.replenish_rate)))
    assert holder.refresh() == []  # same values: no callback
    assert seen == []
    with caplog.at_level("INFO", logger="come2us.settings"):
        assert holder.refresh() == ["rate_limit.replenish_rate"]
    assert holder.value.rate_limit.replenish_rate == 99
    assert seen == [(10, 99)]
    assert "settings of gateway changed: rate_limit.replenish_rate" in caplog.text
    unregister()
    holder.replace(bind(GatewayConfig, {"rate-limit.replenish-rate": 1}))
    assert seen == [(10, 99)]


def test_a_failing_refresh_keeps_the_current_value() -> None:
    server = FakeServer(environment({"rate-limit.replenish-rate": 10}),
                        httpx.ConnectError("refused"))
    holder = RefreshableSettings.load(GatewayConfig, "gateway", "local", URL,
                                      transport=server.transport, refresh_attempts=2,
                                      sleep=RecordedSleep())
    with pytest.raises(ConfigError):
        holder.refresh()
    assert holder.value.rate_limit.replenish_rate == 10


def test_a_failing_callback_does_not_stop_the_others() -> None:
    holder = RefreshableSettings(bind(GatewayConfig, {"rate-limit.replenish-rate": 1}))
    calls: list[str] = []

    def broken(_old: GatewayConfig, _new: GatewayConfig) -> None:
        raise RuntimeError("boom")

    holder.on_change(broken)
    holder.on_change(lambda _old, _new: calls.append("second"))
    holder.replace(bind(GatewayConfig, {"rate-limit.replenish-rate": 2}))
    assert calls == ["second"]
    with pytest.raises(ConfigError, match="no source"):
        holder.refresh()
