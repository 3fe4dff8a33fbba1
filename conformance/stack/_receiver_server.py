"""The OTLP receiver as a container: the entry point of the ``otlp-receiver`` image.

In container mode the service under test runs on the stack's Docker network and
must reach the receiver by name (``otlp-receiver:4318``), so the receiver runs
there too, as a container built from the harness's own wheel. It serves:

* OTLP/HTTP on ``--http-port`` and OTLP/gRPC on ``--grpc-port`` (the embedded
  :class:`~conformance.stack._otlp.OtlpReceiver`, unchanged);
* a small read API on ``--api-port`` for the harness, which reaches it through a
  port published on 127.0.0.1: ``GET /spans[?trace_id=HEX]`` (JSON list of spans,
  see :func:`span_to_json`), ``GET /log_records`` and ``GET /metric_points`` (JSON lists,
  see :func:`record_to_json`), ``GET /stats``, ``GET /describe`` and ``GET /ready``.

The embedded receiver binds 127.0.0.1 by design (on the host, nothing else may
reach it). Inside a container's own network namespace, 127.0.0.1 is unreachable
from the other containers, so :func:`serve` binds the container's interfaces by
setting the receiver module's bind address before starting it; the harness
itself still only ever talks to 127.0.0.1 on the host.

The JSON mapping of :class:`~conformance.telemetry.Span` is pure and lives here
so the client (:mod:`conformance.collect._receiver_api`) and the server agree.
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from conformance.telemetry import OtlpLogRecord, OtlpMetricPoints, Span, SpanEvent

__all__ = [
    "API_PORT",
    "GRPC_PORT",
    "HTTP_PORT",
    "main",
    "record_from_json",
    "record_to_json",
    "span_from_json",
    "span_to_json",
]

#: Container ports of the ``otlp-receiver`` image.
HTTP_PORT = 4318
GRPC_PORT = 4317
API_PORT = 4319

_BYTES_KEY = "$bytes"


def _value_to_json(value: Any) -> Any:
    """An attribute value as JSON: tuples become lists, bytes ``{"$bytes": base64}``."""
    if isinstance(value, bytes):
        return {_BYTES_KEY: base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple | list):
        return [_value_to_json(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _value_to_json(v) for k, v in value.items()}
    return value


def _value_from_json(value: Any) -> Any:
    """The inverse of :func:`_value_to_json`: lists become tuples (as the receiver keeps arrays)."""
    if isinstance(value, list):
        return tuple(_value_from_json(item) for item in value)
    if isinstance(value, dict):
        if set(value) == {_BYTES_KEY} and isinstance(value[_BYTES_KEY], str):
            return base64.b64decode(value[_BYTES_KEY])
        return {k: _value_from_json(v) for k, v in value.items()}
    return value


def _attributes_from_json(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"attributes must be an object, got {type(value).__name__}")
    return {str(k): _value_from_json(v) for k, v in value.items()}


def span_to_json(span: Span) -> dict[str, Any]:
    """A span as a JSON-safe dict (ids hex, times as integers, attribute arrays as lists)."""
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        "attributes": _value_to_json(span.attributes),
        "resource_attributes": _value_to_json(span.resource_attributes),
        "events": [
            {"name": e.name, "time_unix_nano": e.time_unix_nano, "attributes": _value_to_json(e.attributes)}
            for e in span.events
        ],
        "status_code": span.status_code,
        "status_message": span.status_message,
        "trace_state": span.trace_state,
        "scope_name": span.scope_name,
    }


def span_from_json(data: Mapping[str, Any]) -> Span:
    """The :class:`Span` :func:`span_to_json` encoded; raises ``ValueError`` on a malformed document."""
    try:
        parent = data["parent_span_id"]
        return Span(
            trace_id=str(data["trace_id"]),
            span_id=str(data["span_id"]),
            parent_span_id=None if parent is None else str(parent),
            name=str(data["name"]),
            kind=str(data["kind"]),
            start_time_unix_nano=int(data["start_time_unix_nano"]),
            end_time_unix_nano=int(data["end_time_unix_nano"]),
            attributes=_attributes_from_json(data.get("attributes", {})),
            resource_attributes=_attributes_from_json(data.get("resource_attributes", {})),
            events=tuple(
                SpanEvent(
                    name=str(e["name"]),
                    time_unix_nano=int(e["time_unix_nano"]),
                    attributes=_attributes_from_json(e.get("attributes", {})),
                )
                for e in data.get("events", [])
            ),
            status_code=str(data.get("status_code", "UNSET")),
            status_message=str(data.get("status_message", "")),
            trace_state=str(data.get("trace_state", "")),
            scope_name=str(data.get("scope_name", "")),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a span document: {exc!r}") from None


_Record = TypeVar("_Record", OtlpLogRecord, OtlpMetricPoints)


def record_to_json(record: OtlpLogRecord | OtlpMetricPoints) -> dict[str, Any]:
    """An OTLP log record or metric points as a JSON-safe dict, field by field (so a field
    added to the dataclass travels without a change here)."""
    return {f.name: _value_to_json(getattr(record, f.name)) for f in fields(record)}


def record_from_json(kind: type[_Record], data: Any) -> _Record:
    """The ``kind`` :func:`record_to_json` encoded; raises ``ValueError`` on a malformed document
    (not an object, a field missing that has no default, a ``str``/``int`` field of another type)."""
    what = f"not a {kind.__name__} document"
    if not isinstance(data, dict):
        raise ValueError(f"{what}: {type(data).__name__}")
    values: dict[str, Any] = {}
    for f in fields(kind):
        if f.name not in data:
            continue  # the dataclass's default; a missing required field fails below
        value = data[f.name]
        expected = _SCALARS.get(str(f.type))
        if expected is not None and (not isinstance(value, expected) or isinstance(value, bool)):
            raise ValueError(f"{what}: {f.name} is {type(value).__name__}, not {f.type}")
        try:
            values[f.name] = (
                _attributes_from_json(value) if f.name.endswith("attributes") else _value_from_json(value)
            )
        except ValueError as exc:
            raise ValueError(f"{what}: {f.name}: {exc}") from None
    try:
        return kind(**values)
    except TypeError as exc:
        raise ValueError(f"{what}: {exc}") from None


#: Field annotations (strings: the dataclasses use postponed annotations) checked on decoding.
_SCALARS: dict[str, type] = {"str": str, "int": int}


# --------------------------------------------------------------------------- server (in the container)


class _ApiHandler(BaseHTTPRequestHandler):
    server: _ApiServer
    protocol_version = "HTTP/1.1"
    server_version = "obsconform-otlp-receiver-api"
    sys_version = ""
    timeout = 30

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        receiver = self.server.receiver
        if url.path == "/ready":
            self._json(200, {"ready": True})
        elif url.path == "/spans":
            trace_id = parse_qs(url.query).get("trace_id", [None])[0]
            self._json(200, [span_to_json(s) for s in receiver.spans(trace_id)])
        elif url.path == "/log_records":
            self._json(200, [record_to_json(r) for r in receiver.log_records()])
        elif url.path == "/metric_points":
            self._json(200, [record_to_json(p) for p in receiver.metric_points()])
        elif url.path == "/stats":
            self._json(200, receiver.stats())
        elif url.path == "/describe":
            self._json(200, {"description": receiver.describe()})
        else:
            self._json(
                404,
                {
                    "error": f"no such resource {url.path}; try /spans, /log_records, "
                    "/metric_points, /stats, /describe, /ready"
                },
            )

    def _json(self, status: int, body: Any) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the harness polls often
        pass


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, receiver: Any) -> None:
        self.receiver = receiver
        super().__init__(("0.0.0.0", port), _ApiHandler)  # noqa: S104 - inside the container's namespace


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(http_port: int, grpc_port: int, api_port: int) -> None:
    """Run the receiver and its read API until SIGTERM/SIGINT."""
    from conformance.stack import _otlp

    # Bind every interface of the container's network namespace (see module docstring).
    _otlp.LOOPBACK = "0.0.0.0"  # type: ignore[attr-defined]  # noqa: S104
    receiver = _otlp.OtlpReceiver(host="0.0.0.0", http_port=http_port, grpc_port=grpc_port)  # noqa: S104
    receiver.start()
    api = _ApiServer(api_port, receiver)
    thread = threading.Thread(target=api.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    print(
        json.dumps({"message": "otlp receiver ready", "http": http_port, "grpc": grpc_port, "api": api_port}),
        flush=True,
    )
    signal.signal(signal.SIGTERM, _stop)
    try:
        threading.Event().wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        api.shutdown()
        api.server_close()
        receiver.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.stack._receiver_server")
    parser.add_argument("--http-port", type=int, default=HTTP_PORT)
    parser.add_argument("--grpc-port", type=int, default=GRPC_PORT)
    parser.add_argument("--api-port", type=int, default=API_PORT)
    args = parser.parse_args(argv)
    serve(args.http_port, args.grpc_port, args.api_port)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
