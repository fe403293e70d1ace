"""haproxy.cfg for the local ALB, rendered from the model; and the listener's map file.

What is fixed for the ALB's lifetime is in the configuration: the listener (bound only to the
ALB node's address), the two target groups with their health checks, timeouts, error pages and
the access-log format. What changes while it runs — targets, the forward action (active colour
and weights) — is never in the configuration: targets are HAProxy dynamic servers added over the
runtime API, and the forward action is a map file that HAProxy reads for every request and that
the runtime API replaces atomically (`prepare map` / `commit map`). So nothing ever needs a
reload, and HAProxy's pid stays the same for the ALB's life.

The forward action is one map entry, read once per request, so a change is atomic:

    active blue:100      # <colour that gets the requests>:<per mille sent to the other one>

A request takes the active colour; then, with probability share/1000, the other colour (ALB's
weighted target groups); then, if it carries the preview header with a colour
(``X-Come2us-Colour: green``), that colour — the listener rule through which a deploy tries the
idle colour before the switch (§7-1 ③).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from stack.model.compute import HealthCheck
from stack.model.edge import Colour
from stack.model.load_balancer import LocalLoadBalancer

ACTIVE_KEY = "active"
SHARE_SCALE = 1000  # the other colour's share is drawn in per mille: rand(1000) < share
FRONTEND = "listener"
# A server added with `add server` keeps no idle connection between requests unless both are
# given (HAProxy 2.6; measured: one new connection to the target per request, a third of the
# direct throughput). These are a configured server's defaults: unlimited, purged after 5 s.
CONNECTION_POOL = ("pool-max-conn", "-1", "pool-purge-delay", "5s")
LOG_LINE_MAX = 8192  # a log line holds a 1024-character URI even when every byte is escaped
# The JSON access log. Strings that come from the client are escaped by HAProxy's json
# converter; everything else is a number or a name HAProxy chose.
ACCESS_LOG_FIELDS = (
    ('"time":"%trg"', "request date, GMT"),
    ('"accepted":%Ts.%ms', "accept time, Unix seconds with milliseconds"),
    ('"client":"%ci:%cp"', "client address"),
    ('"listener":"%f"', "the frontend"),
    ('"targetGroup":"%b"', "the backend = target group"),
    ('"target":"%s"', "the server = target id, <NOSRV> if none"),
    ('"colour":"%[var(txn.colour)]"', "the colour the request was forwarded to"),
    ('"method":"%HM"', "HTTP method"),
    ('"path":"%[capture.req.uri,json(utf8s)]"', "the request URI"),
    ('"status":%ST', "HTTP status sent to the client"),
    ('"bytesIn":%U', "bytes received from the client"),
    ('"bytes":%B', "bytes sent to the client"),
    ('"Tq":%Tq', "ms to receive the request headers"),
    ('"Tw":%Tw', "ms waiting in queues"),
    ('"Tc":%Tc', "ms to connect to the target"),
    ('"Tr":%Tr', "ms for the target to send its response headers"),
    ('"Ta":%Ta', "ms of the request's whole life"),
    ('"termination":"%ts"', "HAProxy's termination state, -- when normal"),
    ('"traceId":"%ID"', "the request's id, also sent to the target as X-Amzn-Trace-Id"),
)
# Errors the ALB answers itself, in the gateway's error shape.
ERROR_MESSAGES = {
    400: "the request could not be parsed",
    408: "the request was not received in time",
    500: "the load balancer failed",
    502: "the target closed the connection or sent an invalid response",
    503: "no healthy target in %b",
    504: "the target did not answer in time",
}


@dataclass(frozen=True)
class AlbFiles:
    """Where the ALB's generated files live: the workspace's run directory."""

    config: Path
    admin_socket: Path
    listener_map: Path

    @classmethod
    def in_run_dir(cls, run: Path, name: str) -> AlbFiles:
        return cls(config=run / f"{name}.cfg", admin_socket=run / f"{name}-admin.sock",
                   listener_map=run / f"{name}-active.map")


def ms(seconds: float) -> str:
    """A duration in HAProxy's syntax, to the millisecond."""
    return f"{round(seconds * 1000)}ms"


def server_options(health: HealthCheck) -> tuple[str, ...]:
    """The options of every target: its health checks and its pool of idle connections.

    HAProxy 2.6 does not apply a backend's ``default-server`` line to servers added with
    ``add server``, so the runtime passes these on each registration; the backend's
    ``default-server`` line is rendered from the same function.
    """
    return ("check", "inter", ms(health.interval_s), "fall", str(health.unhealthy_threshold),
            "rise", str(health.healthy_threshold), *CONNECTION_POOL)


def share_per_mille(weights: Mapping[Colour, int], active: Colour) -> int:
    """How many requests in a thousand go to the colour that is not active."""
    total = sum(weights.values())
    return round(SHARE_SCALE * weights[active.other] / total)


