"""Waiting for traces and picking the server span, against a scripted store and clock."""

from __future__ import annotations

import os
import threading

import pytest

from conformance._exceptions import WaitTimeout
from conformance.collect._traces import TraceStore, server_span, wait_for_spans, wait_for_trace
from conformance.telemetry import Span

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"
EXPORTER = "the service's OTLP/HTTP exporter"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def make_span(
    name: str,
    span_id: str,
    parent: str | None = None,
    *,
    kind: str = "INTERNAL",
    trace_id: str = TRACE,
    start: int = 0,
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=start + 1,
    )


class InMemoryTraceStoreDouble:
    """Test double standing in for a real trace store (the OTLP receiver, Jaeger).

    Spans are whatever the test added; nothing is received over the network.
    """

    def __init__(self) -> None:
        self._spans: list[Span] = []
        self._lock = threading.Lock()

    def add(self, *spans: Span) -> None:
        with self._lock:
            self._spans.extend(spans)

    def spans(self, trace_id: str | None = None) -> list[Span]:
        with self._lock:
            return [span for span in self._spans if trace_id is None or span.trace_id == trace_id]

    def describe(self) -> str:
        return "in-memory trace store double"


class ScriptedClock:
    """Fake time: ``sleep`` advances it and delivers the spans scheduled up to the new time."""

    def __init__(self, store: InMemoryTraceStoreDouble, schedule: dict[float, list[Span]]) -> None:
        self.now = 0.0
        self._store = store
        self._schedule = sorted(schedule.items())

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        while self._schedule and self._schedule[0][0] <= self.now:
            self._store.add(*self._schedule.pop(0)[1])


def _trace_arriving(schedule: dict[float, list[Span]]) -> tuple[InMemoryTraceStoreDouble, ScriptedClock]:
    store = InMemoryTraceStoreDouble()
    return store, ScriptedClock(store, schedule)


def test_the_double_satisfies_the_protocol() -> None:
    store: TraceStore = InMemoryTraceStoreDouble()
    assert store.spans() == []


def test_wait_for_trace_returns_once_the_trace_stops_growing() -> None:
    store, clock = _trace_arriving(
        {
            0.1: [make_span("root", "a" * 16, kind="SERVER")],
            0.2: [make_span("db", "b" * 16, "a" * 16)],
            0.6: [make_span("late", "c" * 16, "a" * 16)],
            0.7: [make_span("other", "d" * 16, trace_id=OTHER_TRACE)],
        }
    )

    spans = wait_for_trace(store, TRACE, timeout=5, quiet_period=0.3, clock=clock, sleep=clock.sleep)

    assert [span.name for span in spans] == ["root", "db", "late"]
    # The last span arrived at 0.6; the wait ends one quiet period later, give or take a poll.
    assert 0.9 <= clock.now <= 0.9 + 0.15


def test_wait_for_trace_accepts_an_uppercase_id_and_waits_for_min_spans() -> None:
    store, clock = _trace_arriving(
        {0.0: [make_span("root", "a" * 16)], 1.0: [make_span("child", "b" * 16, "a" * 16)]}
    )

    spans = wait_for_trace(
        store, TRACE.upper(), timeout=5, quiet_period=0.2, min_spans=2, clock=clock, sleep=clock.sleep
    )

    assert len(spans) == 2
    assert clock.now >= 1.2


def test_timeout_names_the_trace_and_where_spans_were_expected() -> None:
    store, clock = _trace_arriving({0.0: [make_span("unrelated", "a" * 16, trace_id=OTHER_TRACE)]})

    with pytest.raises(WaitTimeout) as caught:
        wait_for_trace(store, TRACE, timeout=2, expected_exporter=EXPORTER, clock=clock, sleep=clock.sleep)

    message = str(caught.value)
    assert f"waiting for trace {TRACE}" in message
    assert f"from {EXPORTER} via in-memory trace store double" in message
    assert f"last seen: 0 span(s) of trace {TRACE}" in message
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in caught.value.hint
    assert caught.value.timeout == 2


