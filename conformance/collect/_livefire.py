"""Live-fire: drive traffic at the service and watch its alerts in the stack's real Prometheus.

Two observations, both bounded in requests and time:

* :func:`watch_quiet` sends normal traffic for a while and watches the
  given alerts through ``/api/v1/alerts``; it ends once Prometheus has
  evaluated every watched rule on a scrape taken *after* the traffic (so
  the traffic was really judged), or as soon as one of them turns active.
* :func:`fire_alert` sends the recipe's request at its rate (at most
  ``max_requests``) and polls until the alert reaches the expected state
  (``pending`` or ``firing``) or the recipe's timeout runs out.

Neither raises for an alert that misbehaves: the outcome records what was
seen (states over time, statuses, the alert's value) and the pure checks
judge it. Prometheus being unreachable, or never scraping/evaluating after
the quiet traffic, raises :class:`~conformance._exceptions.HarnessError`.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from conformance._exceptions import WaitTimeout
from conformance._profile import Endpoint
from conformance._sections.alerts import LiveFire
from conformance._wait import Clock, wait_until
from conformance.collect._prometheus_api import PrometheusClient, scraped_since
from conformance.collect._traffic import send

__all__ = [
    "STATES",
    "LiveFireOutcome",
    "QuietOutcome",
    "alert_state",
    "fire_alert",
    "format_statuses",
    "watch_quiet",
]

#: Alert states in order of escalation.
STATES = ("inactive", "pending", "firing")


@dataclass(frozen=True, slots=True)
class LiveFireOutcome:
    """What happened while trying to fire one alert."""

    alert: str
    expect: str
    request: str
    #: The highest state seen: inactive, pending or firing.
    reached: str
    duration_seconds: float
    timeout: float
    requests_sent: int
    #: Response status (as text, ``"no response"`` for transport errors) → count.
    statuses: Mapping[str, int]
    seconds_to_pending: float | None = None
    seconds_to_firing: float | None = None
    #: The alert's value (the expression's result) when last seen active.
    value: str | None = None
    #: Whether Prometheus has an alerting rule of that name loaded.
    rule_loaded: bool = True
    #: ``(seconds since start, state)`` at each change.
    timeline: tuple[tuple[float, str], ...] = ()
    #: The statuses the traffic should have got (empty: any).
    expect_status: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return STATES.index(self.reached) >= STATES.index(self.expect)


@dataclass(frozen=True, slots=True)
class QuietOutcome:
    """Normal traffic and the watched alerts' states during and after it."""

    alerts: tuple[str, ...]
    duration_seconds: float
    requests_sent: int
    statuses: Mapping[str, int]
    #: alert → (state, seconds since start, value) for each alert seen active.
    active: Mapping[str, tuple[str, float, str | None]] = field(default_factory=dict)
    #: Seconds from the end of the traffic until every watched rule was evaluated on a later scrape.
    settled_after_seconds: float | None = None


def alert_state(
    alerts: Sequence[Mapping[str, Any]], name: str, labels: Mapping[str, str] | None = None
) -> tuple[str, str | None]:
    """The most escalated state of alert ``name`` among ``/api/v1/alerts`` entries, and its value.

    Only instances carrying all ``labels`` count; no instance means ``inactive``.
    """
    best, value = "inactive", None
    for alert in alerts:
        alert_labels = alert.get("labels") or {}
        if alert_labels.get("alertname") != name:
            continue
        if any(alert_labels.get(k) != v for k, v in (labels or {}).items()):
            continue
        state = str(alert.get("state", "inactive"))
        if state in STATES and STATES.index(state) >= STATES.index(best):
            best, value = state, (str(alert["value"]) if "value" in alert else None)
    return best, value


class _Pacer:
    """Sends ``endpoints`` round robin so that ``rate`` requests per second have gone out, up to ``limit``.

    It catches up on each call rather than sleeping between requests, so the
    same loop that polls Prometheus also paces the traffic.
    """

    def __init__(
        self, client: httpx.Client, endpoints: Sequence[Endpoint], rate: float, limit: int, clock: Clock
    ) -> None:
        self.client = client
        self.endpoints = endpoints
        self.rate = rate
        self.limit = limit
        self.clock = clock
        self.started = clock()
        self.sent = 0
        self.statuses: Counter[str] = Counter()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def catch_up(self) -> None:
        due = min(self.limit, int(self.elapsed() * self.rate) + 1)
        while self.sent < due:
            exchange = send(self.client, self.endpoints[self.sent % len(self.endpoints)])
            status = exchange.status_code
            self.statuses[str(status) if status is not None else "no response"] += 1
            self.sent += 1


