"""The HTML report: one self-contained file, everything escaped, charts only when there is evidence."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import RequirementResult, Status, get_requirement, load_profile
from conformance._requirements import all_requirements
from conformance.report import RUN_KINDS, build_report, render_html
from conformance.report._charts import find_growth, find_latency

HOSTILE = (
    '</pre></td><script>alert("x")</script><img src=x onerror=alert(1)><iframe src="https://evil.example">'
)


class Elements(HTMLParser):
    """Every start tag and its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    return parser.tags


def result(rid: str, status: Status, message: str = "", evidence: list[dict[str, Any]] | None = None) -> Any:
    return RequirementResult(get_requirement(rid), status, message, evidence or [], 0.25)


def report_with(results: dict[str, RequirementResult], service: str = "svc", **kw: Any) -> dict[str, Any]:
    everything = {
        r.id: RequirementResult(r, Status.PASSED)
        for r in all_requirements()
        if r.id.partition("-")[0] in RUN_KINDS["conformance"]
    }
    everything.update(results)
    report = build_report(
        list(everything.values()),
        profile=None,
        profile_path="conformance.yaml",
        stack=kw.get("stack", {"mode": "local", "components": []}),
        started_at=1_700_000_000.0,
        finished_at=1_700_000_042.5,
        today=dt.date(2030, 1, 1),
    )
    report["profile"]["service"] = service
    return report


LATENCY = [
    {"endpoint": "GET /health", "p50_ms": 2.1, "p95_ms": 5.0, "p99_ms": 9.4, "rps": 120.0},
    {
        "endpoint": "POST /chat/completions",
        "p50_ms": 410,
        "p95_ms": 1500,
        "p99_ms": 2300,
        "p95_target_ms": 2000,
    },
]
GROWTH = [
    {"metric": "http_requests_total", "series_before": 40, "series_after_first_half": 52, "series_after": 52},
    {"metric": "bad_metric", "source": "Prometheus", "series_before": 10, "series_after": 210},
]


def test_hostile_service_output_is_escaped_everywhere() -> None:
    bad = result(
        "LOG-001",
        Status.FAILED,
        HOSTILE,
        [
            {"requirement": "LOG-001", "message": HOSTILE, "stream": "stdout", "line": 7, "excerpt": HOSTILE},
            {"note": HOSTILE, HOSTILE: [HOSTILE, {"k": HOSTILE}], "trace_id": HOSTILE},
            {
                "spans": [
                    {"span_id": "a", "parent_span_id": None, "name": HOSTILE},
                    {"span_id": "b", "parent_span_id": "a", "name": "x"},
                ]
            },
        ],
    )
    chart = result(
        "PERF-001",
        Status.PASSED,
        "",
        [{"latency": [{"endpoint": HOSTILE, "p50_ms": 1, "p95_ms": 2, "p99_ms": 3}]}],
    )
    growth = result(
        "MET-008", Status.PASSED, "", [{"rows": [{"metric": HOSTILE, "series_before": 1, "series_after": 2}]}]
    )
    stack = {
        "mode": "local",
        "components": [{"name": HOSTILE, "kind": "process", "version": HOSTILE, "url": HOSTILE}],
    }
    html = render_html(
        report_with({"LOG-001": bad, "PERF-001": chart, "MET-008": growth}, service=HOSTILE, stack=stack)
    )
    tags = {tag for tag, _ in elements(html)}
    assert not tags & {"script", "img", "iframe", "link", "object", "embed", "form"}
    assert not any(name.startswith("on") for _, attrs in elements(html) for name in attrs)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert html.count("&lt;iframe") >= 8  # message, finding, excerpt, notes, span, both charts, stack, title


def test_single_file_with_no_external_loads() -> None:
    html = render_html(report_with({}))
    assert html.startswith("<!DOCTYPE html>")
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None and "default-src 'none'" in csp.group(1) and "script-src" not in csp.group(1)
    for tag, attrs in elements(html):
        assert "src" not in attrs, tag
        href = attrs.get("href") or ""
        assert href == "" or href.startswith("#"), (tag, href)
    assert "@import" not in html and "url(" not in html