def test_timeout_with_too_few_spans_says_how_many_arrived() -> None:
    store, clock = _trace_arriving({0.0: [make_span("GET /orders", "a" * 16, kind="SERVER")]})

    with pytest.raises(WaitTimeout) as caught:
        wait_for_trace(
            store, TRACE, timeout=1, min_spans=3, expected_exporter=EXPORTER, clock=clock, sleep=clock.sleep
        )

    assert f"last seen: 1 span(s) of trace {TRACE} (GET /orders)" in str(caught.value)
    assert "incomplete" in caught.value.hint


def test_timeout_while_the_trace_keeps_growing() -> None:
    schedule = {round(0.1 * step, 1): [make_span(f"s{step}", f"{step:016x}")] for step in range(1, 40)}
    store, clock = _trace_arriving(schedule)

    with pytest.raises(WaitTimeout) as caught:
        wait_for_trace(store, TRACE, timeout=1, quiet_period=0.5, clock=clock, sleep=clock.sleep)

    assert "still arriving" in caught.value.last_seen
    assert "kept arriving" in caught.value.hint


def test_wait_for_trace_with_real_time_and_a_concurrent_writer() -> None:
    store = InMemoryTraceStoreDouble()
    writer = threading.Timer(0.05, store.add, args=(make_span("root", "a" * 16),))
    writer.start()
    try:
        spans = wait_for_trace(store, TRACE, timeout=5, quiet_period=0.05)
    finally:
        writer.cancel()
        writer.join(5)
    assert [span.name for span in spans] == ["root"]


@pytest.mark.parametrize(
    ("trace_id", "options", "problem"),
    [
        ("not-a-trace", {}, "32 hex"),
        (TRACE, {"min_spans": 0}, "min_spans"),
        (TRACE, {"quiet_period": 2.0}, "quiet_period"),
        (TRACE, {"quiet_period": -1.0}, "quiet_period"),
    ],
)
def test_wait_for_trace_rejects_impossible_arguments(
    trace_id: str, options: dict[str, float], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        wait_for_trace(InMemoryTraceStoreDouble(), trace_id, timeout=1, **options)  # type: ignore[arg-type]


def test_wait_for_spans_returns_the_matching_spans() -> None:
    store, clock = _trace_arriving(
        {0.3: [make_span("GET /a", "a" * 16, kind="SERVER"), make_span("db", "b" * 16, "a" * 16)]}
    )

    spans = wait_for_spans(
        store,
        lambda span: span.kind == "SERVER",
        timeout=2,
        awaited="a server span",
        clock=clock,
        sleep=clock.sleep,
    )

    assert [span.name for span in spans] == ["GET /a"]


def test_wait_for_spans_timeout_says_what_was_awaited_and_seen() -> None:
    store, clock = _trace_arriving({0.0: [make_span("db", "b" * 16)]})

    with pytest.raises(WaitTimeout) as caught:
        wait_for_spans(
            store,
            lambda span: span.kind == "SERVER",
            timeout=1,
            awaited="a server span",
            clock=clock,
            sleep=clock.sleep,
        )

    assert caught.value.awaited == "a server span in in-memory trace store double"
    assert caught.value.last_seen == "0 of 1 span(s) matched"


def test_server_span_picks_the_root_most_server_span() -> None:
    spans = [
        make_span("handler", "c" * 16, "b" * 16, kind="SERVER", start=3),
        make_span("gateway", "b" * 16, "a" * 16, kind="SERVER", start=2),
        make_span("client", "a" * 16, "f" * 16, kind="CLIENT", start=1),
    ]
    chosen = server_span(spans)
    assert chosen is not None
    assert chosen.name == "gateway"


def test_server_span_whose_parent_is_remote_counts_as_root() -> None:
    spans = [
        make_span("db", "b" * 16, "a" * 16, kind="CLIENT"),
        make_span("GET /orders", "a" * 16, "9" * 16, kind="SERVER"),
    ]
    chosen = server_span(spans)
    assert chosen is not None
    assert chosen.name == "GET /orders"


def test_server_span_breaks_ties_by_start_time_and_survives_cycles() -> None:
    spans = [
        make_span("second", "b" * 16, "c" * 16, kind="SERVER", start=20),
        make_span("first", "c" * 16, "b" * 16, kind="SERVER", start=10),
    ]
    chosen = server_span(spans)
    assert chosen is not None
    assert chosen.name == "first"


def test_server_span_is_none_without_server_spans() -> None:
    assert server_span([make_span("job", "a" * 16, kind="CONSUMER")]) is None
    assert server_span([]) is None
