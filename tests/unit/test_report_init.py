"""``conformance init``: log-contract guessing, probing over httpx.MockTransport, and the written YAML.

The end-to-end run on the real reference service is tests/integration/test_init.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conformance import load_profile
from conformance.cli import main
from conformance.commands._init_launch import OtlpSniffer, listening_ports, parse_proc_net_tcp
from conformance.commands.init import (
    LIBRARY_LEVELS,
    _command_argv,
    compare_profiles,
    guess_log_contract,
    probe_service,
    render_profile,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"


def lines(*records: Any) -> list[str]:
    return [r if isinstance(r, str) else json.dumps(r) for r in records]


GUESSES = [
    pytest.param(
        {
            "stdout": lines(
                {
                    "timestamp": "2030-01-01T00:00:00Z",
                    "level": "INFO",
                    "logger": "app",
                    "message": "service_starting",
                    "service_name": "orders-api",
                },
                {
                    "timestamp": "2030-01-01T00:00:01Z",
                    "level": "INFO",
                    "logger": "app",
                    "message": "request_completed",
                    "method": "GET",
                    "path": "/health",
                    "status_code": 200,
                    "duration_ms": 1.2,
                    "trace_id": TRACE,
                    "span_id": "00f067aa0ba902b7",
                    "correlation_id": "c1",
                },
            )
        },
        {
            "stream": "stdout",
            "fields": {},
            "level_case": "upper",
            "request_completed_message": "request_completed",
            "trace_id_format": "w3c-hex",
            "service_name": "orders-api",
            "required": ["timestamp", "level", "logger", "message"],
        },
        id="canonical",
    ),
    pytest.param(
        {
            "stdout": ["INFO: Started server process [1]", "INFO: Waiting for application startup."],
            "stderr": lines(
                {
                    "time": "2030-01-01T00:00:00Z",
                    "severity": "info",
                    "event": "http_request",
                    "http.method": "GET",
                    "http.route": "/users/{id}",
                    "status": 200,
                    "logging.googleapis.com/trace": f"projects/p/traces/{TRACE}",
                },
                {"time": "2030-01-01T00:00:01Z", "severity": "warning", "event": "slow", "logger_name": "db"},
            ),
        },
        {
            "stream": "stderr",
            "fields": {
                "timestamp": "time",
                "level": "severity",
                "message": "event",
                "method": "http.method",
                "path": "http.route",
                "status_code": "status",
                "trace_id": "logging.googleapis.com/trace",
                "logger": "logger_name",
            },
            "level_case": "lower",
            "request_completed_message": "http_request",
            "trace_id_format": "gcp-resource",
            "required": ["timestamp", "level", "message"],
        },
        id="structlog-on-stderr-gcp",
    ),
    pytest.param(
        {
            "stdout": lines(
                {"ts": 1, "lvl": "WARN", "msg": "x"}, {"ts": 2, "lvl": "Fatal", "msg": "y"}, "plain text"
            )
        },
        {
            "stream": "stdout",
            "fields": {"timestamp": "ts", "level": "lvl", "message": "msg"},
            "level_case": "any",
            "levels": list(LIBRARY_LEVELS),
            "request_completed_message": None,
            "required": ["timestamp", "level", "message"],
        },
        id="odd-levels-and-a-plain-line",
    ),
]


@pytest.mark.parametrize(("streams", "expect"), GUESSES)
def test_guess_log_contract(streams: dict[str, list[str]], expect: dict[str, Any]) -> None:
    guess = guess_log_contract(streams, "sample")
    renamed = {k: v for k, v in guess.fields.items() if k != v}
    seen = {
        "stream": guess.stream,
        "fields": renamed,
        "level_case": guess.level_case,
        "request_completed_message": guess.request_completed_message,
        "trace_id_format": guess.trace_id_format,
        "service_name": guess.service_name,
        "required": guess.required,
        "levels": guess.levels,
    }
    assert {k: seen[k] for k in expect} == expect


def test_non_json_sample_keeps_defaults_and_says_why() -> None:
    guess = guess_log_contract({"stdout": ["starting", "ready"]}, "app.log")
    assert guess.json_objects == 0 and guess.fields == {}
    assert guess.notes == [
        "no JSON objects among the lines of stdout: LOG-001 will fail unless the logs are JSON"
    ]


class FakeService:
    """The HTTP side of a made-up service, for httpx.MockTransport: health paths, /metrics,
    an OpenAPI document, a non-UUID correlation header, and a rate limiter keyed by X-Client-ID."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        headers = {"X-Request-ID": "req-000017"}
        if path in ("/healthz", "/readyz", "/orders/7"):
            key = request.headers.get("x-client-id", "ip")
            self.used[key] = self.used.get(key, 0) + 1
            if path == "/healthz":
                headers |= {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": str(50 - self.used[key])}
            return httpx.Response(200, json={"ok": True}, headers=headers)
        if path == "/metrics":
            return httpx.Response(200, text=EXPOSITION, headers={"Content-Type": "text/plain; version=0.0.4"})
        if path == "/openapi.json":
            return httpx.Response(200, json=OPENAPI)
        if path == "/orders":
            return httpx.Response(401, json={"error": "auth"})
        return httpx.Response(404)


EXPOSITION = """# HELP orders_total Orders.
# TYPE orders_total counter
orders_total{kind="a",region="eu"} 3
orders_total{kind="b"} 1
# HELP orders_created Orders.
# TYPE orders_created gauge
orders_created{kind="a",region="eu"} 1.7e9
# HELP queue_depth Depth.
# TYPE queue_depth gauge
queue_depth 4
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
# HELP process_cpu_seconds_total CPU.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.5
"""
OPENAPI = {
    "info": {"title": "Orders API"},
    "paths": {
        "/healthz": {"get": {}},
        "/orders": {"get": {}, "post": {"requestBody": {}}},
        "/orders/{order_id}": {"get": {"parameters": [{"name": "order_id", "in": "path", "example": 7}]}},
        "/carts/{cart_id}": {"get": {"parameters": [{"name": "cart_id", "in": "path"}]}},
    },
}


def probe(fake: FakeService) -> Any:
    with httpx.Client(transport=httpx.MockTransport(fake), base_url="http://127.0.0.1:8080") as client:
        return probe_service(client, "http://127.0.0.1:8080")


BOOKS_OPENAPI = {
    "info": {"title": "Books"},
    "paths": {
        "/books": {
            "get": {},
            "post": {
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BookIn"}}}
                }
            },
        },
        "/books/{book_id}": {"get": {"parameters": [{"name": "book_id", "in": "path"}]}, "delete": {}},
    },
    "components": {
        "schemas": {
            "BookIn": {
                "type": "object",
                "required": ["title", "author", "tags", "kind"],
                "properties": {
                    "title": {"type": "string", "minLength": 1},
                    "author": {"type": "string", "maxLength": 4},
                    "year": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "kind": {"enum": ["paper", "cloth"]},
                },
            }
        }
    },
}