def forward_action(active: Colour, weights: Mapping[Colour, int]) -> str:
    """The map value of a forward action: ``blue:100`` (active colour, the other's share)."""
    return f"{active.value}:{share_per_mille(weights, active)}"


def parse_forward_action(value: str) -> tuple[Colour, int]:
    """``blue:100`` -> (blue, 100); the inverse of `forward_action`."""
    colour, _, share = value.partition(":")
    try:
        return Colour(colour), int(share)
    except ValueError:
        expected = "<colour>:<per mille>"
        raise ValueError(f"not a forward action: {value!r} (expected {expected})") from None


def render_listener_map(active: Colour, weights: Mapping[Colour, int]) -> str:
    return f"{ACTIVE_KEY} {forward_action(active, weights)}\n"


def _error_page(status: int, lb: LocalLoadBalancer) -> str:
    phrase = HTTPStatus(status).phrase
    message = ERROR_MESSAGES[status]
    if status == 504:
        message += f" ({lb.idle_timeout_s:g} s)"
    # json.dumps leaves a message of plain words as is; HAProxy fills the %[...] parts.
    body = (f'{{"status":{status},"error":{json.dumps(phrase)},"message":{json.dumps(message)},'
            f'"requestId":"%[unique-id]",'
            f'"path":"%[capture.req.uri,field(1,?),json(utf8s)]"}}')
    return (f"    http-error status {status} content-type application/json lf-string '{body}' "
            f"hdr X-Amzn-Trace-Id Root=%[unique-id]")


def _forward_rules(lb: LocalLoadBalancer, mapfile: Path) -> list[str]:
    """The listener's rules: forward action, preview header, then the target group."""
    draw = f"{{ rand({SHARE_SCALE}),sub(txn.share) lt 0 }}"
    header = lb.preview_header.lower()
    colours = " ".join(colour.value for colour in Colour)
    rules = [
        "# the forward action, read once: the active colour, or the other one for `share`"
        f" requests in {SHARE_SCALE}",
        f"http-request set-var(txn.forward) str({ACTIVE_KEY}),map({mapfile},{Colour.BLUE}:0)",
        "http-request set-var(txn.primary) var(txn.forward),field(1,:)",
        "http-request set-var(txn.share) var(txn.forward),field(2,:)",
        "http-request set-var(txn.colour) var(txn.primary)",
        *(f"http-request set-var(txn.colour) str({colour.other}) "
          f"if {{ var(txn.primary) -m str {colour} }} {draw}" for colour in Colour),
        f"# the preview rule: {lb.preview_header}: <colour> goes to that colour (§7-1 ③)",
        f"http-request set-var(txn.colour) req.hdr({header}),lower "
        f"if {{ req.hdr({header}),lower -m str {colours} }}",
        *(f"use_backend {lb.group_of(lb.entry_service, colour)} "
          f"if {{ var(txn.colour) -m str {colour} }}" for colour in Colour),
        f"default_backend {lb.group_of(lb.entry_service, Colour.BLUE)}",
    ]
    return [f"    {rule}" for rule in rules]


def _backend(group: str, health: HealthCheck) -> str:
    return f"""backend {group}
    # a target group: round robin over its healthy targets, checked as an ALB checks them
    balance roundrobin
    option httpchk GET {health.path}
    http-check expect status 200
    timeout check {ms(health.timeout_s)}
    default-server {" ".join(server_options(health))}
"""


def render_config(lb: LocalLoadBalancer, files: AlbFiles) -> str:
    """The whole haproxy.cfg; the same model always gives the same text."""
    idle = ms(lb.idle_timeout_s)
    log_format = "{" + ",".join(field for field, _ in ACCESS_LOG_FIELDS) + "}"
    errors = "\n".join(_error_page(status, lb) for status in ERROR_MESSAGES)
    forward = "\n".join(_forward_rules(lb, files.listener_map))
    backends = "\n".join(_backend(group, lb.health) for group in lb.target_groups)
    return f"""# The local ALB ({lb.name}), generated from the model by stack/local/alb/config.py
# at every start. Targets and the forward action change over the runtime API, never here.
global
    stats socket {files.admin_socket} mode 600 level admin
    stats timeout 10s
    log stdout len {LOG_LINE_MAX} format raw local0
    tune.http.logurilen 1024
    hard-stop-after {ms(max(1.0, lb.timeouts.stop_s - 2.0))}

defaults
    mode http
    log global
    option dontlognull
    timeout connect {ms(lb.connect_timeout_s)}
    timeout client {idle}
    timeout server {idle}
    timeout http-keep-alive {idle}
    # A connection a target refused is tried once more on another target; no request is ever
    # sent twice (HAProxy retries only connections, and only before sending).
    retries 1
    option redispatch 1
{errors}

frontend {FRONTEND}
    bind {lb.node.host}:{lb.node.port}
    unique-id-format %{{+X}}o%Ts-%rt-%pid
    log-format '{log_format}'
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Port %[dst_port]
    http-request set-header X-Amzn-Trace-Id Root=%[unique-id]
{forward}

{backends}"""