def test_every_requirement_has_an_anchor_and_the_verdict_is_on_top() -> None:
    report = report_with({"LOG-005": result("LOG-005", Status.FAILED, "1 finding(s); first: level VERBOSE")})
    html = render_html(report)
    for r in report["results"]:
        assert f'id="req-{r["id"]}"' in html
    assert '<span id="verdict-word">FAILED</span>' in html
    assert html.index('id="verdict"') < html.index('id="matrix"') < html.index('id="attention"')
    assert '<details class="req failed" id="req-LOG-005" open>' in html
    assert '<details class="req passed" id="req-LOG-001">' in html


def test_charts_only_with_their_evidence() -> None:
    plain = render_html(report_with({}))
    assert (
        'id="chart-latency"' not in plain and 'id="chart-growth"' not in plain and 'id="charts"' not in plain
    )
    charted = report_with(
        {
            "PERF-001": result("PERF-001", Status.PASSED, "", [{"latency": LATENCY}]),
            "MET-008": result("MET-008", Status.PASSED, "", [{"top_growth": GROWTH}]),
        }
    )
    html = render_html(charted)
    assert 'id="chart-latency"' in html and 'id="chart-growth"' in html
    assert html.count("<svg") == 3  # the two charts and the status bar
    assert "p95 target 2,000 ms" in html and "120 req/s" in html


def test_chart_rows_are_found_in_nested_evidence() -> None:
    report = report_with(
        {
            "PERF-001": result("PERF-001", Status.PASSED, "", [{"latency": LATENCY}]),
            "MET-008": result("MET-008", Status.PASSED, "", [{"top_growth": GROWTH}]),
        }
    )
    latency = find_latency(report)
    assert [(r.endpoint, r.p95, r.p95_target) for r in latency] == [
        ("GET /health", 5.0, None),
        ("POST /chat/completions", 1500.0, 2000.0),
    ]
    growth = find_growth(report)
    assert [(g.metric, g.late_growth) for g in growth] == [("bad_metric", 200), ("http_requests_total", 0)]


def test_growth_chart_marks_only_second_half_growth() -> None:
    from conformance.report._charts import GrowthRow, growth_svg

    svg = growth_svg([GrowthRow("bounded", 40, 52, mid=52), GrowthRow("unbounded", 40, 90, mid=60)])
    assert svg.count('class="after grew"') == 2  # the legend's and the unbounded row's
    assert "40 → 52 → 52" in svg and "40 → 60 → 90" in svg


def test_evidence_shapes() -> None:
    evidence = [
        {
            "requirement": "LOG-004",
            "message": "line 12: no time zone",
            "stream": "stdout",
            "line": 12,
            "excerpt": '{"t": 1}',
        },
        {"cases": [{"case": "a", "observed": "continued"}, {"case": "b", "observed": "new"}]},
        {"promtool_output": "SUCCESS\n2 rules found"},
        {
            "spans": [
                {"span_id": "1111", "parent_span_id": None, "name": "GET /chat", "kind": "SERVER"},
                {
                    "span_id": "2222",
                    "parent_span_id": "1111",
                    "name": "fake_provider.chat",
                    "kind": "INTERNAL",
                },
            ],
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
        },
        {"omitted_findings": 7},
    ]
    html = render_html(report_with({"LOG-004": result("LOG-004", Status.FAILED, "1 finding(s)", evidence)}))
    assert '<pre class="log"><span class="ln">stdout:12</span>{&quot;t&quot;: 1}</pre>' in html
    assert "<th>case</th><th>observed</th>" in html  # a list of similar objects is a table
    assert "<pre>SUCCESS\n2 rules found</pre>" in html
    assert re.search(r"<b>GET /chat</b>.*?<ul class=\"tree\"><li><b>fake_provider.chat</b>", html)
    assert '<code class="id">0af7651916cd43dd8448eb211c80319c</code>' in html
    assert "Findings (1 of 8 listed)" in html and "7 further finding(s) were counted, not kept." in html


def test_many_findings_fold_after_ten() -> None:
    evidence = [{"requirement": "LOG-005", "message": f"line {i}: bad level"} for i in range(1, 31)]
    html = render_html(report_with({"LOG-005": result("LOG-005", Status.FAILED, "30 finding(s)", evidence)}))
    assert '<summary class="more">20 more finding(s)</summary>' in html
    assert '<ol class="findings" start="11">' in html


