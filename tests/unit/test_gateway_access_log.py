"""The access log: one JSON object per line, in the services' envelope, written in batches."""

from __future__ import annotations

import json
import os

from services.gateway.access_log import AccessLog, format_line


def test_line_is_json_in_the_shared_envelope() -> None:
    line = format_line(1764064000.1234, "rid-1", "GET", '/a"b\\c\u00e9', 'ro"ute',
                       "127.0.1.61:8080", 200, 62, 1.23456, "127.0.1.9")
    entry = json.loads(line)
    assert entry == {
        "ts": "2025-11-25T09:46:40.123Z", "level": "INFO", "logger": "services.gateway.access",
        "message": 'GET /a"b\\c\u00e9 200', "service": "gateway", "request_id": "rid-1",
        "method": "GET", "path": '/a"b\\c\u00e9', "route": 'ro"ute',
        "upstream": "127.0.1.61:8080", "status": 200, "bytes": 62, "duration_ms": 1.235,
        "client": "127.0.1.9"}


def test_timestamps_change_with_the_millisecond() -> None:
    first = json.loads(format_line(1764064000.0001, "r", "GET", "/", "-", "-", 200, 0, 0, "c"))
    same = json.loads(format_line(1764064000.0009, "r", "GET", "/", "-", "-", 200, 0, 0, "c"))
    later = json.loads(format_line(1764064001.5, "r", "GET", "/", "-", "-", 200, 0, 0, "c"))
    assert first["ts"] == same["ts"] == "2025-11-25T09:46:40.000Z"
    assert later["ts"] == "2025-11-25T09:46:41.500Z"


def test_batch_is_written_in_one_go_on_flush() -> None:
    read_end, write_end = os.pipe()
    try:
        log = AccessLog(write_end)
        for n in range(3):
            log.record((1764064000.0 + n, f"r{n}", "GET", "/x", "route", "up", 200, 1, 0.5, "c"))
        assert len(log.batch) == 3                     # held, not written yet
        log.flush()
        lines = os.read(read_end, 65536).decode().splitlines()
        assert [json.loads(line)["request_id"] for line in lines] == ["r0", "r1", "r2"]
        assert log.batch == []
    finally:
        os.close(read_end)
        os.close(write_end)


def test_disabled_log_records_nothing() -> None:
    log = AccessLog(enabled=False)
    log.record((0.0, "r", "GET", "/", "-", "-", 200, 0, 0.0, "c"))
    assert log.batch == []
