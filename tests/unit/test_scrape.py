"""scrape_metrics / parse_exposition against a real local HTTP server and prometheus-client's parsers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import choose_encoder

from conformance._exceptions import HarnessError
from conformance._ports import LOOPBACK, free_port
from conformance.collect._scrape import Exposition, parse_exposition, scrape_metrics

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"

VALID_TEXT = """\
# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{method="GET",code="200"} 3
http_requests_total{method="POST",code="500"} 1
# HELP temperature_celsius Current temperature.
# TYPE temperature_celsius gauge
temperature_celsius 21.5
"""

VALID_OPENMETRICS = """\
# TYPE http_requests counter
# HELP http_requests Requests served.
http_requests_total{method="GET"} 3.0
http_requests_created{method="GET"} 1.7e9
# EOF
"""

Route = Callable[[BaseHTTPRequestHandler], None]


def _send(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class _ExpositionServer:
    """A loopback HTTP server whose paths serve good, bad and enormous expositions."""

    HUGE_CHUNK = b"# padding line that is never going to be parsed\n" * 1024

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("demo_requests", "Requests handled.", ["path"], registry=self.registry)
        self.in_flight = Gauge("demo_in_flight", "Requests in flight.", registry=self.registry)
        self.requests.labels(path="/a").inc(2)
        self.in_flight.set(4)
        self.routes: dict[str, Route] = {
            "/metrics": self._negotiated,
            "/malformed": lambda h: _send(h, 200, TEXT, b"this is { not an exposition\n"),
            "/openmetrics-no-eof": lambda h: _send(h, 200, OPENMETRICS, b"# TYPE x gauge\nx 1\n"),
            "/not-utf8": lambda h: _send(h, 200, TEXT, b'x{l="\xff\xfe"} 1\n'),
            "/error": lambda h: _send(h, 500, "text/plain", b"internal error\n"),
            "/huge": self._huge,
        }
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = server.routes.get(self.path)
                try:
                    if route is None:
                        _send(self, 404, "text/plain", b"not found\n")
                    else:
                        route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (the size cap at work)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="exposition-server")

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def _negotiated(self, handler: BaseHTTPRequestHandler) -> None:
        encoder, content_type = choose_encoder(handler.headers.get("Accept", ""))
        _send(handler, 200, content_type, encoder(self.registry))

    def _huge(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", TEXT)
        handler.end_headers()
        for _ in range(64):  # ~3 MiB, far above the cap the test sets
            handler.wfile.write(self.HUGE_CHUNK)


@pytest.fixture(scope="module")
def server() -> Iterator[_ExpositionServer]:
    srv = _ExpositionServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as c:
        yield c


def _sample_values(expo: Exposition) -> dict[str, float]:
    return {s.name + str(sorted(s.labels.items())): s.value for f in expo.families for s in f.samples}


def test_prometheus_text_exposition_is_parsed(server: _ExpositionServer, client: httpx.Client) -> None:
    expo = scrape_metrics(server.url("/metrics"), client=client)

    assert expo.status_code == 200
    assert expo.content_type.startswith("text/plain")
    assert expo.format == "prometheus-text"
    assert expo.parse_error == ""
    assert expo.ok
    requests = expo.family("demo_requests")
    assert requests is not None
    assert requests.type == "counter"
    assert requests.documentation == "Requests handled."
    values = _sample_values(expo)
    assert values["demo_requests_total[('path', '/a')]"] == 2.0
    assert values["demo_in_flight[]"] == 4.0
    assert "# TYPE demo_requests_total counter" in expo.text


def test_openmetrics_is_negotiated_and_parsed(server: _ExpositionServer, client: httpx.Client) -> None:
    expo = scrape_metrics(server.url("/metrics"), client=client, accept_openmetrics=True)

    assert expo.content_type.startswith("application/openmetrics-text")
    assert expo.format == "openmetrics"
    assert expo.parse_error == ""
    assert expo.text.endswith("# EOF\n")
    requests = expo.family("demo_requests")
    assert requests is not None
    assert requests.type == "counter"
    assert _sample_values(expo)["demo_requests_total[('path', '/a')]"] == 2.0


@pytest.mark.parametrize(
    ("path", "expected_format", "error_part"),
    [
        ("/malformed", "prometheus-text", "prometheus-text parser"),
        ("/openmetrics-no-eof", "openmetrics", "Missing # EOF"),
        ("/not-utf8", "prometheus-text", "not valid UTF-8"),
        ("/error", "prometheus-text", "HTTP 500"),
    ],
)
def test_bad_exposition_sets_parse_error_instead_of_raising(
    server: _ExpositionServer, client: httpx.Client, path: str, expected_format: str, error_part: str
) -> None:
    expo = scrape_metrics(server.url(path), client=client)

    assert error_part in expo.parse_error
    assert expo.families == ()
    assert expo.format == expected_format
    assert not expo.ok


def test_enormous_body_is_capped_and_not_parsed(server: _ExpositionServer, client: httpx.Client) -> None:
    cap = 64 * 1024
    expo = scrape_metrics(server.url("/huge"), client=client, max_bytes=cap)

    assert f"larger than {cap} bytes" in expo.parse_error
    assert len(expo.text.encode()) == cap
    assert expo.families == ()


def test_connection_refused_raises_harness_error_naming_the_url(client: httpx.Client) -> None:
    url = f"http://{LOOPBACK}:{free_port()}/metrics"

    with pytest.raises(HarnessError) as excinfo:
        scrape_metrics(url, client=client, timeout=2.0)

    assert url in str(excinfo.value)
    assert "ConnectError" in str(excinfo.value)


@pytest.mark.parametrize(
    ("text", "content_type", "expected_format", "names"),
    [
        (VALID_TEXT, TEXT, "prometheus-text", ["http_requests", "temperature_celsius"]),
        (VALID_TEXT, "", "prometheus-text", ["http_requests", "temperature_celsius"]),
        (VALID_OPENMETRICS, OPENMETRICS, "openmetrics", ["http_requests"]),
        ("", TEXT, "prometheus-text", []),
    ],
)
def test_parse_exposition_chooses_the_parser_by_content_type(
    text: str, content_type: str, expected_format: str, names: list[str]
) -> None:
    families, fmt, error = parse_exposition(text, content_type)

    assert error == ""
    assert fmt == expected_format
    assert [f.name for f in families] == names


def test_classic_text_served_as_openmetrics_is_an_error() -> None:
    families, fmt, error = parse_exposition(VALID_TEXT, OPENMETRICS)

    assert (families, fmt) == ((), "openmetrics")
    assert error.startswith("openmetrics parser: ValueError")


def test_protobuf_content_type_is_reported_unsupported() -> None:
    _, _, error = parse_exposition("\x00\x01", "application/vnd.google.protobuf; proto=io.prometheus.client")

    assert "unsupported" in error


_EXPOSITION_ALPHABET = st.sampled_from([*'abc_:{}="\\,# \n\t01.e+-', "EOF", "HELP", "TYPE", "counter"])


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(st.text(max_size=300), st.lists(_EXPOSITION_ALPHABET, max_size=80).map("".join)),
    content_type=st.sampled_from([TEXT, OPENMETRICS, "", "text/html", "application/openmetrics-text"]),
)
def test_parse_exposition_never_raises(text: str, content_type: str) -> None:
    families, fmt, error = parse_exposition(text, content_type)

    assert fmt in ("prometheus-text", "openmetrics")
    assert isinstance(error, str)
    assert error == "" or families == ()
