"""Reading spans from a trace store, and waiting until a trace has arrived whole.

Exporters batch and send asynchronously, so a trace is never complete the moment
the service answers. Checks that need one request's spans wait for its trace id
to appear and then to stop growing for a quiet period; the timeout message says
which trace was awaited, how much of it arrived and where it was expected from.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from conformance._exceptions import WaitTimeout
from conformance._wait import Clock, wait_until
from conformance.telemetry import Span

__all__ = ["TraceStore", "server_span", "wait_for_spans", "wait_for_trace"]

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_NAMES_SHOWN = 5


class TraceStore(Protocol):
    """Where spans can be read: the embedded OTLP receiver, a Jaeger query API."""

    def spans(self, trace_id: str | None = None) -> list[Span]:
        """Spans seen so far, all of them or one trace's (lowercase hex id)."""
        ...

    def describe(self) -> str:
        """Where the spans come from, for messages, e.g. ``embedded OTLP receiver at http://...``."""
        ...


def _span_names(spans: list[Span]) -> str:
    names = [span.name for span in spans[:_NAMES_SHOWN]]
    more = f", ... {len(spans) - _NAMES_SHOWN} more" if len(spans) > _NAMES_SHOWN else ""
    return f" ({', '.join(names)}{more})" if names else ""


def _poll_intervals(quiet_period: float) -> tuple[float, float]:
    """Poll often enough that a quiet period is noticed soon after it ends."""
    interval = max(0.01, min(0.05, quiet_period / 4))
    return interval, max(interval, min(0.5, quiet_period / 2))


def wait_for_trace(
    store: TraceStore,
    trace_id: str,
    *,
    timeout: float,
    quiet_period: float = 0.3,
    min_spans: int = 1,
    expected_exporter: str = "",
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Span]:
    """The spans of ``trace_id`` once there are ``min_spans`` and none arrived for ``quiet_period``.

    ``expected_exporter`` names what should have sent them (e.g. ``"the service's
    OTLP/HTTP exporter"``) and goes into the timeout message. Raises
    :class:`WaitTimeout` when the deadline passes first.
    """
    wanted = trace_id.strip().lower()
    if not _TRACE_ID.fullmatch(wanted):
        raise ValueError(f"trace_id must be 32 hex characters, got {trace_id!r}")
    if min_spans < 1:
        raise ValueError(f"min_spans must be at least 1, got {min_spans}")
    if not 0 <= quiet_period < timeout:
        raise ValueError(
            f"quiet_period ({quiet_period:g}s) must be >= 0 and shorter than timeout ({timeout:g}s)"
        )

    count = -1
    changed_at = clock()

    def probe() -> tuple[list[Span] | None, str]:
        nonlocal count, changed_at
        spans = store.spans(wanted)
        now = clock()
        if len(spans) != count:
            count, changed_at = len(spans), now
        seen = f"{len(spans)} span(s) of trace {wanted}{_span_names(spans)}"
        if len(spans) < min_spans:
            return None, seen
        if now - changed_at < quiet_period:
            return None, f"{seen}, still arriving"
        return spans, seen

    source = store.describe()
    if expected_exporter:
        source = f"{expected_exporter} via {source}"
    interval, max_interval = _poll_intervals(quiet_period)
    try:
        return wait_until(
            probe,
            awaited=f"trace {wanted} ({min_spans}+ span(s), then {quiet_period:g}s quiet) from {source}",
            timeout=timeout,
            interval=interval,
            max_interval=max_interval,
            clock=clock,
            sleep=sleep,
        )
    except WaitTimeout as exc:
        if count <= 0:
            hint = (
                "no span of this trace arrived: check that the service exports to this endpoint and "
                "protocol (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL), samples the request "
                "and continues the traceparent the harness sent"
            )
        elif count < min_spans:
            hint = "the trace arrived incomplete: the service may not export every span, or exports late"
        else:
            hint = "spans of this trace kept arriving: raise the timeout or shorten the exporter's delay"
        raise WaitTimeout(exc.awaited, exc.timeout, exc.last_seen, hint=hint) from None


def wait_for_spans(
    store: TraceStore,
    predicate: Callable[[Span], bool],
    *,
    timeout: float,
    awaited: str,
    min_count: int = 1,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Span]:
    """The spans matching ``predicate`` once there are ``min_count`` of them.

    ``awaited`` describes the spans for the timeout message (``"a span named
    GET /orders"``); the store's description is added to it.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")

    def probe() -> tuple[list[Span] | None, str]:
        spans = store.spans()
        matching = [span for span in spans if predicate(span)]
        seen = f"{len(matching)} of {len(spans)} span(s) matched"
        return (matching if len(matching) >= min_count else None), seen

    return wait_until(
        probe,
        awaited=f"{awaited} in {store.describe()}",
        timeout=timeout,
        clock=clock,
        sleep=sleep,
    )


def server_span(spans: Iterable[Span]) -> Span | None:
    """The SERVER span nearest the root of the given spans, or ``None`` if there is none.

    Depth counts parents present among ``spans``, so a server span whose parent
    came from the harness (absent here) is a root. Ties go to the earliest start.
    """
    by_id = {span.span_id: span for span in spans}

    def depth(span: Span) -> int:
        steps = 0
        parent = span.parent_span_id
        while parent is not None and parent in by_id and steps <= len(by_id):
            steps += 1
            parent = by_id[parent].parent_span_id
        return steps

    servers = [span for span in by_id.values() if span.kind == "SERVER"]
    if not servers:
        return None
    return min(servers, key=lambda span: (depth(span), span.start_time_unix_nano, span.span_id))
