"""The ALB's JSON access log read back: the reader understands what the format writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from stack.local.alb.access_log import (
    NO_SERVER,
    AccessLogEntry,
    log_size,
    parse_line,
    read_access_log,
)
from stack.local.alb.config import ACCESS_LOG_FIELDS

# One line as HAProxy 2.6 wrote it for a request forwarded to gateway-blue-1 (captured).
FORWARDED = (
    '{"time":"25/Nov/2026:12:07:22 +0000","accepted":1795608442.808,'
    '"client":"127.0.0.1:39148","listener":"listener","targetGroup":"tg-gateway-blue",'
    '"target":"gateway-blue-1","colour":"blue","method":"GET","path":"\\/api\\/products?q=a",'
    '"status":200,"bytesIn":120,"bytes":122,"Tq":4,"Tw":0,"Tc":0,"Tr":4,"Ta":5,'
    '"termination":"--","traceId":"6B06CF7A-001E-4EAF"}')
# …and one the ALB answered itself: no healthy target (503), no server chosen.
NO_TARGET = (
    '{"time":"25/Nov/2026:12:07:22 +0000","accepted":1795608442.944,'
    '"client":"127.0.0.1:39162","listener":"listener","targetGroup":"tg-gateway-green",'
    '"target":"<NOSRV>","colour":"green","method":"GET","path":"\\/x","status":503,'
    '"bytesIn":120,"bytes":274,"Tq":3,"Tw":-1,"Tc":-1,"Tr":-1,"Ta":0,"termination":"SC",'
    '"traceId":"6B06CF7A-0020-4EAF"}')
NOTICE = "[WARNING]  (20143) : Server tg-gateway-blue/gateway-blue-1 is DOWN, reason: ..."


def test_a_forwarded_request_is_read_with_every_field() -> None:
    entry = parse_line(FORWARDED)
    assert entry == AccessLogEntry(
        time="25/Nov/2026:12:07:22 +0000", accepted=1795608442.808, client="127.0.0.1:39148",
        listener="listener", target_group="tg-gateway-blue", target="gateway-blue-1",
        colour="blue", method="GET", path="/api/products?q=a", status=200, bytes_in=120,
        bytes_out=122, tq_ms=4, tw_ms=0, tc_ms=0, tr_ms=4, ta_ms=5, termination="--",
        trace_id="6B06CF7A-001E-4EAF")


def test_no_server_chosen_reads_as_no_target() -> None:
    entry = parse_line(NO_TARGET)
    assert entry is not None
    assert (entry.status, entry.target_group, entry.target, entry.colour) == \
        (503, "tg-gateway-green", None, "green")
    assert (entry.tc_ms, entry.tr_ms, entry.termination) == (-1, -1, "SC")


def test_an_unset_colour_reads_as_none() -> None:
    raw = json.loads(FORWARDED) | {"colour": "-", "target": NO_SERVER}
    entry = parse_line(json.dumps(raw))
    assert entry is not None and (entry.colour, entry.target) == (None, None)


def test_haproxy_notices_and_a_line_still_being_written_are_skipped() -> None:
    assert parse_line(NOTICE) is None
    assert parse_line("") is None
    assert parse_line(FORWARDED[:60]) is None
    assert parse_line('{"some":"other json"}') is None
    assert parse_line("[1, 2]") is None


def test_the_reader_knows_every_field_the_format_writes() -> None:
    """A field added to ACCESS_LOG_FIELDS without the reader (or the other way) fails here."""
    written = {re.match(r'"(\w+)":', field).group(1)  # type: ignore[union-attr]
               for field, _ in ACCESS_LOG_FIELDS}
    assert written == set(json.loads(FORWARDED))


def test_the_log_is_read_from_an_offset_so_a_test_sees_only_its_own_requests(
        tmp_path: Path) -> None:
    log = tmp_path / "alb.log"
    assert read_access_log(log) == [] and log_size(log) == 0  # not started yet
    log.write_text(f"{NOTICE}\n{FORWARDED}\n")
    mark = log_size(log)
    with log.open("a") as out:
        out.write(f"{NO_TARGET}\n{NOTICE}\n{FORWARDED[:50]}")
    assert [e.status for e in read_access_log(log)] == [200, 503]
    assert [e.status for e in read_access_log(log, since=mark)] == [503]
