"""What the service's own metrics say about a load run, read from the real Prometheus.

Both questions are asked of the window between two scrapes: one taken after
the baseline traffic and before Locust started (``since``), one taken after
Locust's last response (``until``). Instead of ``increase()``, which
extrapolates, the queries subtract the value at ``since`` (PromQL's ``@``
modifier) from the value at ``until``: exact counts for the counter, exact
per-bucket counts for ``histogram_quantile``. A series that did not exist at
``since`` (a route first hit by the load) counts from zero.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from conformance._wait import wait_until
from conformance.collect._prometheus_api import PrometheusClient, wait_for_target_up

__all__ = [
    "Route",
    "histogram_p95_query",
    "served_requests",
    "served_requests_query",
    "server_p95_seconds",
    "wait_for_scrape_after",
]

#: (HTTP method, route template), as the service labels its metrics.
Route = tuple[str, str]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _selector(metric: str, route: Route, method_label: str, route_label: str) -> str:
    method, path = route
    return f"{metric}{{{method_label}={_quote(method)},{route_label}={_quote(path)}}}"


def served_requests_query(
    metric: str, route: Route, *, method_label: str, route_label: str, since: float
) -> str:
    """Requests the counter gained on ``route`` between ``since`` and the query's time."""
    sel = _selector(metric, route, method_label, route_label)
    return f"sum({sel}) - (sum({sel} @ {since:.3f}) or vector(0))"


def histogram_p95_query(
    metric: str, route: Route, *, method_label: str, route_label: str, since: float
) -> str:
    """``histogram_quantile(0.95, ...)`` over the buckets gained on ``route`` since ``since``."""
    sel = _selector(f"{metric}_bucket", route, method_label, route_label)
    window = f"sum by (le) ({sel}) - (sum by (le) ({sel} @ {since:.3f}) or sum by (le) ({sel}) * 0)"
    return f"histogram_quantile(0.95, {window})"


def _single(result: list[dict[str, object]]) -> float | None:
    if not result:
        return None
    value = result[0].get("value")
    return float(value) if isinstance(value, int | float) else None


def served_requests(
    prometheus: PrometheusClient,
    routes: Iterable[Route],
    *,
    metric: str,
    method_label: str,
    route_label: str,
    since: float,
    until: float,
) -> dict[Route, float | None]:
    """Per route: how much the request counter grew in the window (``None``: no such series)."""
    return {
        route: _single(
            prometheus.query(
                served_requests_query(
                    metric, route, method_label=method_label, route_label=route_label, since=since
                ),
                until,
            )
        )
        for route in routes
    }


def server_p95_seconds(
    prometheus: PrometheusClient,
    routes: Iterable[Route],
    *,
    metric: str,
    method_label: str,
    route_label: str,
    since: float,
    until: float,
) -> dict[Route, float | None]:
    """Per route: the histogram's p95 over the window in seconds (``None``: no buckets;
    NaN: no observations; +Inf: beyond the largest finite bucket)."""
    out: dict[Route, float | None] = {}
    for route in routes:
        value = _single(
            prometheus.query(
                histogram_p95_query(
                    metric, route, method_label=method_label, route_label=route_label, since=since
                ),
                until,
            )
        )
        out[route] = value
    return out


def wait_for_scrape_after(prometheus: PrometheusClient, job: str, moment: float, *, timeout: float) -> float:
    """Wait until Prometheus has scraped ``job`` after ``moment`` (epoch seconds) and the
    sample is queryable; return a query time at which that scrape is the latest one."""
    wait_for_target_up(prometheus, job, timeout=timeout, since=datetime.fromtimestamp(moment, tz=UTC))
    now = time.time()

    def probe() -> tuple[float | None, str]:
        # `up` carries the scrape's own timestamp: the sample must be newer than `moment`.
        result = prometheus.query(f'timestamp(up{{job="{job}"}})', now)
        stamp = _single(result)
        if stamp is not None and not math.isnan(stamp) and stamp >= moment:
            return now, f"latest scrape at {stamp:.3f}"
        return None, f"latest scrape at {stamp}" if stamp is not None else "no up sample yet"

    return wait_until(probe, awaited=f"a scrape of {job!r} after the load run", timeout=timeout)
