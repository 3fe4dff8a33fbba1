"""The real process: start-up, readiness, JSON-only stdout, graceful SIGTERM, OTLP export, exit codes."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from _refsvc_support import FIXTURES_DIR
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

pytestmark = pytest.mark.integration

LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
EXPORT_TIMEOUT_SECONDS = 10.0
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """``python -m reference_service`` with stdout and stderr captured to files under ``tmp_path``."""

    def __init__(self, tmp_path: Path, env: Mapping[str, str]) -> None:
        self.port = _free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.stdout_path = tmp_path / "stdout.log"
        self.stderr_path = tmp_path / "stderr.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "REFSVC_"))}
        with self.stdout_path.open("wb") as stdout, self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "reference_service", "--host", LOOPBACK, "--port", str(self.port)],
                cwd=FIXTURES_DIR,
                env={**clean, **env},
                stdout=stdout,
                stderr=stderr,
            )

    def stdout_lines(self) -> list[str]:
        return self.stdout_path.read_text().splitlines()

    def stderr_text(self) -> str:
        return self.stderr_path.read_text()

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        last_seen = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                pytest.fail(f"service exited with {code} before ready; stderr:\n{self.stderr_text()}")
            try:
                response = httpx.get(f"{self.base_url}/health/ready", timeout=1.0)
            except httpx.TransportError as exc:
                last_seen = repr(exc)
            else:
                if response.status_code == 200:
                    return
                last_seen = f"HTTP {response.status_code}"
            time.sleep(0.05)  # poll interval, not a wait for something to settle
        pytest.fail(
            f"GET {self.base_url}/health/ready not 200 within {timeout}s (last: {last_seen}); "
            f"hint: check stderr:\n{self.stderr_text()}"
        )

    def wait_exit(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"service did not exit within {timeout}s; stdout tail: {self.stdout_lines()[-5:]}")

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def kill_if_running(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Any]:
    started: list[ServiceProcess] = []

    def start(env: Mapping[str, str] | None = None) -> ServiceProcess:
        directory = tmp_path / f"service-{len(started)}"
        directory.mkdir()
        process = ServiceProcess(directory, env or {})
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill_if_running()


def test_serves_logs_only_json_and_stops_cleanly_on_sigterm(start_service: Any) -> None:
    service = start_service()
    service.wait_ready()

    with httpx.Client(base_url=service.base_url, timeout=5.0) as client:
        assert client.get("/health", headers={"X-Correlation-ID": "proc-1"}).status_code == 200
        assert client.get("/error").status_code == 500
        assert client.get("/nope").status_code == 404
        assert (
            client.post("/auth/login", json={"email": "jane@example.com", "password": "x"}).status_code == 200
        )
        assert "http_requests_total" in client.get("/metrics").text

    assert service.terminate() == 0
    records = [json.loads(line) for line in service.stdout_lines()]
    assert all(isinstance(record, dict) for record in records)
    messages = [record["message"] for record in records]
    assert messages.count("request_completed") == 5  # /health/ready included, /metrics not
    assert "Shutting down" in messages
    assert messages[-1] == "service_stopped"
    (health,) = [r for r in records if r.get("correlation_id") == "proc-1"]
    assert health["path"] == "/health"
    for record in records:
        if "correlation_id" not in record:
            assert "trace_id" not in record
            assert "span_id" not in record
    assert "jane@example.com" not in service.stdout_path.read_text()
    assert "Traceback" not in service.stderr_text()


def test_crash_at_start_logs_one_error_and_exits_3(start_service: Any) -> None:
    service = start_service({"REFSVC_BREAK": "crash-at-start"})

    assert service.wait_exit() == 3
    (record,) = [json.loads(line) for line in service.stdout_lines()]
    assert (record["level"], record["message"]) == ("ERROR", "startup_failed")


def test_unknown_variant_is_a_one_line_configuration_error(start_service: Any) -> None:
    service = start_service({"REFSVC_BREAK": "plain-429,no-such-variant"})

    assert service.wait_exit() == 2
    assert service.stdout_lines() == []
    (line,) = service.stderr_text().splitlines()
    assert line.startswith(
        "reference_service: error: REFSVC_BREAK: unknown broken variant(s) 'no-such-variant'"
    )


def test_port_in_use_exits_1_not_the_crash_code(start_service: Any) -> None:
    service = start_service()
    service.wait_ready()

    second = subprocess.run(
        [sys.executable, "-m", "reference_service", "--host", LOOPBACK, "--port", str(service.port)],
        cwd=FIXTURES_DIR,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_SECONDS,
        check=False,
    )

    assert second.returncode == 1
    assert any("address already in use" in json.loads(line)["message"] for line in second.stdout.splitlines())
    assert service.terminate() == 0


def test_starts_and_stops_with_an_unreachable_collector(start_service: Any) -> None:
    service = start_service(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{LOOPBACK}:{_free_port()}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
    )
    service.wait_ready()

    assert httpx.get(f"{service.base_url}/health", timeout=5.0).status_code == 200
    assert service.terminate() == 0
    assert all(isinstance(json.loads(line), dict) for line in service.stdout_lines())


class _Received:
    """Spans received by a test OTLP endpoint, as (resource attributes, span) pairs."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.lock = threading.Lock()

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self.lock:
            self.requests.append(request)

    def wait_for_trace(
        self, trace_id: str, timeout: float = EXPORT_TIMEOUT_SECONDS
    ) -> tuple[dict[str, str], Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for request in self.requests:
                    for resource_spans in request.resource_spans:
                        for scope_spans in resource_spans.scope_spans:
                            for span in scope_spans.spans:
                                if span.trace_id.hex() == trace_id:
                                    attributes = {
                                        a.key: a.value.string_value
                                        for a in resource_spans.resource.attributes
                                    }
                                    return attributes, span
            time.sleep(0.05)
        pytest.fail(
            f"no span of trace {trace_id} exported within {timeout}s ({len(self.requests)} requests seen)"
        )


@pytest.fixture
def otlp_http_receiver() -> Iterator[tuple[str, _Received]]:
    received = _Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                received.add(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def otlp_grpc_receiver() -> Iterator[tuple[str, _Received]]:
    received = _Received()

    class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> trace_service_pb2.ExportTraceServiceResponse:
            received.add(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    server.start()
    yield f"http://{LOOPBACK}:{port}", received
    server.stop(grace=None).wait()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_spans_are_exported_over_otlp(
    start_service: Any, request: pytest.FixtureRequest, protocol: str
) -> None:
    endpoint, received = request.getfixturevalue(
        "otlp_grpc_receiver" if protocol == "grpc" else "otlp_http_receiver"
    )
    service = start_service(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_SERVICE_NAME": "refsvc-export-test",
        }
    )
    service.wait_ready()

    httpx.get(f"{service.base_url}/users/5", headers={"traceparent": TRACEPARENT}, timeout=5.0)

    resource, span = received.wait_for_trace(TRACE_ID)
    assert resource["service.name"] == "refsvc-export-test"
    assert resource["service.version"] == "1.0.0"
    assert resource["deployment.environment"] == "test"
    assert span.name == "GET /users/{user_id}"
    assert span.parent_span_id.hex() == "00f067aa0ba902b7"
    assert service.terminate() == 0