def test_errors_with_one_cause_are_one_row_in_needs_attention() -> None:
    errors = {
        r.id: result(r.id, Status.ERROR, "not evaluated: the service exited with code 3")
        for r in all_requirements()
        if r.id.startswith("RL-")
    }
    html = render_html(report_with(errors))
    attention = html[html.index('id="attention"') : html.index('id="requirements"')]
    assert f"<td>{len(errors)} requirements</td>" in attention
    assert attention.count("not evaluated: the service exited with code 3") == 1


def test_baseline_section_and_baselined_results(tmp_path: Path) -> None:
    profile_file = tmp_path / "p.yaml"
    profile_file.write_text(
        "version: 1\nservice: {name: svc, command: [x]}\nbaseline: {entries: ["
        "{id: LOG-005, reason: 'VERBOSE from the SDK (OPS-7)', expires: 2030-01-10},"
        "{id: LOG-008, reason: raw paths, expires: 2030-03-01}]}\n"
    )
    profile = load_profile(profile_file)
    everything = {
        r.id: RequirementResult(r, Status.PASSED) for r in all_requirements() if not r.id.startswith("PERF")
    }
    everything["LOG-005"] = result("LOG-005", Status.FAILED, "2 finding(s)")
    report = build_report(
        list(everything.values()),
        profile=profile,
        profile_path=str(profile_file),
        stack={},
        started_at=1.0,
        finished_at=2.0,
        today=dt.date(2030, 1, 1),
    )
    html = render_html(report)
    assert '<details class="req baselined" id="req-LOG-005">' in html  # not expanded: known
    assert "Baselined until 2030-01-10: VERBOSE from the SDK (OPS-7)" in html
    baseline = html[html.index('id="baseline"') : html.index('id="requirements"')]
    assert (
        '<span class="badge matched">matched</span> <span class="badge error">expires soon</span>' in baseline
    )
    assert '<span class="badge stale">stale</span>' in baseline
    assert '<span id="verdict-word">FAILED</span>' in html
    assert "1 baseline entry no longer valid" in html


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evidence=st.lists(st.dictionaries(st.text(max_size=12), json_values, max_size=5), max_size=4))
def test_any_evidence_renders_without_markup_of_its_own(evidence: list[dict[str, Any]]) -> None:
    marker = "<i>x</i>"
    evidence = [{marker: marker, **item} for item in evidence]
    html = render_html({**TINY, "results": [{**TINY_RESULT, "message": marker, "evidence": evidence}]})
    assert "<i>" not in html
    assert {tag for tag, _ in elements(html)} <= ALLOWED_TAGS


ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "div", "h1", "h2", "h3", "h4", "span",
    "b", "section", "table", "tr", "th", "td", "a", "details", "summary", "ol", "ul", "li", "pre", "code",
    "label", "input", "svg", "rect", "line", "text", "circle", "footer", "p", "br",
}  # fmt: skip
TINY_RESULT = {
    "id": "MET-008", "level": "MUST", "title": "t", "source": "s", "area": "Metrics", "status": "failed",
    "message": "", "evidence": [], "duration_seconds": 0.1,
}  # fmt: skip
TINY: dict[str, Any] = {
    "schema_version": 1, "run_id": "r", "kind": "conformance", "tool": {"name": "obsconform", "version": "0"},
    "profile": {"path": "p", "service": "s"}, "started_at": "t0", "finished_at": "t1", "duration_seconds": 1,
    "stack": {}, "results": [],
    "summary": {
        "verdict": "failed", "exit_code": 1, "counts": {"passed": 0, "failed": 1, "error": 0, "skipped": 0},
        "failed_must": ["MET-008"], "failed_should": [], "errors": [],
    },
}  # fmt: skip


def test_a_rendering_bug_leaves_a_page_that_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import conformance.report as report_module

    def broken(report: Any) -> str:
        raise RuntimeError("bug <here>")

    monkeypatch.setattr(report_module, "render_html", broken)
    report_module.write_renderings(tmp_path, {**TINY, "results": [TINY_RESULT]})
    page = (tmp_path / "conformance-report.html").read_text()
    assert "The HTML report could not be rendered" in page and "RuntimeError: bug &lt;here&gt;" in page
    assert (tmp_path / "junit.xml").is_file() and (tmp_path / "summary.md").is_file()
