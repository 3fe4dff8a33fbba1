"""Trace ids in the report's evidence link to Jaeger's UI (conformance.report._links)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance import Status, load_profile
from conformance.report import render_html, render_markdown
from conformance.report._links import TraceLinks, jaeger_ui_url, trace_ids_in, trace_links
from conformance.stack._external import ExternalStack

from .test_report_html import elements, report_with, result

TID = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "0af7651916cd43dd8448eb211c80319c"
LOCAL = {
    "mode": "local",
    "components": [
        {"name": "prometheus", "kind": "process", "version": "2.53.0"},
        {"name": "jaeger", "kind": "process", "version": "v1.76.0", "url": "http://127.0.0.1:16686"},
    ],
}


@pytest.mark.parametrize(
    ("stack", "url"),
    [
        (LOCAL, "http://127.0.0.1:16686"),
        ({"components": [{"name": "jaeger", "kind": "container", "url": "http://127.0.0.1:32768/"}]},
         "http://127.0.0.1:32768"),
        ({"components": [{"name": "jaeger", "kind": "process", "status": "not running"}]}, ""),
        ({"components": [{"name": "jaeger", "kind": "container", "status": "not available", "url": "http://x"}]},
         ""),
        ({"components": [{"name": "trace-store", "kind": "external", "store": "jaeger",
                          "ui_url": "https://jaeger.staging.example/"}]}, "https://jaeger.staging.example"),
        ({"components": [{"name": "trace-store", "kind": "external", "store": "receiver"}]}, ""),
        ({"components": [{"name": "jaeger", "kind": "process", "url": "javascript:alert(1)"}]}, ""),
        ({"components": [{"name": "jaeger", "kind": "process", "url": 'http://x/"><script>'}]}, ""),
        ({"components": [{"name": "jaeger", "kind": "process", "url": "http://a)b"}]}, ""),
        ({}, ""),
    ],
)  # fmt: skip
def test_the_jaeger_ui_comes_from_the_stack_section(stack: dict[str, Any], url: str) -> None:
    assert jaeger_ui_url(stack) == url


def test_a_trace_id_links_to_its_page() -> None:
    links = TraceLinks("http://127.0.0.1:16686")
    assert links.url(TID) == f"http://127.0.0.1:16686/trace/{TID}"
    for not_an_id in ("0" * 32, TID.upper(), TID[:-1], "x" * 32, None, 42, "00f067aa0ba902b7"):
        assert links.url(not_an_id) is None


def test_trace_ids_are_found_under_trace_keys_only() -> None:
    evidence = [
        {"trace_id": TID, "span_id": "00f067aa0ba902b7"},
        {"example": {"trace_id": TID}, "trace_ids": [OTHER, TID]},
        {"canary": "c" * 32, "expected_trace_id": "not-hex"},
        {"traces": ["d" * 32], "channel": "traces (spans)"},
    ]
    assert trace_ids_in(evidence) == [TID, OTHER, "d" * 32]


def test_rewrite_links_only_known_ids() -> None:
    links = TraceLinks("http://j")
    text = f"span in trace {TID}; canary {OTHER}"
    out = links.rewrite(text, [TID], lambda tid, url: f"<{url}>")
    assert out == f"span in trace <http://j/trace/{TID}>; canary {OTHER}"


def _report(stack: dict[str, Any]) -> dict[str, Any]:
    evidence = [
        {"requirement": "SEM-001", "message": f"2 SERVER span(s) lack url.scheme, e.g. trace {TID}",
         "trace_ids": [TID, OTHER], "example": {"trace_id": TID, "span_id": "00f067aa0ba902b7"}},
    ]  # fmt: skip
    failed = result("SEM-001", Status.FAILED, f"1 finding: trace {TID}", evidence)
    return report_with({"SEM-001": failed}, stack=stack)


def test_html_links_every_trace_id_in_the_evidence() -> None:
    html = render_html(_report(LOCAL))
    hrefs = [a.get("href") for tag, a in elements(html) if tag == "a" and a.get("class") == "trace"]
    assert f"http://127.0.0.1:16686/trace/{TID}" in hrefs
    assert f"http://127.0.0.1:16686/trace/{OTHER}" in hrefs
    assert hrefs.count(f"http://127.0.0.1:16686/trace/{TID}") >= 3  # message, list, example
    assert all(
        a.get("rel") == "noreferrer" for tag, a in elements(html) if tag == "a" and a.get("class") == "trace"
    )


def test_html_without_jaeger_has_no_trace_links() -> None:
    html = render_html(_report({"mode": "local", "components": []}))
    assert not [a for tag, a in elements(html) if tag == "a" and a.get("class") == "trace"]
    assert TID in html


def test_markdown_links_the_failed_requirements_traces() -> None:
    md = render_markdown(_report(LOCAL))
    assert f"[{TID}](http://127.0.0.1:16686/trace/{TID})" in md  # in the finding's row
    assert "Traces in Jaeger (http://127.0.0.1:16686):" in md
    assert f"- SEM-001: [{TID[:12]}…](http://127.0.0.1:16686/trace/{TID}), " in md
    assert render_markdown(_report({"mode": "local", "components": []})).count("/trace/") == 0


def _external_profile(tmp_path: Path, external: dict[str, Any]) -> Path:
    data = {"version": 1, "service": {"name": "svc", "command": ["x"]}, "containers": {"external": external}}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("external", "base"),
    [
        ({"trace_store": {"kind": "jaeger", "url": "http://127.0.0.1:16686"}}, "http://127.0.0.1:16686"),
        ({"trace_store": {"kind": "receiver", "url": "http://127.0.0.1:4319"},
          "jaeger_ui_url": "https://jaeger.staging.example"}, "https://jaeger.staging.example"),
        ({"trace_store": {"kind": "receiver", "url": "http://127.0.0.1:4319"}}, None),
    ],
)  # fmt: skip
def test_external_mode_links_to_the_profiles_jaeger(
    tmp_path: Path, external: dict[str, Any], base: str | None
) -> None:
    stack = ExternalStack(load_profile(_external_profile(tmp_path, external)), tmp_path)
    links = trace_links({"stack": stack.describe()})
    assert (links.base if links else None) == base


def test_external_mode_profile_key_gives_the_ui(tmp_path: Any) -> None:
    from conformance._sections.containers import ExternalSection
    from conformance.stack._external import _jaeger_ui

    assert _jaeger_ui(ExternalSection(jaeger_ui_url="https://ui.example")) == "https://ui.example"
    assert (
        _jaeger_ui(ExternalSection(trace_store_kind="jaeger", trace_store_url="http://q:16686"))
        == "http://q:16686"
    )
    assert _jaeger_ui(ExternalSection(trace_store_kind="receiver", trace_store_url="http://r")) == ""
    assert trace_links({"stack": {"components": []}}) is None


def test_a_jaeger_without_its_ui_is_linked_at_the_query_api() -> None:
    """The Jaeger scripts/build-telemetry builds (no UI assets) serves a placeholder page at /trace/."""
    stack = {
        "components": [{"name": "jaeger", "kind": "process", "url": "http://127.0.0.1:16686", "ui": False}]
    }
    links = trace_links({"stack": stack})
    assert links is not None and not links.ui
    assert links.url(TID) == f"http://127.0.0.1:16686/api/traces/{TID}"
    assert jaeger_ui_url(stack) == ""
    md = render_markdown(_report(stack))
    assert f"[{TID}](http://127.0.0.1:16686/api/traces/{TID})" in md
    assert "its query API's JSON: this Jaeger has no UI" in md


@pytest.mark.parametrize(
    ("page", "status", "serves"),
    [
        ("<title>Jaeger UI</title><script src='/static/index.js'></script>", 200, True),
        ("<h1>This is a placeholder for the Jaeger UI home page. If you are seeing this, you are running "
         "a binary that was not compiled with the UI assets.</h1>", 200, False),
        ("gone", 503, None),
    ],
)  # fmt: skip
def test_whether_jaeger_serves_its_ui(page: str, status: int, serves: bool | None) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from conformance.stack._telemetry import jaeger_serves_its_ui

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert jaeger_serves_its_ui(f"http://127.0.0.1:{server.server_address[1]}") is serves
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_jaeger_that_does_not_answer_is_none() -> None:
    from conformance._ports import free_port
    from conformance.stack._telemetry import jaeger_serves_its_ui

    assert jaeger_serves_its_ui(f"http://127.0.0.1:{free_port()}", timeout=0.5) is None