def watch_quiet(
    client: httpx.Client,
    prometheus: PrometheusClient,
    *,
    alerts: Sequence[str],
    endpoints: Sequence[Endpoint],
    job: str,
    rate: float,
    duration: float,
    timeout: float,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> QuietOutcome:
    """Send normal traffic for ``duration`` seconds and watch ``alerts`` stay inactive.

    Ends early when one turns active; otherwise waits (up to ``timeout``
    after the traffic) until Prometheus scraped the service after the traffic
    and evaluated every watched rule after that scrape.
    """
    if not endpoints:
        raise ValueError("watch_quiet needs at least one endpoint")
    pacer = _Pacer(client, endpoints, rate, max(1, int(rate * duration) + 1), clock)
    active: dict[str, tuple[str, float, str | None]] = {}

    def look() -> None:
        current = prometheus.alerts()
        for name in alerts:
            state, value = alert_state(current, name)
            if state != "inactive" and name not in active:
                active[name] = (state, round(pacer.elapsed(), 3), value)

    def traffic() -> tuple[bool | None, str]:
        pacer.catch_up()
        look()
        if active or pacer.elapsed() >= duration:
            return True, ""
        return None, f"{pacer.sent} request(s) sent"

    wait_until(
        traffic,
        awaited="normal traffic to be sent",
        timeout=duration + 30.0,
        interval=0.1,
        max_interval=0.25,
        clock=clock,
        sleep=sleep,
    )
    traffic_end = now()
    ended = clock()
    traffic_seconds = pacer.elapsed()
    settled: float | None = None
    if not active:

        def scraped() -> tuple[datetime | None, str]:
            for target in prometheus.targets():
                if target.get("labels", {}).get("job") != job and target.get("scrapePool") != job:
                    continue
                started = _timestamp(str(target.get("lastScrape", "")))
                if started is None or started < traffic_end:
                    return None, f"last scrape {target.get('lastScrape')!r}, health {target.get('health')!r}"
                # Samples become visible when the scrape completes, not when it starts.
                return started + timedelta(seconds=float(target.get("lastScrapeDuration") or 0.0)), ""
            return None, f"no active target for job {job!r}"

        scraped_by = wait_until(
            scraped,
            awaited=f"Prometheus to scrape job {job!r} after the normal traffic",
            timeout=timeout,
            clock=clock,
            sleep=sleep,
        )

        def evaluated() -> tuple[bool | None, str]:
            look()
            if active:
                return True, ""
            pending = [
                r.get("name")
                for r in prometheus.rules("alert")
                if r.get("name") in alerts
                and (_timestamp(str(r.get("lastEvaluation", ""))) or scraped_by) <= scraped_by
            ]
            seen = f"not yet evaluated after the scrape: {', '.join(map(str, pending))}"
            return (None if pending else True), seen

        wait_until(
            evaluated,
            awaited=f"Prometheus to evaluate {', '.join(alerts)} after a scrape newer than the traffic",
            timeout=timeout,
            hint="evaluation_interval may be longer than the baseline timeout",
            clock=clock,
            sleep=sleep,
        )
        settled = clock() - ended
    return QuietOutcome(
        alerts=tuple(alerts),
        duration_seconds=round(traffic_seconds, 3),
        requests_sent=pacer.sent,
        statuses=dict(pacer.statuses),
        active=active,
        settled_after_seconds=None if settled is None else round(settled, 3),
    )


def fire_alert(
    client: httpx.Client,
    prometheus: PrometheusClient,
    recipe: LiveFire,
    *,
    job: str = "",
    on_scraped: Callable[[], None] | None = None,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> LiveFireOutcome:
    """Drive ``recipe`` until its alert reaches ``recipe.expect`` or ``recipe.timeout`` runs out.

    ``on_scraped`` is called once, as soon as Prometheus has scraped job
    ``job`` after the first answered request: from then on, the series the
    recipe's requests create exist in Prometheus (the run's plan lets the
    cardinality probe start then).
    """
    rule_loaded = any(r.get("name") == recipe.alert for r in prometheus.rules("alert"))
    pacer = _Pacer(client, [recipe.endpoint], recipe.rate, recipe.max_requests, clock)
    timeline: list[tuple[float, str]] = []
    first: dict[str, float] = {}
    reached = "inactive"
    last_value: str | None = None
    goal = STATES.index(recipe.expect)

    first_answer: datetime | None = None

    def announce_scraped() -> None:
        nonlocal first_answer, on_scraped
        if on_scraped is None:
            return
        if first_answer is None:
            if pacer.sent - pacer.statuses.get("no response", 0) > 0:
                first_answer = now()
            return
        if scraped_since(prometheus, job, first_answer):
            on_scraped()
            on_scraped = None

    def probe() -> tuple[str | None, str]:
        nonlocal reached, last_value
        pacer.catch_up()
        announce_scraped()
        state, value = alert_state(prometheus.alerts(), recipe.alert, recipe.labels)
        at = round(pacer.elapsed(), 3)
        if not timeline or timeline[-1][1] != state:
            timeline.append((at, state))
        if state != "inactive":
            last_value = value
            first.setdefault(state, at)
        if STATES.index(state) > STATES.index(reached):
            reached = state
        statuses = format_statuses(pacer.statuses)
        seen = f"{recipe.alert} {state} after {at:.1f}s; {pacer.sent} request(s) ({statuses})"
        return (state if STATES.index(state) >= goal else None), seen

    if rule_loaded:
        # On timeout the outcome records how far it got; ALR-012 judges it.
        with contextlib.suppress(WaitTimeout):
            wait_until(
                probe,
                awaited=f"alert {recipe.alert} to be {recipe.expect}",
                timeout=recipe.timeout,
                interval=0.1,
                max_interval=0.25,
                clock=clock,
                sleep=sleep,
            )
    if "firing" in first:
        first.setdefault("pending", first["firing"])
    return LiveFireOutcome(
        alert=recipe.alert,
        expect=recipe.expect,
        request=f"{recipe.endpoint.method} {recipe.endpoint.concrete_path()}",
        reached=reached,
        duration_seconds=round(pacer.elapsed(), 3),
        timeout=recipe.timeout,
        requests_sent=pacer.sent,
        statuses=dict(pacer.statuses),
        seconds_to_pending=first.get("pending"),
        seconds_to_firing=first.get("firing"),
        value=last_value,
        rule_loaded=rule_loaded,
        timeline=tuple(timeline),
        expect_status=recipe.expect_status,
    )


def format_statuses(statuses: Mapping[str, int]) -> str:
    """``500: 12, 200: 3`` (most frequent first), or ``none``."""
    ranked = sorted(statuses.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{status}: {count}" for status, count in ranked) or "none"


def _timestamp(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.year <= 1:
        return None
    return parsed
