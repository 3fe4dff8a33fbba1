"""A hostile service: one small stdlib HTTP server that misbehaves one way per mode.

``python hostile_service.py MODE PORT``. Every mode answers ``GET /health``
(so the harness can start it) and otherwise behaves like a tiny service that
writes one JSON log line per request, until its mode's misbehaviour kicks in.
It is a test subject for tests/hostile/test_hostile.py, not a model of anything.

Modes:
  log-flood           writes ~8 MB/s of log lines to stdout (hundreds of MB per minute)
  huge-line           writes one 50 MB log line to stdout, then behaves
  log-burst           writes $HOSTILE_BURST_MIB (60) MiB of short, valid log lines at once
                      (~11,000 lines per MiB), then behaves
  metrics-series      /metrics: millions of series, generated lazily as the body streams
  metrics-huge        /metrics: a 200 MB body
  metrics-endless     /metrics: headers, then a body that trickles and never finishes
  hang-after-headers  every answer but /health: headers, then silence
  close-mid-body      every answer but /health: a short body, then the connection closes
  stop-answering      after its first requests, accepts connections but never answers
  exit-mid-run        exits with code 3 at its third request after the health checks
  hostile-text        invalid UTF-8, NUL, terminal escapes, bidi controls and <script> in its
                      log lines, headers and label values
  fork-orphans        forks children that leave its process group (setsid) and outlive it
  ignore-sigterm      ignores SIGTERM, and so do the children it forks
  otlp-payloads       behaves; its profile only sizes the harness's receiver for the hostile
                      OTLP payloads of test_hostile_otlp.py
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = sys.argv[1]
PORT = int(sys.argv[2])
MB = 1024 * 1024

#: What hostile-text puts everywhere: invalid UTF-8, NUL, ANSI clear-screen and colour, a bidi
#: override, and an HTML script fragment.
HOSTILE = b"\xff\xfe\x00\x1b[2J\x1b[31mRED\x1b[0m \xe2\x80\xaeevil <script>alert('x')</script>"
HOSTILE_TEXT = "\x00\x1b[2J\x1b[31mRED\x1b[0m \u202eevil <script>alert('x')</script>"

_requests = 0
_lock = threading.Lock()


def log(message: str, **fields: object) -> None:
    record = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "level": "INFO",
        "logger": "hostile",
        "message": message,
        **fields,
    }
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def series(count: int) -> Iterator[bytes]:
    yield b"# HELP hostile_series A family with far too many series.\n# TYPE hostile_series gauge\n"
    batch = []
    for i in range(count):
        batch.append(b'hostile_series{id="%d"} 1\n' % i)
        if len(batch) == 10_000:
            yield b"".join(batch)
            batch.clear()
    yield b"".join(batch)


def huge_body(total: int) -> Iterator[bytes]:
    yield b"# HELP hostile_wide Series with very long label values.\n# TYPE hostile_wide gauge\n"
    pad = b"x" * 4000
    sent, i = 0, 0
    while sent < total:
        chunk = b"".join(b'hostile_wide{id="%d",pad="%s"} 1\n' % (i * 16 + j, pad) for j in range(16))
        sent += len(chunk)
        i += 1
        yield chunk


def endless() -> Iterator[bytes]:
    yield b"# HELP hostile_slow A body that never ends.\n# TYPE hostile_slow gauge\n"
    i = 0
    while True:
        time.sleep(0.2)
        i += 1
        yield b'hostile_slow{n="%d"} 1\n' % i


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._answer()

    def _answer(self) -> None:
        global _requests
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send(200, b'{"status": "ok"}', "application/json")
            return
        with _lock:
            _requests += 1
            count = _requests
        if MODE == "stop-answering" and count > 2:
            time.sleep(3600)
        if MODE == "exit-mid-run" and count > 2:
            os._exit(3)
        if MODE == "hang-after-headers":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.flush()
            time.sleep(3600)
        if MODE == "close-mid-body":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"only the start")
            self.wfile.flush()
            self.close_connection = True
            return
        if path == "/metrics":
            self._metrics()
            return
        if MODE == "hostile-text":
            sys.stdout.buffer.write(
                b'{"timestamp": "2026-01-01T00:00:00Z", "level": "INFO", "logger": "hostile", '
                b'"message": "' + HOSTILE.replace(b"\x00", b"\\u0000") + b'"}\n'
            )
            sys.stdout.buffer.write(b"plain " + HOSTILE + b"\n")
            sys.stdout.flush()
            self.send_response(200)
            self.send_header("X-Hostile", HOSTILE_TEXT.replace("\x00", ""))
            self.send_header("Content-Type", "application/json")
            body = json.dumps({"echo": HOSTILE_TEXT}).encode()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        log("request_completed", method=self.command, path=path, status_code=200, duration_ms=1)
        self._send(200, b"{}", "application/json")

    def _metrics(self) -> None:
        if MODE == "metrics-series":
            self._stream(series(5_000_000))
        elif MODE == "metrics-huge":
            self._stream(huge_body(200 * MB))
        elif MODE == "metrics-endless":
            self._stream(endless())
        elif MODE == "hostile-text":
            body = (
                "# HELP hostile_text Label values a browser or a terminal would obey.\n"
                "# TYPE hostile_text gauge\n"
                f'hostile_text{{value="{HOSTILE_TEXT.replace(chr(0), "")}"}} 1\n'
            ).encode()
            self._send(200, body, "text/plain; version=0.0.4")
        else:
            body = b"# HELP up_hostile Always 1.\n# TYPE up_hostile gauge\nup_hostile 1\n"
            self._send(200, body, "text/plain; version=0.0.4")

    def _stream(self, chunks: Iterator[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True  # the scraper stopped reading: what a limit does

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def flood() -> None:
    line = (
        json.dumps(
            {
                "timestamp": "2026-01-01T00:00:00Z",
                "level": "INFO",
                "logger": "flood",
                "message": "flood " + "f" * 400,
            }
        )
        + "\n"
    ).encode()
    block = line * (256 * 1024 // len(line))
    while True:
        sys.stdout.buffer.write(block)
        sys.stdout.flush()
        time.sleep(0.03)  # ~8 MB/s: a flood, without taking a whole core from the harness


def huge_line() -> None:
    sys.stdout.buffer.write(b'{"timestamp": "2026-01-01T00:00:00Z", "level": "INFO", "message": "')
    for _ in range(50):
        sys.stdout.buffer.write(b"h" * MB)
    sys.stdout.buffer.write(b'"}\n')
    sys.stdout.flush()


def burst() -> None:
    line = (
        json.dumps(
            {"timestamp": "2026-01-01T00:00:00Z", "level": "INFO", "logger": "burst", "message": "burst"}
        )
        + "\n"
    ).encode()
    total = int(os.environ.get("HOSTILE_BURST_MIB", "60")) * MB
    block = line * (MB // len(line))
    for _ in range(total // len(block)):
        sys.stdout.buffer.write(block)
    sys.stdout.flush()


def fork_children() -> None:
    """Two children that leave the process group (setsid) and sleep; they outlive the parent."""
    for _ in range(2):
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # the grandchild, reparented away from the service
                if MODE == "ignore-sigterm":
                    signal.signal(signal.SIGTERM, signal.SIG_IGN)
                log("orphan", pid=os.getpid())
                time.sleep(3600)
            os._exit(0)


def main() -> None:
    if MODE == "ignore-sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if MODE in ("fork-orphans", "ignore-sigterm"):
        fork_children()
    if MODE == "log-flood":
        threading.Thread(target=flood, daemon=True).start()
    if MODE == "huge-line":
        huge_line()
    if MODE == "log-burst":
        burst()
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    log("started", mode=MODE)
    server.serve_forever()


if __name__ == "__main__":
    main()
