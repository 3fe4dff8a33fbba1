"""Waiting for the spans and log lines of probe requests, against a scripted store and clock."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from conformance.collect._propagation import (
    MARKER_PREFIX,
    fill_placeholders,
    fresh_ids,
    marker_of,
    wait_for_probe_logs,
    wait_for_probe_spans,
)
from conformance.telemetry import HttpExchange, Span

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class ScriptedTraceStoreDouble:
    """Test double standing in for a trace store: spans appear when the scripted clock passes their time."""

    def __init__(self, schedule: Mapping[float, list[Span]]) -> None:
        self.now = 0.0
        self._schedule = sorted(schedule.items())
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def spans(self, trace_id: str | None = None) -> list[Span]:
        with self._lock:
            found = [s for at, batch in self._schedule if at <= self.now for s in batch]
        return [s for s in found if trace_id is None or s.trace_id == trace_id]

    def describe(self) -> str:
        return "scripted trace store double"


def server(
    marker: str | None, *, trace_id: str = TRACE, parent: str | None = PARENT, span_id: str = "1" * 16
) -> Span:
    return Span(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, name="GET /", kind="SERVER",
        start_time_unix_nano=1, end_time_unix_nano=2,
        attributes={"http.user_agent": marker} if marker else {},
    )  # fmt: skip


def probe(marker: str) -> HttpExchange:
    return HttpExchange(endpoint="e", method="GET", url="http://127.0.0.1:1/", path="/",
                        request_headers=(("User-Agent", marker),), status_code=200)  # fmt: skip


def test_placeholders_are_filled_and_other_braces_kept() -> None:
    ids = fresh_ids()
    assert fill_placeholders([("tracestate", "k={|}{trace}")], ids) == (("tracestate", "k={|}{trace}"),)
    ((_, value),) = fill_placeholders([("traceparent", ".{trace_id_31}-{parent_id}7")], ids)
    assert value == f".{ids['trace_id'][:31]}-{ids['parent_id']}7"
    assert len(ids["trace_id"]) == 32 and len(ids["parent_id"]) == 16 and ids["trace_id"] != ids["trace_id_2"]


def test_marker_is_the_probe_user_agent() -> None:
    assert marker_of(probe(MARKER_PREFIX + "x")) == MARKER_PREFIX + "x"
    assert marker_of(probe("python-httpx/0.28")) == ""


def test_spans_are_returned_once_every_probe_is_located_and_the_store_is_quiet() -> None:
    a, b = MARKER_PREFIX + "a", MARKER_PREFIX + "b"
    child = Span(trace_id=TRACE, span_id="2" * 16, parent_span_id="1" * 16, name="db", kind="CLIENT",
                 start_time_unix_nano=1, end_time_unix_nano=2)  # fmt: skip
    store = ScriptedTraceStoreDouble({
        0.2: [server(a, trace_id="a" * 32)],
        0.5: [server(None)],  # b's span carries no marker: found by the trace it continued
        0.6: [child],
    })  # fmt: skip
    spans = wait_for_probe_spans(
        store, {"a": probe(a), "b": probe(b)}, timeout=5, continued={"b": (TRACE, PARENT)},
        quiet_period=0.3, clock=store.clock, sleep=store.sleep,
    )  # fmt: skip
    assert len(spans) == 3
    assert 0.9 <= store.now < 2


def test_missing_spans_end_the_wait_at_the_timeout_without_raising() -> None:
    store = ScriptedTraceStoreDouble({0.1: [server(MARKER_PREFIX + "a")]})
    spans = wait_for_probe_spans(
        store, {"a": probe(MARKER_PREFIX + "a"), "b": probe(MARKER_PREFIX + "b")}, timeout=2,
        clock=store.clock, sleep=store.sleep,
    )  # fmt: skip
    assert len(spans) == 1 and store.now >= 2


class ScriptedLogs:
    def __init__(
        self, schedule: Mapping[float, list[dict[str, Any]]], store: ScriptedTraceStoreDouble
    ) -> None:
        self._schedule = sorted(schedule.items())
        self._store = store

    def __call__(self) -> list[dict[str, Any]]:
        return [r for at, batch in self._schedule if at <= self._store.now for r in batch]


@pytest.mark.parametrize(
    "trace_id", [TRACE, TRACE.upper(), f"projects/p/traces/{TRACE}"], ids=["hex", "upper", "gcp-resource"]
)
def test_logs_are_awaited_by_correlation_id_or_trace_id(trace_id: str) -> None:
    clock = ScriptedTraceStoreDouble({})
    logs = ScriptedLogs({
        0.1: [{"message": "request_completed", "correlation_id": "c-1"}],
        0.4: [{"message": "chat", "trace_id": trace_id}],
        0.7: [{"message": "request_completed", "trace_id": trace_id}],
    }, clock)  # fmt: skip
    keys = {"a": ["c-1"], "b": ["", TRACE]}
    records = wait_for_probe_logs(logs, keys, completed_message="request_completed", timeout=5,
                                  clock=clock.clock, sleep=clock.sleep)  # fmt: skip
    assert len(records) == 3 and 0.7 <= clock.now < 1.5


def test_logs_that_never_come_end_the_wait_at_the_timeout() -> None:
    clock = ScriptedTraceStoreDouble({})
    logs = ScriptedLogs({0.0: [{"message": "request_completed", "correlation_id": "other"}]}, clock)
    records = wait_for_probe_logs(logs, {"a": ["c-1"]}, completed_message="request_completed", timeout=1,
                                  clock=clock.clock, sleep=clock.sleep)  # fmt: skip
    assert len(records) == 1 and clock.now >= 1