def test_openapi_ids_come_from_lists_and_bodies_from_the_request_schema() -> None:
    """FastAPI's shape: no examples, so the id comes from GET /books and the POST body
    from the required properties of BookIn; a DELETE is never sent."""
    sent: list[tuple[str, str, Any]] = []

    def service(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        sent.append((request.method, request.url.path, body))
        if request.url.path == "/openapi.json":
            return httpx.Response(200, json=BOOKS_OPENAPI)
        if (request.method, request.url.path) == ("GET", "/books"):
            return httpx.Response(200, json=[{"id": 3, "title": "SRE"}])
        if (request.method, request.url.path) == ("GET", "/books/3"):
            return httpx.Response(200, json={"id": 3})
        if (request.method, request.url.path) == ("POST", "/books"):
            return httpx.Response(201, json={"id": 4})
        return httpx.Response(404)

    with httpx.Client(transport=httpx.MockTransport(service), base_url="http://127.0.0.1:8080") as client:
        found = probe_service(client, "http://127.0.0.1:8080")
    live = {(e.method, e.path): (e.path_params, e.json, e.status) for e in found.endpoints if not e.commented}
    body = {"title": "obsconform", "author": "obsc", "tags": ["obsconform"], "kind": "paper"}
    assert live == {
        ("GET", "/books"): ({}, None, 200),
        ("GET", "/books/{book_id}"): ({"book_id": "3"}, None, 200),
        ("POST", "/books"): ({}, body, 201),
    }
    assert ("POST", "/books", body) in sent
    assert not any(method == "DELETE" for method, _, _ in sent)
    (deleted,) = [e for e in found.endpoints if e.method == "DELETE"]
    assert deleted.commented and "changes or deletes data" in deleted.note
    text = render_profile(
        found, None, name="books", command=None, has_port_placeholder=False, port=8080, cwd=None, env={}
    )
    assert 'json: {"title": "obsconform", "author": "obsc", "tags": ["obsconform"], "kind": "paper"}' in text
    assert "expect_status: 201" in text


def test_probe_finds_endpoints_metrics_and_headers() -> None:
    fake = FakeService()
    found = probe(fake)
    assert {r.url.host for r in fake.requests} == {"127.0.0.1"}
    assert {r.method for r in fake.requests} == {"GET"}
    assert len(fake.requests) < 40
    live = [(e.name, e.path, e.path_params) for e in found.endpoints if not e.commented]
    assert live == [
        ("healthz", "/healthz", {}),
        ("readyz", "/readyz", {}),
        ("orders_order_id", "/orders/{order_id}", {"order_id": "7"}),
    ]
    commented = {(e.method, e.path): e.note for e in found.endpoints if e.commented}
    assert commented == {
        ("GET", "/orders"): "from OpenAPI; answered 401",
        ("POST", "/orders"): "from OpenAPI; needs a body its schema lacks: fill in and uncomment",
        ("GET", "/carts/{cart_id}"): "from OpenAPI; needs path parameter values: fill in and uncomment",
    }
    assert found.ready_path == "/readyz" and found.title == "Orders API"
    assert [(m.name, m.type, m.labels, m.extra_labels) for m in found.metrics] == [
        ("orders_total", "counter", ("kind",), True),
        ("queue_depth", "gauge", (), False),
        ("latency_seconds", "histogram", None, False),
    ]
    assert found.runtime_metrics == 1
    assert (found.correlation_header, found.correlation_uuid) == ("X-Request-ID", False)
    assert found.client_header == "X-Client-ID"


def test_written_profile_validates_and_keeps_what_was_found(tmp_path: Path) -> None:
    found = probe(FakeService())
    logs = guess_log_contract(GUESSES[1].values[0], "`docker logs orders`")  # type: ignore[arg-type]
    argv, has_port = _command_argv("./orders --listen 127.0.0.1:8080", 8080)
    text = render_profile(
        found,
        logs,
        name="orders-api",
        command=argv,
        has_port_placeholder=has_port,
        port=8080,
        cwd=None,
        env={"MODE": "test"},
    )
    path = tmp_path / "conformance.yaml"
    path.write_text(text)
    profile = load_profile(path)
    assert profile.service.command == ("./orders", "--listen", "127.0.0.1:{port}")
    assert profile.service.ready.path == "/readyz"
    assert [e.name for e in profile.endpoints] == ["healthz", "readyz", "orders_order_id"]
    assert profile.logs.stream == "stderr" and profile.logs.fields["level"] == "severity"
    assert profile.logs.trace_id_format == "gcp-resource" and profile.logs.level_case == "lower"
    assert profile.correlation_header == "X-Request-ID" and profile.client_header == "X-Client-ID"
    assert profile.section("traces").correlation_id_format == "any"
    assert profile.section("traces").probe_endpoint.name == "readyz"  # the GET without rate-limit headers
    assert {"RL-001", "ALR-001"} <= set(profile.not_applicable)
    assert profile.not_applicable["SEM-004"].startswith(
        "not configured yet: conformance init found no OpenTelemetry HTTP metric"
    )
    data = yaml.safe_load(text)
    assert data["metrics"]["required"][0] == {
        "name": "orders_total",
        "type": "counter",
        "labels": ["kind"],
        "extra_labels": True,
    }
    assert (
        '  # - {name: "post_orders", method: POST, path: "/orders"}  # from OpenAPI; needs a body its schema'
        in text
    )


def test_hostile_log_values_stay_inert(tmp_path: Path) -> None:
    evil = "x\nversion: 2\n# service: {name: y}"
    streams = {
        "stdout": lines(
            {
                "level": "INFO",
                "message": evil,
                "method": "GET",
                "path": "/",
                "status_code": 200,
                "service_name": evil,
                "timestamp": "t",
                "logger": "l",
            }
        )
    }
    logs = guess_log_contract(streams, f"file{evil}")
    found = probe(FakeService())
    text = render_profile(
        found,
        logs,
        name="svc",
        command=["x"],
        has_port_placeholder=False,
        port=8080,
        cwd=None,
        env={},
    )
    assert logs.request_completed_message is None  # not a plain token: not written
    data = yaml.safe_load(text)
    assert data["version"] == 1 and data["service"]["name"] == "svc" and data["service"]["port"] == 8080


def test_command_port_becomes_a_placeholder() -> None:
    assert _command_argv("app --port 8080", 8080) == (["app", "--port", "{port}"], True)
    assert _command_argv("app --port=8080", 8080) == (["app", "--port={port}"], True)
    assert _command_argv("app", 8080) == (["app"], False)


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (
            ["--url", "http://example.com:80"],
            "--url: must be http://127.0.0.1:PORT (the harness only talks to 127.0.0.1)",
        ),
        (["--url", "http://127.0.0.1"], "--url: must be http://127.0.0.1:PORT"),
        (["--url", "http://127.0.0.1:1/api"], "--url: give the service's base URL without a path"),
        (["--url", "http://127.0.0.1:1", "--env", "oops"], "--env: expected KEY=VALUE, got 'oops'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expect: str
) -> None:
    assert main(["init", *argv, "--out", str(tmp_path / "p.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"conformance: error: {expect}") and err.count("\n") == 1


def test_existing_output_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "conformance.yaml"
    out.write_text("keep me")
    assert main(["init", "--url", "http://127.0.0.1:9", "--out", str(out)]) == 2
    assert "exists; pass --force to overwrite it" in capsys.readouterr().err
    assert out.read_text() == "keep me"


def test_unreachable_service_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance._ports import free_port

    port = free_port()
    assert (
        main(
            ["init", "--url", f"http://127.0.0.1:{port}", "--out", str(tmp_path / "p.yaml"), "--timeout", "1"]
        )
        == 3
    )
    assert f"cannot reach http://127.0.0.1:{port}/obsconform-init-" in capsys.readouterr().err
    assert not (tmp_path / "p.yaml").exists()


# --------------------------------------------------------------------------- issue 19


def spa(request: httpx.Request) -> httpx.Response:
    """A single-page app: index.html with 200 for every path, its real health under /api/."""
    if request.url.path == "/api/healthz":
        return httpx.Response(200, json={"status": "ok"})
    return httpx.Response(200, text="<!doctype html><html>shop</html>", headers={"Content-Type": "text/html"})


def test_a_catch_all_page_is_no_health_or_metrics_endpoint() -> None:
    with httpx.Client(transport=httpx.MockTransport(spa), base_url="http://127.0.0.1:8080") as client:
        found = probe_service(client, "http://127.0.0.1:8080")
    assert [e.path for e in found.endpoints if not e.commented] == ["/api/healthz"]
    assert found.ready_path == "/api/healthz"
    assert "/health" in found.rejected and "/metrics" not in [e.path for e in found.endpoints]
    assert found.metrics_path is None and "like any path" in found.metrics_note
    text = render_profile(
        found, None, name="shop", command=["shop", "{port}"], has_port_placeholder=True, port=1, cwd=None,
        env={},
    )  # fmt: skip
    data = yaml.safe_load(text)
    assert data["metrics"] == {"exposed": False}
    assert data["service"]["ready"]["path"] == "/api/healthz"


@pytest.mark.parametrize(
    ("streams", "expect"),
    [
        pytest.param(
            {
                "stdout": lines(
                    {
                        "@timestamp": "2030-01-01T00:00:00.000Z",
                        "log.level": "info",
                        "message": "handled request",
                        "trace.id": TRACE,
                        "span.id": "00f067aa0ba902b7",
                        "http.request.method": "GET",
                        "url.path": "/api/items/2",
                        "http.response.status_code": 200,
                    }
                )
            },
            {
                "fields": {
                    "timestamp": "@timestamp",
                    "level": "log.level",
                    "trace_id": "trace.id",
                    "span_id": "span.id",
                    "method": "http.request.method",
                    "path": "url.path",
                    "status_code": "http.response.status_code",
                },
                "request_completed_message": "handled request",
            },
            id="ecs",
        ),
        pytest.param(
            {
                "stdout": lines(
                    {
                        "time": "2030-01-01T00:00:00Z",
                        "level": 30,
                        "severity": "INFO",
                        "message": "request completed",
                        "reqId": "req-1",
                        "res": {"statusCode": 200},
                        "responseTime": 1.5,
                        "logging.googleapis.com/trace": f"projects/p/traces/{TRACE}",
                        "logging.googleapis.com/spanId": "00f067aa0ba902b7",
                    }
                )
            },
            {
                "fields": {
                    "timestamp": "time",
                    "level": "severity",
                    "correlation_id": "reqId",
                    "trace_id": "logging.googleapis.com/trace",
                    "span_id": "logging.googleapis.com/spanId",
                    "status_code": "res.statusCode",
                    "duration_ms": "responseTime",
                },
                "request_completed_message": "request completed",
                "trace_id_format": "gcp-resource",
            },
            id="gcp-pino-nested",
        ),
        pytest.param(
            {
                "stdout": lines(
                    {
                        "time": "t",
                        "level": "INFO",
                        "msg": "request completed",
                        "method": "GET",
                        "path": "/items/1",
                        "path_template": "/items/{id}",
                        "status": 200,
                    }
                )
            },
            {
                "fields": {
                    "timestamp": "time",
                    "message": "msg",
                    "path": "path_template",
                    "status_code": "status",
                }
            },
            id="path-template-wins-over-the-raw-path",
        ),
        pytest.param(
            {
                "stdout": ['INFO:     127.0.0.1:5 - "GET /books HTTP/1.1" 200 OK'],
                "stderr": ["2030-01-01 00:00:00,000 INFO [bookshelf] request completed method=GET"],
            },
            {"stream": "stderr", "fields": {}, "request_completed_message": "request completed"},
            id="text-logs-on-stderr",
        ),
    ],
)
def test_log_names_of_real_libraries(streams: dict[str, list[str]], expect: dict[str, Any]) -> None:
    guess = guess_log_contract(streams, "sample")
    seen = {
        "stream": guess.stream,
        "fields": {k: v for k, v in guess.fields.items() if k != v},
        "request_completed_message": guess.request_completed_message,
        "trace_id_format": guess.trace_id_format,
    }
    assert {k: seen[k] for k in expect} == expect


def test_listen_sockets_are_read_from_proc_net_tcp() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1\n"
        "   1: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1\n"
    )
    assert parse_proc_net_tcp(table) == {"4242": 8080}


def test_listening_ports_of_our_own_process_group() -> None:
    import os
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        assert port in listening_ports(os.getpgid(0))


def test_the_sniffer_sends_grpc_and_http_to_the_receiver() -> None:
    import grpc  # type: ignore[import-untyped]
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from conformance.stack._otlp import OtlpReceiver

    with OtlpReceiver() as receiver:
        sniffer = OtlpSniffer(receiver)
        try:
            body = ExportTraceServiceRequest().SerializeToString()
            answer = httpx.post(
                f"{sniffer.endpoint}/v1/traces",
                content=body,
                headers={"Content-Type": "application/x-protobuf"},
                timeout=5,
            )
            assert answer.status_code == 200
            with grpc.insecure_channel(f"127.0.0.1:{sniffer.port}") as channel:
                stub = trace_service_pb2_grpc.TraceServiceStub(channel)
                stub.Export(ExportTraceServiceRequest(), timeout=5)
        finally:
            sniffer.stop()
        assert sniffer.connections["http"] >= 1 and sniffer.connections["grpc"] >= 1
        assert sniffer.protocols() == ["grpc", "http/protobuf"]


def test_check_lists_a_renamed_field_and_a_moved_endpoint() -> None:
    existing = {
        "logs": {"fields": {"correlation_id": "request_id"}, "stream": "stdout"},
        "service": {"ready": {"path": "/healthz"}},
        "endpoints": [{"name": "healthz", "path": "/healthz"}],
    }
    fresh = {
        "logs": {"fields": {"correlation_id": "req_id"}, "stream": "stdout"},
        "service": {"ready": {"path": "/livez"}},
        "endpoints": [{"name": "livez", "path": "/livez"}],
    }
    assert compare_profiles(existing, fresh) == [
        "service.ready.path: the profile says '/healthz', the service now shows '/livez'",
        "logs.fields.correlation_id: the profile says 'request_id', the service now logs 'req_id'",
        "endpoints: /healthz (healthz) no longer answers unlike an unknown path",
    ]
    assert compare_profiles(existing, existing) == []


def test_validate_names_every_unfilled_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    found = probe(FakeService())
    text = render_profile(
        found, None, name="svc", command=None, has_port_placeholder=False, port=8080, cwd=None, env={}
    )
    path = tmp_path / "conformance.yaml"
    path.write_text(text)
    load_profile(path)  # it parses: only values are missing
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "incomplete: 1 value(s) still to fill in" in err
    assert "service.command[0]: the argv that starts the service" in err


def test_the_written_profile_holds_no_date_port_or_count() -> None:
    found = probe(FakeService())
    found.otlp_observed, found.otlp = True, {"spans": 23, "metrics": 4, "log records": 0}
    found.otlp_protocols = ["grpc"]
    logs = guess_log_contract(GUESSES[0].values[0], "the service's stdout and stderr")  # type: ignore[arg-type]
    kwargs: dict[str, Any] = dict(
        name="svc", command=["svc", "{port}"], has_port_placeholder=True, port=38123, cwd=None, env={}
    )
    text = render_profile(found, logs, **kwargs)
    assert text == render_profile(found, logs, **kwargs)
    assert "38123" not in text and "23" not in text and "2026" not in text
    data = yaml.safe_load(text)
    assert data["telemetry"] == {"otlp_protocol": "grpc"}


def test_local_stack_fills_the_otlp_placeholders(tmp_path: Path) -> None:
    from conformance.stack._local import LocalStack
    from conformance.stack._telemetry import TelemetryPlan

    profile_path = tmp_path / "p.yaml"
    profile_path.write_text(
        "version: 1\nservice:\n  name: s\n  command: [x]\n"
        '  env: {MY_TRACES: "{otlp_http_endpoint}/v1/traces", MY_GRPC: "{otlp_grpc_endpoint}"}\n'
        "endpoints:\n  - {name: h, method: GET, path: /h}\n"
    )
    stack = LocalStack(load_profile(profile_path), tmp_path, telemetry=TelemetryPlan(None, "test"))
    with stack.receiver:
        env = stack.service_env()
        assert env["MY_TRACES"] == f"{stack.receiver.http_endpoint}/v1/traces"
        assert env["MY_GRPC"] == stack.receiver.grpc_endpoint


def test_container_stack_fills_the_otlp_placeholders(tmp_path: Path) -> None:
    from conformance.stack._containers import ContainerStack

    profile_path = tmp_path / "p.yaml"
    profile_path.write_text(
        "version: 1\nservice:\n  name: s\n  image: example/s:1\n"
        '  env: {MY_TRACES: "{otlp_http_endpoint}/v1/traces", MY_GRPC: "{otlp_grpc_endpoint}"}\n'
        "endpoints:\n  - {name: h, method: GET, path: /h}\n"
    )
    stack = ContainerStack(load_profile(profile_path), tmp_path)
    assert stack.service_env(collector=False)["MY_TRACES"] == "http://otlp-receiver:4318/v1/traces"
    assert stack.service_env(collector=True)["MY_GRPC"] == "http://otel-collector:4317"


def test_init_leaves_sem_004_to_a_service_with_opentelemetry_http_metrics() -> None:
    from conformance.commands.init import FoundMetric, ServiceFindings, _not_applicable

    def declared(found: ServiceFindings) -> set[str]:
        return {rid for rid, _ in _not_applicable(found, None)}

    assert "SEM-004" in declared(ServiceFindings(url="http://127.0.0.1:1"))
    on_metrics = ServiceFindings(
        url="http://127.0.0.1:1",
        metrics=[FoundMetric("http_server_request_duration_seconds", "histogram", None)],
    )
    assert "SEM-004" not in declared(on_metrics)
    over_otlp = ServiceFindings(url="http://127.0.0.1:1", otlp={"spans": 3, "metrics": 2}, otlp_observed=True)
    assert "SEM-004" not in declared(over_otlp)
