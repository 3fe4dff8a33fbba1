"""Live-fire collectors, stepped through time against a scripted Prometheus API.

The real Prometheus cannot be told "pending at 2 s, firing at 5 s", so these
tests use :class:`PrometheusApiDouble`; the integration tests fire a real
alert in a real Prometheus.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conformance._exceptions import WaitTimeout
from conformance._profile import Endpoint
from conformance._sections.alerts import LiveFire
from conformance.collect._livefire import alert_state, fire_alert, format_statuses, watch_quiet
from conformance.collect._prometheus_api import PrometheusClient

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
ERROR = Endpoint(name="error", path="/error")
HEALTH = Endpoint(name="health", path="/health")


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.t)


def stamp(seconds: float) -> str:
    return (EPOCH + timedelta(seconds=seconds)).isoformat()


class PrometheusApiDouble:
    """A scripted stand-in for Prometheus's /api/v1 (alerts, rules, targets).

    Why a double: the alert's state over time is the input under test. Time
    is the fake clock's; every API call advances it by 0.1 s, scrapes happen
    on whole seconds and rule evaluations half a second later.
    """

    def __init__(self, clock: FakeClock, state_at: Callable[[float], str], *, loaded: bool = True) -> None:
        self.clock = clock
        self.state_at = state_at
        self.loaded = loaded

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.clock.t += 0.1
        t = self.clock.t
        data: Any
        if request.url.path == "/api/v1/alerts":
            state = self.state_at(t)
            alerts = (
                []
                if state == "inactive"
                else [{"labels": {"alertname": "HighErrorRate"}, "state": state, "value": "0.9"}]
            )
            data = {"alerts": alerts}
        elif request.url.path == "/api/v1/rules":
            evaluated = math.floor(t - 0.5) + 0.5
            rules = [
                {
                    "name": "HighErrorRate",
                    "type": "alerting",
                    "health": "ok",
                    "lastEvaluation": stamp(evaluated),
                }
            ]
            data = {"groups": [{"name": "g", "file": "r.yml", "rules": rules if self.loaded else []}]}
        elif request.url.path == "/api/v1/targets":
            target = {
                "labels": {"job": "service"},
                "scrapePool": "service",
                "health": "up",
                "lastScrape": stamp(math.floor(t)),
                "lastScrapeDuration": 0.01,
                "scrapeUrl": "http://svc/metrics",
            }
            data = {"activeTargets": [target]}
        else:
            return httpx.Response(404)
        return httpx.Response(200, json={"status": "success", "data": data})

    def client(self) -> PrometheusClient:
        return PrometheusClient(
            "http://prometheus", client=httpx.Client(transport=httpx.MockTransport(self.handler))
        )


def service() -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if request.url.path == "/error" else 200)

    return httpx.Client(base_url="http://svc", transport=httpx.MockTransport(handler))


def staged(pending: float, firing: float) -> Callable[[float], str]:
    return lambda t: "firing" if t >= firing else "pending" if t >= pending else "inactive"


def test_alert_state_takes_the_most_escalated_matching_instance() -> None:
    alerts = [
        {"labels": {"alertname": "A", "endpoint": "/x"}, "state": "pending", "value": "1"},
        {"labels": {"alertname": "A", "endpoint": "/y"}, "state": "firing", "value": "2"},
        {"labels": {"alertname": "B"}, "state": "firing"},
    ]
    assert alert_state(alerts, "A") == ("firing", "2")
    assert alert_state(alerts, "A", {"endpoint": "/x"}) == ("pending", "1")
    assert alert_state(alerts, "C") == ("inactive", None)


def test_fire_alert_reaches_firing() -> None:
    clock = FakeClock()
    prometheus = PrometheusApiDouble(clock, staged(pending=2.0, firing=5.0))
    recipe = LiveFire(alert="HighErrorRate", endpoint=ERROR, rate=5, max_requests=200, timeout=30)
    out = fire_alert(service(), prometheus.client(), recipe, clock=clock, sleep=clock.sleep)
    assert out.ok and out.reached == "firing"
    assert out.seconds_to_pending is not None and 1.8 <= out.seconds_to_pending < 2.6
    assert out.seconds_to_firing is not None and 4.8 <= out.seconds_to_firing < 5.6
    assert set(out.statuses) == {"500"} and 25 <= out.requests_sent <= 30  # 5 per second
    assert [state for _, state in out.timeline] == ["inactive", "pending", "firing"]


def test_fire_alert_that_never_fires_is_bounded_in_time_and_requests() -> None:
    clock = FakeClock()
    prometheus = PrometheusApiDouble(clock, lambda t: "inactive")
    recipe = LiveFire(alert="HighErrorRate", endpoint=ERROR, rate=5, max_requests=20, timeout=10)
    out = fire_alert(service(), prometheus.client(), recipe, clock=clock, sleep=clock.sleep)
    assert not out.ok and out.reached == "inactive"
    assert out.requests_sent == 20 and 10 <= out.duration_seconds < 11


def test_fire_alert_pending_is_enough_when_asked() -> None:
    clock = FakeClock()
    prometheus = PrometheusApiDouble(clock, staged(pending=1.0, firing=60.0))
    recipe = LiveFire(alert="HighErrorRate", endpoint=ERROR, expect="pending", timeout=10)
    out = fire_alert(service(), prometheus.client(), recipe, clock=clock, sleep=clock.sleep)
    assert out.ok and out.reached == "pending" and out.duration_seconds < 2


def test_fire_alert_without_the_rule_sends_nothing() -> None:
    clock = FakeClock()
    prometheus = PrometheusApiDouble(clock, lambda t: "inactive", loaded=False)
    out = fire_alert(
        service(), prometheus.client(), LiveFire("HighErrorRate", ERROR), clock=clock, sleep=clock.sleep
    )
    assert not out.rule_loaded and out.requests_sent == 0


def test_quiet_traffic_waits_for_an_evaluation_after_a_later_scrape() -> None:
    clock = FakeClock()
    prometheus = PrometheusApiDouble(clock, lambda t: "inactive")
    out = watch_quiet(
        service(),
        prometheus.client(),
        alerts=["HighErrorRate"],
        endpoints=[HEALTH, ERROR],
        job="service",
        rate=5,
        duration=3,
        timeout=10,
        clock=clock,
        sleep=clock.sleep,
        now=clock.now,
    )
    assert out.active == {}
    assert out.requests_sent == 16 and out.statuses == {"200": 8, "500": 8}  # round robin
    assert out.settled_after_seconds is not None and 0.5 <= out.settled_after_seconds <= 2.5


def test_quiet_traffic_stops_as_soon_as_an_alert_turns_active() -> None:
    clock = FakeClock()
    prometheus = PrometheusApiDouble(clock, staged(pending=1.0, firing=99.0))
    out = watch_quiet(
        service(),
        prometheus.client(),
        alerts=["HighErrorRate"],
        endpoints=[HEALTH],
        job="service",
        rate=5,
        duration=3,
        timeout=10,
        clock=clock,
        sleep=clock.sleep,
        now=clock.now,
    )
    state, at, value = out.active["HighErrorRate"]
    assert (state, value) == ("pending", "0.9") and 1.0 <= at < 1.5
    assert out.requests_sent < 10 and out.settled_after_seconds is None


def test_quiet_traffic_never_evaluated_is_a_timeout() -> None:
    clock = FakeClock()

    class NeverEvaluated(PrometheusApiDouble):
        def handler(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/api/v1/rules":
                rules = [{"name": "HighErrorRate", "type": "alerting", "lastEvaluation": stamp(0)}]
                return httpx.Response(200, json={"status": "success", "data": {"groups": [{"rules": rules}]}})
            return super().handler(request)

    with pytest.raises(WaitTimeout, match="Prometheus to evaluate HighErrorRate after a scrape newer"):
        watch_quiet(
            service(),
            NeverEvaluated(clock, lambda t: "inactive").client(),
            alerts=["HighErrorRate"],
            endpoints=[HEALTH],
            job="service",
            rate=5,
            duration=1,
            timeout=3,
            clock=clock,
            sleep=clock.sleep,
            now=clock.now,
        )


def test_format_statuses() -> None:
    assert format_statuses({"200": 3, "500": 12, "no response": 1}) == "500: 12, 200: 3, no response: 1"
    assert format_statuses({}) == "none"
