"""Probe requests over real loopback sockets: the raw sender writes headers byte
for byte, the httpx path keeps duplicates and the client's own headers, and
the deadline bounds a batch."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from conformance._exceptions import HarnessError
from conformance._ports import LOOPBACK
from conformance._profile import Endpoint
from conformance.collect._propagation import MARKER_PREFIX, ProbeRequest, send_probes, send_raw


class RawHttpServer:
    """A loopback server that keeps each request's bytes and answers a canned response."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.requests: list[bytes] = []
        self._sock = socket.create_server((LOOPBACK, 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                conn.sendall(self.response)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


OK = b"HTTP/1.1 200 OK\r\nX-Correlation-ID: abc\r\nContent-Length: 2\r\n\r\nok"
SPLIT = (
    b"HTTP/1.1 200 OK\r\nX-Correlation-ID: abc\r\nSplit header without colon\r\nContent-Length: 2\r\n\r\nok"
)


@pytest.fixture
def raw_server() -> Iterator[RawHttpServer]:
    server = RawHttpServer(OK)
    yield server
    server.close()


@pytest.fixture
def splitting_server() -> Iterator[RawHttpServer]:
    server = RawHttpServer(SPLIT)
    yield server
    server.close()


def test_raw_request_is_written_byte_for_byte(splitting_server: RawHttpServer) -> None:
    raw_server = splitting_server
    headers = [("TrAcEpArEnT", "\t 00-ab-cd-01 \t"), ("traceparent", "second"), ("X-Correlation-ID", "a\rb")]
    status, response, body, error = send_raw(
        httpx.URL(f"http://{LOOPBACK}:{raw_server.port}"), "GET", "/x?y=1", headers
    )
    assert (status, error, body) == (200, "", b"ok")
    assert ("X-Correlation-ID", "abc") in response
    assert ("", "Split header without colon") in response
    (sent,) = raw_server.requests
    assert sent.startswith(b"GET /x?y=1 HTTP/1.1\r\n")
    assert b"\r\nTrAcEpArEnT: \t 00-ab-cd-01 \t\r\ntraceparent: second\r\nX-Correlation-ID: a\rb\r\n" in sent
    assert b"Connection: close\r\n\r\n" in sent


def test_raw_requests_go_to_loopback_only() -> None:
    with pytest.raises(HarnessError, match="loopback only"):
        send_raw(httpx.URL("http://example.com:80"), "GET", "/", [])


def test_nothing_listening_is_an_error_not_an_exception() -> None:
    with socket.create_server((LOOPBACK, 0)) as sock:
        port = sock.getsockname()[1]
    status, _, _, error = send_raw(httpx.URL(f"http://{LOOPBACK}:{port}"), "GET", "/", [], timeout=2)
    assert status is None and "ConnectionRefused" in error


def test_probes_carry_markers_client_headers_duplicates_and_body(raw_server: RawHttpServer) -> None:
    post = Endpoint(name="chat", path="/chat", method="POST", json={"m": 1}, has_json=True)
    client = httpx.Client(base_url=f"http://{LOOPBACK}:{raw_server.port}", headers={"X-API-Key": "k-1"})
    with client:
        exchanges = send_probes(
            [(client, [ProbeRequest("httpx", post, (("tracestate", "a=1"), ("tracestate", "b=2"))),
                       ProbeRequest("raw", post, (("tracestate", " a=1"),), raw=True)])],
            concurrency=1,
        )  # fmt: skip
    assert set(exchanges) == {"httpx", "raw"}
    assert all(
        x.status_code == 200 and x.response_header("x-correlation-id") == "abc" for x in exchanges.values()
    )
    httpx_request, raw_request = sorted(raw_server.requests, key=lambda r: b"tracestate: b=2" not in r)
    assert b"tracestate: a=1\r\ntracestate: b=2\r\n" in httpx_request
    assert b"\r\ntracestate:  a=1\r\n" in raw_request
    assert b"X-API-Key: k-1" in httpx_request.replace(b"x-api-key", b"X-API-Key")
    assert b"X-API-Key: k-1" in raw_request.replace(b"x-api-key", b"X-API-Key")
    for request in raw_server.requests:
        assert f"User-Agent: {MARKER_PREFIX}".lower().encode() in request.lower()
        assert request.endswith(b'{"m":1}') or request.endswith(b'{"m": 1}')
    raw = exchanges["raw"]
    assert ("tracestate", " a=1") in raw.request_headers


def test_deadline_leaves_late_probes_unsent(raw_server: RawHttpServer) -> None:
    get = Endpoint(name="get", path="/")
    with httpx.Client(base_url=f"http://{LOOPBACK}:{raw_server.port}") as client:
        exchanges = send_probes([(client, [ProbeRequest(f"p{i}", get) for i in range(5)])],
                                deadline=time.monotonic() - 1)  # fmt: skip
    assert exchanges == {} and raw_server.requests == []


def test_probe_names_must_be_unique() -> None:
    get = Endpoint(name="get", path="/")
    with httpx.Client() as client, pytest.raises(ValueError, match="unique"):
        send_probes([(client, [ProbeRequest("p", get), ProbeRequest("p", get)])])
