"""TRC-002…TRC-012 on hand-made exchanges, spans and log lines: each check
passes on a conforming request and fails, under its own id, on the defect it
exists for. The W3C vector file is checked against its upstream test names and
against OpenTelemetry's own propagator."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from conformance._profile import LogContract, load_profile
from conformance._sections.traces import DEFAULT_TRACESTATE, KEY, TracesSection
from conformance.checks import traces
from conformance.checks.logs import ParsedLogLine, parse_log_lines
from conformance.checks.traces import Expectation, Observed, SpanSource
from conformance.collect._propagation import MARKER_PREFIX, fill_placeholders, fresh_ids
from conformance.telemetry import HttpExchange, LogLine, Span

REPO = Path(__file__).resolve().parents[2]
VECTOR_DATA = yaml.safe_load((REPO / "suites/w3c_trace_context_vectors.yaml").read_text(encoding="utf-8"))
VECTORS = traces.load_vectors(VECTOR_DATA)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
SERVER = "b7ad6b7169203331"
CHILD = "a1b2c3d4e5f60718"
HEADER = "X-Correlation-ID"
CID = "550e8400-e29b-41d4-a716-446655440000"
MARKER = MARKER_PREFIX + "0001"
SRC = SpanSource(store="embedded OTLP receiver at http://127.0.0.1:1", exporter="the service's OTLP exporter",
                 waited=15)  # fmt: skip

#: Test methods of TraceContextTest in w3c/trace-context test/test.py.
UPSTREAM_TESTS = (
    "test_both_traceparent_and_tracestate_missing",
    "test_traceparent_included_tracestate_missing",
    "test_traceparent_duplicated",
    "test_traceparent_header_name",
    "test_traceparent_header_name_valid_casing",
    "test_traceparent_version_0x00",
    "test_traceparent_version_0xcc",
    "test_traceparent_version_0xff",
    "test_traceparent_version_illegal_characters",
    "test_traceparent_version_too_long",
    "test_traceparent_version_too_short",
    "test_traceparent_trace_id_all_zero",
    "test_traceparent_trace_id_illegal_characters",
    "test_traceparent_trace_id_too_long",
    "test_traceparent_trace_id_too_short",
    "test_traceparent_parent_id_all_zero",
    "test_traceparent_parent_id_illegal_characters",
    "test_traceparent_parent_id_too_long",
    "test_traceparent_parent_id_too_short",
    "test_traceparent_trace_flags_illegal_characters",
    "test_traceparent_trace_flags_too_long",
    "test_traceparent_trace_flags_too_short",
    "test_traceparent_ows_handling",
    "test_tracestate_included_traceparent_missing",
    "test_tracestate_included_traceparent_included",
    "test_tracestate_header_name",
    "test_tracestate_header_name_valid_casing",
    "test_tracestate_empty_header",
    "test_tracestate_multiple_headers_different_keys",
    "test_tracestate_duplicated_keys",
    "test_tracestate_all_allowed_characters",
    "test_tracestate_ows_handling",
    "test_tracestate_key_illegal_characters",
    "test_tracestate_key_illegal_vendor_format",
    "test_tracestate_member_count_limit",
    "test_tracestate_key_length_limit",
    "test_tracestate_value_illegal_characters",
)


# --------------------------------------------------------------------------- builders


def exchange(
    *, request: list[tuple[str, str]] | None = None, response: list[tuple[str, str]] | None = None,
    status: int | None = 200, marker: str = MARKER,
) -> HttpExchange:  # fmt: skip
    return HttpExchange(
        endpoint="models", method="GET", url="http://127.0.0.1:1/models", path="/models",
        request_headers=(("User-Agent", marker), *(request or [])), status_code=status,
        response_headers=tuple(response if response is not None else [(HEADER, CID)]),
    )  # fmt: skip


def span(
    span_id: str = SERVER, parent: str | None = PARENT, *, trace_id: str = TRACE, kind: str = "SERVER",
    marker: str | None = MARKER, trace_state: str = "", attribute: str = "user_agent.original",
) -> Span:  # fmt: skip
    return Span(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, name="GET /models", kind=kind,
        start_time_unix_nano=1, end_time_unix_nano=2,
        attributes={attribute: marker} if marker else {}, trace_state=trace_state,
    )  # fmt: skip


def record(**over: Any) -> dict[str, Any]:
    base = {"timestamp": "2025-12-06T10:30:45.123Z", "level": "INFO", "logger": "svc",
            "message": "request_completed", "correlation_id": CID, "trace_id": TRACE,
            "span_id": SERVER}  # fmt: skip
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def log_lines(*records: dict[str, Any]) -> list[ParsedLogLine]:
    return parse_log_lines(
        [LogLine(i, json.dumps(r).encode()) for i, r in enumerate(records, 1)], LogContract()
    )


def observed(
    x: HttpExchange | None = None, spans: list[Span] | None = None, lines: list[ParsedLogLine] | None = None,
    *, continued: tuple[str, str] | None = None, supplied: str | None = None, name: str = "GET /models",
) -> Observed:  # fmt: skip
    lines = lines if lines is not None else log_lines(record())
    return traces.observe(
        name, x or exchange(), spans if spans is not None else [span()], lines, correlation_header=HEADER,
        continued=continued, supplied_correlation_id=supplied,
        shared=traces.shared_correlation_ids(lines, "request_completed"),
    )  # fmt: skip


def ids(findings: list[Any]) -> set[str]:
    return {f.requirement_id for f in findings}


CONTINUE = Expectation(
    "GET /models with traceparent", "continue", TRACE, PARENT, includes="congo=t61rcWkgMzE"
)


# --------------------------------------------------------------------------- the vector file


class TestVectorFile:
    def test_every_upstream_test_is_adapted(self) -> None:
        adapted = {v.w3c.removeprefix("TraceContextTest.") for v in VECTORS}
        assert adapted == set(UPSTREAM_TESTS)

    def test_names_are_the_upstream_names(self) -> None:
        for v in VECTORS:
            assert v.name.split("/")[0] == v.w3c.removeprefix("TraceContextTest.")

    def test_every_case_has_a_decidable_expectation(self) -> None:
        assert {v.expect for v in VECTORS} == {"continue", "restart", "new"}
        assert sum(1 for v in VECTORS if v.includes) >= 15
        assert sum(1 for v in VECTORS if v.excludes) >= 15

    @pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
    def test_agrees_with_opentelemetry_except_duplicated_traceparent(self, vector: traces.W3CVector) -> None:
        """OTel's propagator is an independent reading of the spec: it must agree
        with every expectation except the duplicated header, where it continues
        the first value (the reason the reference service guards against it)."""
        ids_ = fresh_ids()
        carrier: dict[str, list[str]] = {}
        for name, value in fill_placeholders(vector.headers, ids_):
            # What an HTTP server hands the application: lowercased names, OWS stripped.
            carrier.setdefault(name.lower(), []).append(value.strip(" \t"))
        context = trace.get_current_span(TraceContextTextMapPropagator().extract(carrier)).get_span_context()
        continued = context.is_valid and format(context.trace_id, "032x") == ids_["trace_id"]
        if vector.name == "test_traceparent_duplicated":
            assert context.is_valid and not continued  # the first header's trace
            return
        assert continued == (vector.expect == "continue")
        members = traces.tracestate_members(context.trace_state.to_header() if context.is_valid else "")
        if vector.includes:
            remaining = iter(members)
            assert all(m in remaining for m in traces.tracestate_members(vector.includes))
        for key in vector.excludes:
            assert key not in dict(members)

    @pytest.mark.parametrize(
        ("data", "problem"),
        [
            ([], "non-empty list"),
            ([{"w3c": "x"}], "needs a name"),
            ([{"name": "a", "headers": [["traceparent"]], "expect": "continue"}], "pairs of strings"),
            ([{"name": "a", "headers": [], "expect": "maybe"}], "expect must be one of"),
            ([{"name": "a", "headers": [], "expect": "new", "tracestate": {"keep": "x"}}],
             "tracestate takes"),
            ([{"name": "a", "headers": [], "expect": "new", "tracestate": {"includes": ["x"]}}],
             "is a string"),
            ([{"name": "a", "headers": [], "expect": "new"}, {"name": "a", "headers": [], "expect": "new"}],
             "duplicate name"),
        ],
    )  # fmt: skip
    def test_malformed_vector_data_is_refused(self, data: Any, problem: str) -> None:
        with pytest.raises(ValueError, match=problem):
            traces.load_vectors(data)

    def test_expectation_keeps_the_filled_values(self) -> None:
        (vector,) = [v for v in VECTORS if v.name == "test_traceparent_trace_id_too_long"]
        ids_ = fresh_ids()
        sent = fill_placeholders(vector.headers, ids_)
        e = traces.vector_expectation(vector, ids_, sent)
        assert e.trace == "restart" and e.trace_id == ids_["trace_id"]
        assert e.sent == (f"00-{ids_['trace_id']}3-{ids_['parent_id']}-01",)


# --------------------------------------------------------------------------- the join


class TestObserve:
    def test_span_found_by_user_agent_marker_even_in_another_trace(self) -> None:
        other = span(trace_id="1" * 32, parent=None)
        o = observed(spans=[other, span("c" * 16, marker="someone-else")], continued=(TRACE, PARENT))
        assert o.server == other and o.located_by == "User-Agent marker"

    def test_old_semconv_user_agent_attribute(self) -> None:
        o = observed(spans=[span(attribute="http.user_agent")])
        assert o.server is not None and o.located_by == "User-Agent marker"

    def test_span_found_by_the_sent_trace_without_marker(self) -> None:
        o = observed(spans=[span(marker=None)], continued=(TRACE, PARENT))
        assert o.server is not None and o.located_by == "sent trace id"

    def test_span_found_through_the_log_lines_trace_id(self) -> None:
        o = observed(spans=[span(marker=None)])
        assert o.server is not None and o.located_by == "trace id in its log lines"

    def test_no_span(self) -> None:
        assert observed(spans=[]).server is None

    def test_lines_joined_by_correlation_id_and_by_trace_id(self) -> None:
        lines = log_lines(
            record(message="chat_completion_requested"),  # both keys
            record(correlation_id=..., message="by trace only"),
            record(trace_id="f" * 32, message="by correlation only"),
            record(correlation_id="other", trace_id="e" * 32, message="unrelated"),
        )
        o = observed(lines=lines)
        assert [p.line.number for p in o.lines] == [1, 2, 3]
        assert o.lines_by == "correlation id and trace id"

    def test_uppercase_and_resource_trace_ids_are_joined(self) -> None:
        lines = log_lines(record(correlation_id=..., trace_id=TRACE.upper()),
                          record(correlation_id=..., trace_id=f"projects/p/traces/{TRACE}"))  # fmt: skip
        assert len(observed(lines=lines).lines) == 2

    def test_supplied_id_is_the_key_when_the_response_has_no_header(self) -> None:
        lines = log_lines(record(correlation_id="mine", trace_id="f" * 32))
        o = observed(exchange(response=[]), spans=[], lines=lines, supplied="mine")
        assert len(o.lines) == 1

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (TRACE, TRACE),
            (TRACE.upper(), TRACE),
            (f"projects/p/traces/{TRACE}", TRACE),
            (f" {TRACE} ", TRACE),
        ],
    )
    def test_trace_hex(self, value: str, expected: str) -> None:
        assert traces.trace_hex(value) == expected

    def test_tracestate_members(self) -> None:
        assert traces.tracestate_members(" foo=1 \t,, bar= 2 ,") == [("foo", "1"), ("bar", " 2")]


# --------------------------------------------------------------------------- trace context


class TestContinued:
    def test_continued(self) -> None:
        assert traces.check_trace_continued([(CONTINUE, observed(continued=(TRACE, PARENT)))], SRC) == []

    def test_ignored_traceparent(self) -> None:
        restarted = observed(spans=[span(trace_id="1" * 32, parent=None)])
        findings = traces.check_trace_continued([(CONTINUE, restarted)], SRC)
        assert ids(findings) == {"TRC-002"}
        assert "not the incoming" in findings[0].message

    def test_wrong_parent(self) -> None:
        findings = traces.check_trace_continued([(CONTINUE, observed(spans=[span(parent="9" * 16)]))], SRC)
        assert ids(findings) == {"TRC-002"} and "not the incoming parent-id" in findings[0].message

    def test_span_never_arrived_names_store_exporter_and_wait(self) -> None:
        (finding,) = traces.check_trace_continued([(CONTINUE, observed(spans=[]))], SRC)
        assert finding.requirement_id == "TRC-002"
        for part in (SRC.store, SRC.exporter, "within 15s", MARKER, f"trace {TRACE}"):
            assert part in finding.message

    def test_only_continue_cases_are_judged(self) -> None:
        e = Expectation("x", "restart", sent=("junk",))
        assert traces.check_trace_continued([(e, observed(spans=[]))], SRC) == []


class TestTracestate:
    def test_kept_with_an_own_entry_on_the_left(self) -> None:
        o = observed(spans=[span(trace_state="rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")])
        assert traces.check_tracestate_kept([(CONTINUE, o)], SRC) == []

    @pytest.mark.parametrize("state", ["", "congo=other", "rojo=1"])
    def test_dropped_or_changed(self, state: str) -> None:
        findings = traces.check_tracestate_kept([(CONTINUE, observed(spans=[span(trace_state=state)]))], SRC)
        assert ids(findings) == {"TRC-003"}

    def test_order_matters(self) -> None:
        e = Expectation("x", includes="foo=1,bar=2")
        findings = traces.check_tracestate_kept([(e, observed(spans=[span(trace_state="bar=2,foo=1")]))], SRC)
        assert ids(findings) == {"TRC-003"}

    def test_discarded(self) -> None:
        e = Expectation("x", excludes=("foo",))
        assert (
            traces.check_tracestate_discarded([(e, observed(spans=[span(trace_state="bar=2")]))], SRC) == []
        )

    def test_invalid_member_kept(self) -> None:
        e = Expectation("x", excludes=("foo",))
        findings = traces.check_tracestate_discarded([(e, observed(spans=[span(trace_state="foo=1")]))], SRC)
        assert ids(findings) == {"TRC-012"} and "'foo'" in findings[0].message


class TestRestartAndNew:
    SENT = (f"00-{TRACE}3-{PARENT}-01",)

    def test_restarted(self) -> None:
        e = Expectation("too long", "restart", TRACE, PARENT, sent=self.SENT)
        o = observed(spans=[span(trace_id="1" * 32, parent=None)])
        assert traces.check_restarted([(e, o)], SRC) == []

    @pytest.mark.parametrize(
        "server",
        [span(), span(trace_id="1" * 32), span(trace_id=(TRACE + "3")[1:], parent=None)],
        ids=["continued", "parent-from-header", "trace-id-from-the-tail"],
    )
    def test_continued_from_an_invalid_header(self, server: Span) -> None:
        e = Expectation("too long", "restart", TRACE, PARENT, sent=self.SENT)
        findings = traces.check_restarted([(e, observed(spans=[server]))], SRC)
        assert ids(findings) == {"TRC-011"} and "must restart" in findings[0].message

    def test_restart_without_span(self) -> None:
        e = Expectation("x", "restart", sent=self.SENT)
        assert ids(traces.check_restarted([(e, observed(spans=[]))], SRC)) == {"TRC-011"}

    def test_new_root_traces(self) -> None:
        a = observed(spans=[span(trace_id="1" * 32, parent=None)], name="a")
        b = observed(spans=[span(trace_id="2" * 32, parent=None, marker=MARKER + "b")],
                     x=exchange(marker=MARKER + "b"), name="b")  # fmt: skip
        assert (
            traces.check_new_traces([(Expectation("a", "new"), a), (Expectation("b", "new"), b)], SRC) == []
        )

    def test_new_trace_under_its_own_proxy_span_is_fine(self) -> None:
        spans = [
            span(parent="c" * 16, trace_id="1" * 32),
            span("c" * 16, None, trace_id="1" * 32, kind="INTERNAL"),
        ]
        assert traces.check_new_traces([(Expectation("a", "new"), observed(spans=spans))], SRC) == []

    def test_remote_parent_without_traceparent(self) -> None:
        findings = traces.check_new_traces([(Expectation("a", "new"), observed())], SRC)
        assert ids(findings) == {"TRC-010"} and "remote parent" in findings[0].message

    def test_shared_trace(self) -> None:
        root = span(trace_id="1" * 32, parent=None)
        cases = [(Expectation(n, "new"), observed(spans=[root], name=n)) for n in ("a", "b")]
        findings = traces.check_new_traces(cases, SRC)
        assert ids(findings) == {"TRC-010"} and "shares trace" in findings[0].message

    def test_new_trace_reusing_a_sent_id(self) -> None:
        e = Expectation("trace-parent", "new", sent=(f"00-{TRACE}-{PARENT}-01",))
        findings = traces.check_new_traces([(e, observed(spans=[span(parent=None)]))], SRC)
        assert ids(findings) == {"TRC-010"}


# --------------------------------------------------------------------------- logs and correlation ids


class TestLogJoin:
    def check(self, o: Observed) -> list[Any]:
        return traces.check_log_join(
            [o], SRC, correlation_header=HEADER, completed_message="request_completed"
        )

    def test_lines_carry_the_span_ids(self) -> None:
        assert self.check(observed()) == []

    def test_line_in_a_child_span_is_fine(self) -> None:
        spans = [span(), span(CHILD, SERVER, kind="CLIENT", marker=None)]
        lines = log_lines(record(message="provider_called", span_id=CHILD), record())
        assert self.check(observed(spans=spans, lines=lines)) == []

    @pytest.mark.parametrize("trace_id", [TRACE.upper(), f"projects/p/traces/{TRACE}"])
    def test_trace_id_format_is_log_006s_business(self, trace_id: str) -> None:
        assert self.check(observed(lines=log_lines(record(trace_id=trace_id)))) == []

    @pytest.mark.parametrize(
        ("line", "problem"),
        [
            (record(trace_id="f" * 32), "but the request's SERVER span is in trace"),
            (record(trace_id=...), "has no trace_id"),
            (record(span_id=...), "has no span_id"),
            (record(span_id=CHILD), "not the SERVER span's"),
            (record(message="other", span_id="9" * 16), "nor a span under it"),
        ],
    )
    def test_line_that_does_not_match(self, line: dict[str, Any], problem: str) -> None:
        findings = self.check(observed(lines=log_lines(line)))
        assert ids(findings) == {"TRC-004"} and problem in findings[0].message

    def test_no_line_found(self) -> None:
        findings = self.check(observed(lines=log_lines(record(correlation_id="x", trace_id="f" * 32))))
        assert ids(findings) == {"TRC-004"} and "no log line of this request" in findings[0].message

    def test_no_span(self) -> None:
        assert ids(self.check(observed(spans=[]))) == {"TRC-004"}

    def test_a_recycled_correlation_id_does_not_blame_another_requests_lines(self) -> None:
        # The service gave this request's correlation id to another request too (TRC-009's
        # finding); that request's lines carry its own, correct, trace id.
        other = record(trace_id="f" * 32, span_id="9" * 16)
        o = observed(lines=log_lines(record(), other, record(message="other step", trace_id="f" * 32)))
        assert [p.line.number for p in o.lines] == [1]
        said = f"trace id (not its correlation id {CID}: 2 requests with other trace ids logged it)"
        assert o.lines_by == said
        assert self.check(o) == []

    def test_two_completed_records_of_one_request_keep_the_correlation_join(self) -> None:
        # An access log and an application log both saying request_completed, one trace id.
        o = observed(lines=log_lines(record(), record(trace_id=..., span_id=...)))
        assert len(o.lines) == 2 and o.lines_by == "correlation id and trace id"

    def test_a_context_leak_under_a_unique_correlation_id_is_still_caught(self) -> None:
        # One completed line per correlation id: the id is the request's, and the line's
        # trace id (another request's context, leaked) is TRC-004's finding.
        o = observed(lines=log_lines(record(message="step", trace_id="f" * 32), record()))
        assert len(o.lines) == 2 and ids(self.check(o)) == {"TRC-004"}


class TestCorrelationJoin:
    def check(self, o: Observed) -> list[Any]:
        return traces.check_correlation_join([o], correlation_header=HEADER)

    def test_header_equals_the_logs(self) -> None:
        assert self.check(observed()) == []

    def test_no_header(self) -> None:
        findings = self.check(observed(exchange(response=[])))
        assert ids(findings) == {"TRC-005"} and "has no X-Correlation-ID header" in findings[0].message

    @pytest.mark.parametrize(
        ("line", "problem"),
        [
            (record(correlation_id=...), "has no correlation_id"),
            (record(correlation_id="other"), "but the response"),
        ],
    )
    def test_logs_disagree(self, line: dict[str, Any], problem: str) -> None:
        findings = self.check(observed(lines=log_lines(line)))
        assert ids(findings) == {"TRC-005"} and problem in findings[0].message

    def test_no_line(self) -> None:
        assert ids(self.check(observed(spans=[], lines=[]))) == {"TRC-005"}

    def test_unanswered_requests_are_skipped(self) -> None:
        assert self.check(observed(exchange(status=None, response=[]))) == []


class TestCorrelationIds:
    def test_generated_uuid(self) -> None:
        assert traces.check_correlation_generated([observed()], correlation_header=HEADER, fmt="uuid") == []

    def test_generated_id_read_from_logs_when_no_header(self) -> None:
        o = observed(exchange(response=[]))
        assert traces.assigned_correlation_id(o, HEADER) == (CID, "log lines (the response had no header)")
        assert traces.check_correlation_generated([o], correlation_header=HEADER, fmt="uuid") == []

    @pytest.mark.parametrize(("value", "fmt"), [("req-1", "uuid"), ("has space", "any"), ("x" * 300, "any")])
    def test_generated_id_in_the_wrong_format(self, value: str, fmt: str) -> None:
        o = observed(exchange(response=[(HEADER, value)]), lines=log_lines(record(correlation_id=value)))
        findings = traces.check_correlation_generated([o], correlation_header=HEADER, fmt=fmt)
        assert ids(findings) == {"TRC-006"}

    def test_format_any_accepts_a_token(self) -> None:
        o = observed(exchange(response=[(HEADER, "req-1")]), lines=log_lines(record(correlation_id="req-1")))
        assert traces.check_correlation_generated([o], correlation_header=HEADER, fmt="any") == []

    def test_none_generated(self) -> None:
        o = observed(exchange(response=[]), spans=[], lines=[])
        findings = traces.check_correlation_generated([o], correlation_header=HEADER, fmt="uuid")
        assert ids(findings) == {"TRC-006"} and "no correlation id was generated" in findings[0].message

    def test_same_generated_id_twice(self) -> None:
        findings = traces.check_correlation_generated([observed(name="a"), observed(name="b")],
                                                      correlation_header=HEADER, fmt="uuid")  # fmt: skip
        assert ids(findings) == {"TRC-006"} and "same generated" in findings[0].message

    def test_echoed(self) -> None:
        assert traces.check_correlation_echoed([observed(supplied=CID)], correlation_header=HEADER) == []

    def test_echo_read_from_logs_when_no_header(self) -> None:
        o = observed(exchange(response=[]), supplied=CID)
        assert traces.check_correlation_echoed([o], correlation_header=HEADER) == []

    def test_not_echoed(self) -> None:
        findings = traces.check_correlation_echoed([observed(supplied="mine-123")], correlation_header=HEADER)
        assert ids(findings) == {"TRC-007"} and "sent X-Correlation-ID: mine-123" in findings[0].message

    def test_requests_without_supplied_id_are_not_judged_for_echo(self) -> None:
        assert traces.check_correlation_echoed([observed()], correlation_header=HEADER) == []


class TestMalformedCorrelationIds:
    BAD = "a" * 10240

    def check(self, o: Observed) -> list[Any]:
        return traces.check_correlation_replaced([("a 10 kB value", o)], correlation_header=HEADER)

    def test_replaced_by_a_fresh_id(self) -> None:
        assert self.check(observed(supplied=self.BAD)) == []

    def test_refused_by_the_http_server(self) -> None:
        o = observed(exchange(status=400, response=[("content-type", "text/plain")]), spans=[], lines=[],
                     supplied="a\rb")  # fmt: skip
        assert self.check(o) == []

    @pytest.mark.parametrize(
        ("response", "problem"),
        [
            ([(HEADER, BAD)], "was kept as the correlation id"),
            ([(HEADER, f"prefix-{BAD}")], "was kept as the correlation id"),
            ([(HEADER, "ok"), ("X-Injected", "yes")], "X-Injected"),
            ([(HEADER, "ok"), ("", "X-Injected yes")], "the header was split"),
            ([(HEADER, "a\r\nb")], "contains CR/LF/NUL"),
            ([(HEADER, "has space")], "not a token"),
            ([("content-type", "text/plain")], "no correlation id at all"),
        ],
    )
    def test_kept_or_injected(self, response: list[tuple[str, str]], problem: str) -> None:
        o = observed(exchange(response=response), spans=[], lines=[], supplied=self.BAD)
        findings = self.check(o)
        assert ids(findings) == {"TRC-008"} and problem in findings[0].message


class TestUnique:
    def test_unique(self) -> None:
        assert traces.check_correlation_unique(["a", "b", "c"], answered=3, where="headers") == []

    def test_repeated(self) -> None:
        (finding,) = traces.check_correlation_unique(["a", "b", "a", "a"], answered=4, where="headers")
        assert finding.requirement_id == "TRC-009"
        assert "a x3" in finding.message and finding.evidence["distinct"] == 2


def test_describe_case_names_the_w3c_test() -> None:
    e = Expectation(
        "test_traceparent_version_0xff", "restart", source="TraceContextTest.test_traceparent_version_0xff"
    )
    out = traces.describe_case(e, observed(spans=[span(trace_id="1" * 32, parent=None)]))
    assert out == {"case": "test_traceparent_version_0xff", "expect": "restart",
                   "observed": f"new root span in trace {'1' * 32}",
                   "w3c": "TraceContextTest.test_traceparent_version_0xff"}  # fmt: skip


class TestProfileSection:
    def load(self, tmp_path: Path, text: str) -> TracesSection:
        path = tmp_path / "conformance.yaml"
        path.write_text("version: 1\nservice: {name: x, command: [x]}\n" + text)
        section: TracesSection = load_profile(path).section(KEY)
        return section

    def test_defaults_pick_the_first_traced_get_endpoint(self, tmp_path: Path) -> None:
        section = self.load(tmp_path, "endpoints:\n  - {name: a, path: /a, method: POST}\n"
                            "  - {name: b, path: /b, traced: false}\n  - {name: c, path: /c}\n")  # fmt: skip
        assert section.probe_endpoint is not None and section.probe_endpoint.name == "c"
        assert (section.correlation_id_format, section.uniqueness_requests, section.concurrency) == (
            "uuid",
            1000,
            8,
        )
        assert section.tracestate == DEFAULT_TRACESTATE

    def test_no_endpoint_to_probe(self, tmp_path: Path) -> None:
        assert self.load(tmp_path, "").probe_endpoint is None

    def test_reference_profile(self) -> None:
        section: TracesSection = load_profile(REPO / "fixtures/reference_service/conformance.yaml").section(
            KEY
        )
        assert section.probe_endpoint is not None and section.probe_endpoint.path == "/health/live"

    def test_default_tracestate_is_what_the_schema_allows(self, tmp_path: Path) -> None:
        section = self.load(tmp_path, f"traces: {{tracestate: '{DEFAULT_TRACESTATE}'}}\n")
        assert section.tracestate == DEFAULT_TRACESTATE


class TestLocatingWithoutAMarker:
    """Services that record no User-Agent (Micrometer) still have their spans found."""

    def test_a_span_in_a_trace_of_the_invalid_header_is_the_request_continued_wrongly(self) -> None:
        second = "e" * 32
        o = traces.observe(
            "duplicated", exchange(), [span(trace_id=second, marker=None)], [], correlation_header=HEADER,
            suspects={TRACE, second},
        )  # fmt: skip
        assert o.server is not None and o.located_by == "a trace id of the invalid header sent"
        e = Expectation("duplicated", "restart", sent=(f"00-{second}-{PARENT}-01", f"00-{TRACE}-{PARENT}-01"))
        assert ids(traces.check_restarted([(e, o)], SRC)) == {"TRC-011"}

    def test_the_only_span_of_the_route_in_flight_is_the_request(self) -> None:
        x = replace(exchange(marker="curl/8"), started_at=10.0, elapsed_seconds=0.2)
        inside = replace(span(marker=None, trace_id="c" * 32), start_time_unix_nano=10_100_000_000)
        later = replace(span("d" * 16, marker=None, trace_id="d" * 32), start_time_unix_nano=12_000_000_000)
        o = traces.observe("new", x, [inside, later], [], correlation_header=HEADER, route="/models")
        assert o.server == inside

    def test_two_candidates_in_flight_locate_nothing(self) -> None:
        x = replace(exchange(marker="curl/8"), started_at=10.0, elapsed_seconds=0.2)
        a = replace(span(marker=None, trace_id="c" * 32), start_time_unix_nano=10_050_000_000)
        b = replace(span("d" * 16, marker=None, trace_id="d" * 32), start_time_unix_nano=10_100_000_000)
        assert traces.observe("new", x, [a, b], [], correlation_header=HEADER, route="/models").server is None

    def test_a_span_in_a_trace_a_probe_sent_is_never_taken(self) -> None:
        x = replace(exchange(marker="curl/8"), started_at=10.0, elapsed_seconds=0.2)
        sent = replace(span(marker=None, trace_id="c" * 32), start_time_unix_nano=10_100_000_000)
        o = traces.observe(
            "new", x, [sent], [], correlation_header=HEADER, route="/models", claimed={"c" * 32}
        )
        assert o.server is None
