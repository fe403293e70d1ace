"""The AWS endpoint of the local cloud as a process: moto's server, its state kept on disk.

Run as ``python -m stack.local.emulator_server --host 127.0.3.10 --port 4566 --state-dir D``.

Why our own entry point rather than ``moto_server`` or ``ThreadedMotoServer``:

- the saved state (`stack.local.emulator_state`) is restored *before* the socket is bound, so no
  client — and no readiness probe — ever sees an empty AWS that is about to be replaced;
- the socket is bound in the main thread, so a taken port ends the process at once with a
  message (``ThreadedMotoServer`` binds in a thread and would wait forever for it);
- SIGTERM is a graceful stop: stop accepting, let requests in flight finish, save, exit 0;
- requests pass a gate that a save closes, so a save never pickles a half-applied request, and
  the state is also saved every few seconds while it changes, bounding what a crash can lose;
- it refuses to bind anything but a loopback address: the emulator has no authentication.

Besides moto's own API (and ``/moto-api/``), it answers ``GET /_come2us/status`` (version,
restore and save times, memory) for the readiness probe, and ``POST /_come2us/save`` to save now.
No S3 bucket can be called ``_come2us`` (names start with a letter or digit), so these paths
never shadow an AWS request.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import moto

from stack.local.emulator_state import StateFileError, StateReport, load_state, save_state

# Seconds between saves while the state changes: what a crash (not a stop) can lose at most.
CHECKPOINT_INTERVAL_S = 10.0
STATUS_PATH = "/_come2us/status"
SAVE_PATH = "/_come2us/save"
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
READ_OPERATIONS = ("Describe", "Get", "List", "Scan", "Query", "BatchGet")
# Exit codes, so the log and the supervisor can tell a refusal from a crash.
EXIT_USAGE = 2
EXIT_STATE_REFUSED = 3
EXIT_BIND_FAILED = 4
EXIT_SAVE_FAILED = 5

log = logging.getLogger("come2us.aws-emulator")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class RequestGate:
    """Requests share the backends; a save takes them alone, and waits for in-flight ones.

    A save that is waiting closes the gate to new requests, so a steady stream of requests cannot
    keep it waiting for ever.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._in_flight = 0
        self._closed = False

    @contextmanager
    def request(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._closed)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._condition:
                self._in_flight -= 1
                self._condition.notify_all()

    @contextmanager
    def alone(self, drain_s: float, reopen: bool = True) -> Iterator[int]:
        """Close the gate, wait up to ``drain_s`` for requests in flight; yield how many remain.

        With ``reopen=False`` the gate stays closed afterwards: after the final save at stop, a
        request still arriving on a kept-alive connection must not change what was saved.
        """
        with self._condition:
            self._condition.wait_for(lambda: not self._closed)
            self._closed = True
            self._condition.wait_for(lambda: self._in_flight == 0, timeout=drain_s)
            remaining = self._in_flight
        try:
            yield remaining
        finally:
            if reopen:
                with self._condition:
                    self._closed = False
                    self._condition.notify_all()


class StateKeeper:
    """Restores the state at start, saves it on request, periodically when changed, and at stop."""

    def __init__(self, state_dir: Path | None, gate: RequestGate) -> None:
        self.state_dir = state_dir
        self.gate = gate
        self.changed = threading.Event()
        self.restored: dict[str, Any] | None = None
        self.last_save: dict[str, Any] | None = None
        self._save_lock = threading.Lock()

    def restore(self) -> None:
        if self.state_dir is None:
            return
        report = load_state(self.state_dir)
        if report is None:
            log.info("no saved state in %s: starting with an empty AWS", self.state_dir)
            return
        self.restored = _describe(report)
        log.info(
            "restored %d services (%d bytes, saved %s) in %.3f s",
            len(report.services), report.size_bytes, report.saved_at, report.seconds,
        )

    def save(self, reason: str, drain_s: float = 5.0, final: bool = False) -> dict[str, Any] | None:
        """Save now, between requests; returns what was written, or None without a state dir."""
        if self.state_dir is None:
            return None
        with self._save_lock, self.gate.alone(drain_s, reopen=not final) as still_running:
            if still_running:
                log.warning("saving with %d request(s) still running (%s)", still_running, reason)
            self.changed.clear()
            attempts = 3 if still_running else 1
            for attempt in range(1, attempts + 1):
                try:
                    report = save_state(self.state_dir)
                    break
                except RuntimeError as err:
                    # "dictionary changed size during iteration": only possible when a request
                    # outlived the drain above; the pickle is retried, the old file is intact.
                    if attempt == attempts:
                        self.changed.set()
                        raise
                    log.warning("save attempt %d raced a request (%s); retrying", attempt, err)
                except BaseException:
                    self.changed.set()
                    raise
            self.last_save = _describe(report) | {"reason": reason}
        log.info(
            "saved %d services (%d bytes) in %.3f s (%s)",
            len(report.services), report.size_bytes, report.seconds, reason,
        )
        return self.last_save


def _describe(report: StateReport) -> dict[str, Any]:
    fields = asdict(report)
    fields["path"] = str(report.path)
    fields["services"] = list(report.services)
    fields["seconds"] = round(report.seconds, 4)
    return fields


def _process_age_s() -> float:
    """Seconds since this process was created (interpreter start and imports included)."""
    try:
        # Field 22 of /proc/self/stat, counted after the parenthesised command name.
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])
    except (OSError, ValueError, IndexError):
        return 0.0
    since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    return max(0.0, since_boot - started_ticks / os.sysconf("SC_CLK_TCK"))


def _rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


