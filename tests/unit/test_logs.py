"""JSON log lines and the request id that follows a request through them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from services.common.logs import (
    RequestIdMiddleware,
    configure_logging,
    current_request_id,
    request_id_bound,
    request_id_from_header,
)

log = logging.getLogger("tests.logs")


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """Logging configured into a buffer; the root logger is put back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging("test-service", "DEBUG", stream=buffer)
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_the_standard_fields(output: io.StringIO) -> None:
    log.info("order %s placed", "o-1", extra={"event": "order_placed", "amount": 12})
    [line] = lines(output)
    assert line["message"] == "order o-1 placed"
    assert line["level"] == "INFO"
    assert line["logger"] == "tests.logs"
    assert line["service"] == "test-service"
    assert line["ts"].endswith("Z") and "T" in line["ts"]
    assert line["event"] == "order_placed" and line["amount"] == 12
    assert "request_id" not in line  # not inside a request


def test_exceptions_and_odd_extras_still_make_one_line(output: io.StringIO) -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("failed", extra={"path": object()})
    text = output.getvalue()
    assert text.count("\n") == 1
    [line] = lines(output)
    assert "ValueError: boom" in line["exc_info"]
    assert line["path"].startswith("<object")


def test_a_bound_request_id_is_in_every_line(output: io.StringIO) -> None:
    with request_id_bound("req-7"):
        log.info("inside")
    log.info("outside")
    inside, outside = lines(output)
    assert inside["request_id"] == "req-7"
    assert "request_id" not in outside


def test_the_request_id_follows_tasks_started_in_the_request(output: io.StringIO) -> None:
    async def handle() -> None:
        with request_id_bound("req-8"):
            task = asyncio.create_task(_log_later())
        await task  # runs after the request's context was left: the task kept its copy

    asyncio.run(handle())
    [line] = [line for line in lines(output) if line["message"] == "from a task"]
    assert line["request_id"] == "req-8"


async def _log_later() -> None:
    await asyncio.sleep(0)
    log.info("from a task")


def test_invalid_levels_are_refused() -> None:
    with pytest.raises(ValueError, match="VERBOSE"):
        configure_logging("x", "VERBOSE")


@pytest.mark.parametrize(("header", "kept"), [
    ("abc-123", True), ("trace:01.02_x", True), ("has space", False), ("", False),
    ("x" * 129, False), ("new\nline", False), (None, False)])
def test_incoming_ids_are_kept_only_when_they_are_plain_tokens(header: str | None,
                                                               kept: bool) -> None:
    request_id = request_id_from_header(header)
    assert (request_id == header) is kept
    assert 1 <= len(request_id) <= 128


def _app() -> Starlette:
    async def endpoint(request: Request) -> JSONResponse:
        log.info("handling", extra={"event": "handled"})
        return JSONResponse({"seen": current_request_id()})

    return Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(RequestIdMiddleware)])


def test_the_middleware_uses_the_incoming_id_and_echoes_it(output: io.StringIO) -> None:
    with TestClient(_app()) as client:
        response = client.get("/", headers={"X-Request-Id": "from-the-gateway"})
    assert response.headers["x-request-id"] == "from-the-gateway"
    assert response.json() == {"seen": "from-the-gateway"}
    [handled] = [line for line in lines(output) if line.get("event") == "handled"]
    assert handled["request_id"] == "from-the-gateway"


def test_the_middleware_makes_an_id_when_none_came(output: io.StringIO) -> None:
    with TestClient(_app()) as client:
        first = client.get("/")
        second = client.get("/", headers={"X-Request-Id": "bad id!"})
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2 and "bad id!" not in ids
    assert first.json()["seen"] == first.headers["x-request-id"]
    assert current_request_id() is None  # nothing leaks out of the request
