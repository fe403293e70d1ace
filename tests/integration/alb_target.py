"""A small HTTP target for the ALB's integration tests, run as its own process.

    python tests/integration/alb_target.py --host 127.200.1.150 --port 40001 --name a

It answers what an ALB test needs to see and nothing more (standard library only, so it starts
in a fraction of a second):

- ``GET /actuator/health``: 200, or 503 after ``POST /control/unhealthy`` (back with
  ``POST /control/healthy``) — the health check path of the gateway's target groups;
- ``GET /slow?seconds=S``: answers after S seconds (drain, 504);
- ``GET /close``: reads the request and closes the connection without answering (502);
- ``GET /control/in-flight``: how many /slow requests it is serving now;
- ``GET /control/connections``: how many TCP connections it has accepted (checks included);
- anything else: ``{"target": <name>, "path": …, "colour": <preview header or null>}``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Target(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, name: str) -> None:
        super().__init__((host, port), Handler)
        self.name = name
        self.healthy = True
        self.in_flight = 0
        self.connections = 0  # TCP connections accepted, health checks' included
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Target

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the ALB's access log is what the tests read."""

    def answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/actuator/health":
            up = self.server.healthy
            self.answer(200 if up else 503, {"status": "UP" if up else "DOWN"})
        elif url.path == "/slow":
            seconds = float(parse_qs(url.query)["seconds"][0])
            with self.server.lock:
                self.server.in_flight += 1
            try:
                time.sleep(seconds)
            finally:
                with self.server.lock:
                    self.server.in_flight -= 1
            self.answer(200, {"target": self.server.name, "slept": seconds})
        elif url.path == "/close":
            self.close_connection = True  # nothing written: the ALB sees the connection end
        elif url.path == "/control/in-flight":
            self.answer(200, {"inFlight": self.server.in_flight})
        elif url.path == "/control/connections":
            self.answer(200, {"connections": self.server.connections})
        else:
            self.answer(200, {"target": self.server.name, "path": self.path,
                              "colour": self.headers.get("X-Come2us-Colour")})

    def do_POST(self) -> None:
        if self.path in ("/control/healthy", "/control/unhealthy"):
            self.server.healthy = self.path == "/control/healthy"
            self.answer(200, {"healthy": self.server.healthy})
        else:
            self.answer(404, {"error": "no such control"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    Target(args.host, args.port, args.name).serve_forever()


if __name__ == "__main__":
    main()