class EmulatorApp:
    """moto's WSGI application behind the request gate, plus the two ``/_come2us/`` paths."""

    def __init__(self, moto_app: WsgiApp, keeper: StateKeeper, started: float) -> None:
        self.moto_app = moto_app
        self.keeper = keeper
        self.started = started
        self.ready_after_s: float | None = None

    def status(self) -> dict[str, Any]:
        return {
            "moto": moto.__version__,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 3),
            "ready_after_s": self.ready_after_s,
            "rss_bytes": _rss_bytes(),
            "state_dir": str(self.keeper.state_dir) if self.keeper.state_dir else None,
            "restored": self.keeper.restored,
            "last_save": self.keeper.last_save,
            "unsaved_changes": self.keeper.changed.is_set(),
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == STATUS_PATH and method in ("GET", "HEAD"):
            return _json(start_response, "200 OK", self.status())
        if path == SAVE_PATH and method == "POST":
            try:
                saved = self.keeper.save("requested over HTTP")
            except Exception as err:
                log.exception("save requested over HTTP failed")
                return _json(start_response, "500 Internal Server Error", {"error": str(err)})
            return _json(start_response, "200 OK", {"saved": saved})
        with self.keeper.gate.request():
            if _may_change_state(environ):
                self.keeper.changed.set()
            result = self.moto_app(environ, start_response)
            try:
                # The body is produced inside the gate, so a save never sees half a response.
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def _may_change_state(environ: dict[str, Any]) -> bool:
    """Whether a request may change the state, so that the next checkpoint has work to do.

    GET, HEAD and OPTIONS never do; neither do the JSON protocols' reads, named in the
    X-Amz-Target header (``DynamoDB_20120810.DescribeTable`` — what the health probe sends).
    Query-protocol reads (EC2, IAM, ...) are POSTs with the action in the body, which is left
    unread here: they count as changes, costing at most one needless checkpoint.
    """
    if environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD", "OPTIONS"):
        return False
    operation = str(environ.get("HTTP_X_AMZ_TARGET", "")).rpartition(".")[2]
    return not operation.startswith(READ_OPERATIONS)


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body, indent=1).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stack.local.emulator_server",
        description="moto's AWS API on one loopback address, with its state kept on disk.",
    )
    parser.add_argument("--host", required=True, help="loopback address to bind (127.x.y.z)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="directory of the saved state; without it nothing is kept")
    parser.add_argument("--checkpoint-interval", type=float, default=CHECKPOINT_INTERVAL_S,
                        help="seconds between saves while the state changes; 0 saves only at stop")
    parser.add_argument("--drain-seconds", type=float, default=5.0,
                        help="how long a stop waits for requests in flight before saving")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic() - _process_age_s()
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.access_log else logging.WARNING)

    try:
        if not ipaddress.ip_address(args.host).is_loopback:
            log.error("refusing to bind %s: the emulator has no authentication, so it binds "
                      "only to loopback addresses (127.0.0.0/8)", args.host)
            return EXIT_USAGE
    except ValueError:
        log.error("--host must be an IP address, got %r", args.host)
        return EXIT_USAGE
    # moto asks botocore for region lists; a profile the user has set for real AWS can break that.
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto's own call-backs use it

    # Flask and moto's services load here, not at import: the control plane imports this
    # module for its paths only.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    gate = RequestGate()
    keeper = StateKeeper(args.state_dir, gate)
    if args.state_dir is not None and not args.state_dir.is_dir():
        # Created and stamped by the component's data-dir claim (stack.local.datadir), not here.
        log.error("--state-dir %s is not a directory", args.state_dir)
        return EXIT_USAGE
    try:
        keeper.restore()
    except StateFileError as err:
        log.error("%s", err)
        return EXIT_STATE_REFUSED

    app = EmulatorApp(DomainDispatcherApplication(create_backend_app), keeper, started)
    try:
        server = make_server(args.host, args.port, app, threaded=True,
                             request_handler=MotoRequestHandler)
    except (OSError, SystemExit) as err:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, err)
        return EXIT_BIND_FAILED
    # From here the stop signals are taken synchronously by this thread (sigtimedwait below).
    # Blocked before the first thread starts, so every thread inherits the mask. Until here the
    # default action applies: a stop before serving has nothing to save.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    serving = threading.Thread(target=partial(server.serve_forever, poll_interval=0.1),
                               name="http", daemon=True)
    serving.start()
    app.ready_after_s = round(time.monotonic() - started, 3)
    log.info("moto listening on http://%s:%d (%.3f s after start)",
             args.host, args.port, app.ready_after_s)

    interval = args.checkpoint_interval if args.state_dir is not None else 0.0
    while True:
        if interval > 0:
            received = signal.sigtimedwait(STOP_SIGNALS, interval)
        else:
            received = signal.sigwaitinfo(STOP_SIGNALS)
        if received is not None:
            log.info("signal %s: stopping", signal.Signals(received.si_signo).name)
            break
        if keeper.changed.is_set():
            try:
                keeper.save("checkpoint")
            except Exception:
                # The previous file is intact; the next checkpoint or the stop tries again.
                log.exception("checkpoint failed")

    server.shutdown()  # no new connections; requests in flight are drained by the save
    code = 0
    if keeper.changed.is_set():
        try:
            keeper.save("stop", drain_s=args.drain_seconds, final=True)
        except Exception:
            log.exception("saving the state at stop failed; the previous state file is kept")
            code = EXIT_SAVE_FAILED
    else:
        log.info("no change since the last save: nothing to write")
    server.server_close()
    return code


if __name__ == "__main__":
    sys.exit(main())
