"""The one shape of every error the gateway itself answers, so clients parse a single format.

``{"status": 404, "error": "Not Found", "message": "no route for GET /x", "requestId": "…",
"path": "/x"}`` with ``Content-Type: application/json`` and the ``X-Request-Id`` header — the
same fields as Spring Boot's error attributes (``requestId`` included), minus the timestamp,
which the access log has.
"""

from __future__ import annotations

import json
from http import HTTPStatus


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def error_body(status: int, message: str, request_id: str, path: str) -> bytes:
    return json.dumps({"status": status, "error": reason(status), "message": message,
                       "requestId": request_id, "path": path},
                      separators=(",", ":")).encode()


def error_response(status: int, message: str, request_id: str, path: str, *,
                   headers: bytes = b"", keep_alive: bool = True, head_only: bool = False) -> bytes:
    """A complete HTTP/1.1 response; ``headers`` are extra raw header lines (CRLF-terminated).

    ``head_only`` answers a HEAD request: the same head, no body.
    """
    body = error_body(status, message, request_id, path)
    head = (f"HTTP/1.1 {status} {reason(status)}\r\n"
            f"content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            f"x-request-id: {request_id}\r\n").encode("latin-1") + headers
    if not keep_alive:
        head += b"connection: close\r\n"
    return head + b"\r\n" + (b"" if head_only else body)
