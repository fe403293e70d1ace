"""The ALB's JSON access log, read back: one `AccessLogEntry` per request.

HAProxy writes one JSON object per request to its stdout (the component's log file, format in
`stack.local.alb.config.ACCESS_LOG_FIELDS`), between its own notices ("Server … is DOWN"),
which are not JSON and are skipped. Tests and features read requests per colour, status and
timing from here as evidence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NO_SERVER = "<NOSRV>"  # HAProxy's name for "no target was chosen"


@dataclass(frozen=True)
class AccessLogEntry:
    time: str  # request date, GMT, as HAProxy writes it
    accepted: float  # Unix time the connection's request was accepted
    client: str
    listener: str
    target_group: str
    target: str | None  # None when no target was chosen (e.g. 503: none healthy)
    colour: str | None
    method: str
    path: str
    status: int
    bytes_in: int
    bytes_out: int
    tq_ms: int  # receiving the request headers
    tw_ms: int  # waiting in a queue
    tc_ms: int  # connecting to the target (-1: never connected)
    tr_ms: int  # the target's response headers (-1: none came)
    ta_ms: int  # the whole request
    termination: str  # "--" for a normal end; e.g. "sH" = server timeout during headers
    trace_id: str

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AccessLogEntry:
        target = str(raw["target"])
        colour = str(raw["colour"])
        return cls(
            time=str(raw["time"]),
            accepted=float(raw["accepted"]),
            client=str(raw["client"]),
            listener=str(raw["listener"]),
            target_group=str(raw["targetGroup"]),
            target=None if target == NO_SERVER else target,
            colour=None if colour == "-" else colour,
            method=str(raw["method"]),
            path=str(raw["path"]),
            status=int(raw["status"]),
            bytes_in=int(raw["bytesIn"]),
            bytes_out=int(raw["bytes"]),
            tq_ms=int(raw["Tq"]),
            tw_ms=int(raw["Tw"]),
            tc_ms=int(raw["Tc"]),
            tr_ms=int(raw["Tr"]),
            ta_ms=int(raw["Ta"]),
            termination=str(raw["termination"]),
            trace_id=str(raw["traceId"]),
        )


def parse_line(line: str) -> AccessLogEntry | None:
    """One log line: an entry, or None for HAProxy's own messages (and a line cut short)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return None  # the last line, still being written
    if not isinstance(raw, dict) or "targetGroup" not in raw:
        return None
    return AccessLogEntry.from_json(raw)


def read_access_log(path: Path, since: int = 0) -> list[AccessLogEntry]:
    """Every entry in ``path``, starting at byte offset ``since`` (see `log_size`)."""
    try:
        with path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    return [entry for line in text.splitlines() if (entry := parse_line(line)) is not None]


def log_size(path: Path) -> int:
    """Where the log ends now: pass it to `read_access_log` to read only what comes after."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
