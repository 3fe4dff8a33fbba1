"""Traffic and measurements for the MET cardinality and across-scrape checks.

:func:`plan_probe` builds N requests over the profile's endpoints, each with
its own id: in path parameters (``/users/<id>``), an unmatched path
(``/obsconform-probe/<id>``), a query parameter, the correlation header and a
few identity headers, and identity fields of a JSON body. Every id starts
with one random *marker*, so an id found in a label value is known to come
from the probe.

Rate limits: the probe is spread over several client identities (the
session's ``client(purpose)``, one purpose per lane); each round over the
endpoints goes out on the next lane, so one identity sends roughly
N / (lanes * endpoints) requests per endpoint. With the reference profile
(N = 200, 4 lanes, 9 targets) that is at most 6 logins per identity, under
the auth limit of 10 per window. 429s are counted, not retried; the suite
refuses to judge a probe that was mostly throttled.

:func:`observe_cardinality` sends the probe in two halves and records series
before, between and after, on ``/metrics`` and in Prometheus, each time
after a Prometheus scrape that began after the traffic.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from conformance._exceptions import HarnessError, WaitTimeout
from conformance._profile import Endpoint
from conformance.collect._prometheus_api import PrometheusClient, wait_for_target_up
from conformance.collect._scrape import ACCEPT_PROMETHEUS_TEXT, Exposition, parse_exposition
from conformance.collect._traffic import send
from conformance.telemetry import HttpExchange

__all__ = [
    "MAX_HISTORY_SECONDS",
    "PROBE_QUERY_PARAM",
    "UNMATCHED_ENDPOINT",
    "UNMATCHED_PREFIX",
    "CardinalityObservation",
    "Moment",
    "ProbeRequest",
    "ProbeStats",
    "PublicMetricsAnswer",
    "counter_history",
    "fetch_public_metrics",
    "new_probe_marker",
    "observe_cardinality",
    "observe_steady_traffic",
    "plan_probe",
    "send_probe",
]

#: How far back :func:`counter_history` reads from Prometheus.
MAX_HISTORY_SECONDS = 900
#: Query parameter carrying the probe id.
PROBE_QUERY_PARAM = "obsconform_probe"
#: Path prefix no route should match; the id follows it.
UNMATCHED_PREFIX = "/obsconform-probe"
#: Endpoint name recorded for requests to the unmatched path.
UNMATCHED_ENDPOINT = "<unmatched>"

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def new_probe_marker() -> str:
    """Six random digits (no leading zero) that start every probe id of one run."""
    return str(100000 + secrets.randbelow(900000))


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    endpoint: str
    method: str
    path: str
    probe_id: str
    lane: int
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    json: Any = None
    has_json: bool = False


def _distinct(original: Any, probe_id: str) -> Any:
    """``original`` made distinct with ``probe_id``, keeping its shape (digits stay digits, a UUID a UUID)."""
    if isinstance(original, bool):
        return original
    if isinstance(original, int):
        return int(probe_id)
    text = str(original)
    if text.isdigit():
        return probe_id
    if _UUID.match(text):
        return text[:-12] + probe_id.rjust(12, "0")[-12:]
    if "@" in text:
        local, _, domain = text.partition("@")
        return f"{local}+{probe_id}@{domain}"
    return f"{text}-{probe_id}" if text else probe_id


def plan_probe(
    endpoints: Sequence[Endpoint],
    count: int,
    *,
    marker: str,
    lanes: int,
    headers: Sequence[str],
    correlation_header: str,
    body_fields: Sequence[str],
    unmatched_path: bool,
) -> list[ProbeRequest]:
    """``count`` requests, round-robin over ``endpoints`` (plus the unmatched
    path), each with the id ``<marker><index:05d>``; round ``r`` goes out on
    lane ``r % lanes``."""
    targets: list[Endpoint | None] = [*endpoints, *([None] if unmatched_path else [])]
    if not targets:
        raise HarnessError(
            "the cardinality probe has no endpoint to drive", hint="add endpoints to the profile"
        )
    plan = []
    for i in range(count):
        probe_id = f"{marker}{i:05d}"
        target = targets[i % len(targets)]
        lane = (i // len(targets)) % max(1, lanes)
        sent_headers = {
            name: (f"obsconform-probe/{probe_id}" if name.lower() == "user-agent" else f"obsc-{probe_id}")
            for name in headers
        }
        sent_headers[correlation_header] = f"obsc-{probe_id}"
        if target is None:
            plan.append(
                ProbeRequest(
                    UNMATCHED_ENDPOINT,
                    "GET",
                    f"{UNMATCHED_PREFIX}/{probe_id}",
                    probe_id,
                    lane,
                    ((PROBE_QUERY_PARAM, f"q{probe_id}"),),
                    tuple(sent_headers.items()),
                )
            )
            continue
        path = target.path
        for key, value in target.path_params.items():
            path = path.replace("{" + key + "}", str(_distinct(value, probe_id)))
        body = target.json
        if target.has_json and isinstance(body, Mapping):
            body = {k: (_distinct(v, probe_id) if k in body_fields else v) for k, v in body.items()}
        params = [*httpx.QueryParams(dict(target.query)).multi_items(), (PROBE_QUERY_PARAM, f"q{probe_id}")]
        plan.append(
            ProbeRequest(
                target.name,
                target.method,
                path,
                probe_id,
                lane,
                tuple(params),
                tuple({**target.headers, **sent_headers}.items()),
                body,
                target.has_json,
            )
        )
    return plan


@dataclass(frozen=True, slots=True)
class ProbeStats:
    sent: int
    statuses: Mapping[int, int]
    errors: tuple[str, ...]
    seconds: float

    @property
    def throttled(self) -> int:
        return self.statuses.get(429, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "throttled": self.throttled,
            "errors": list(self.errors[:5]),
            "seconds": round(self.seconds, 3),
        }


def send_probe(clients: Sequence[httpx.Client], plan: Sequence[ProbeRequest]) -> ProbeStats:
    """Send ``plan`` in order, each request on its lane's client; transport errors are counted, not raised."""
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    started = time.perf_counter()
    for request in plan:
        client = clients[request.lane % len(clients)]
        built = client.build_request(
            request.method,
            request.path,
            params=list(request.params),
            headers=dict(request.headers),
            json=request.json if request.has_json else None,
        )
        try:
            response = client.send(built)
            response.read()
        except httpx.HTTPError as exc:
            errors.append(f"{request.method} {request.path}: {type(exc).__name__}: {exc}")
            continue
        statuses[response.status_code] += 1
    return ProbeStats(len(plan), dict(statuses), tuple(errors), time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class Moment:
    """``/metrics`` and Prometheus's series after the traffic sent so far."""

    name: str
    exposition: Exposition
    prometheus_series: tuple[dict[str, str], ...]
    scraped_at: str
    #: Why Prometheus holds nothing of this moment (its target never came up), else "".
    prometheus_error: str = ""


@dataclass(frozen=True, slots=True)
class CardinalityObservation:
    marker: str
    plan: tuple[ProbeRequest, ...]
    halves: tuple[ProbeStats, ProbeStats]
    moments: tuple[Moment, Moment, Moment]
    tsdb_before: Mapping[str, Any]
    tsdb_after: Mapping[str, Any]
    seconds: float


def _moment(
    name: str, scrape: Callable[[], Exposition], prometheus: PrometheusClient, job: str, timeout: float
) -> Moment:
    exposition = scrape()
    # After the scrape: with metrics.source: otlp it returns once a push newer than the traffic
    # reached the exporter, and Prometheus's scrape must be newer than that push too.
    since = datetime.now(UTC)
    try:
        target = wait_for_target_up(prometheus, job, timeout=timeout, since=since)
    except WaitTimeout as exc:
        # /metrics still answers for the checks that need no Prometheus; the ones that do say why.
        return Moment(name, exposition, (), "", prometheus_error=str(exc))
    series = prometheus.series([f'{{job="{job}"}}'], start=since)
    return Moment(name, exposition, tuple(dict(s) for s in series), str(target.get("lastScrape", "")))


def observe_cardinality(
    plan: Sequence[ProbeRequest],
    *,
    marker: str,
    clients: Sequence[httpx.Client],
    scrape: Callable[[], Exposition],
    prometheus: PrometheusClient,
    job: str,
    timeout: float,
) -> CardinalityObservation:
    """Series before the probe, after its first half and after its second half.

    Each moment scrapes ``/metrics`` and then waits (``timeout``) for a
    Prometheus scrape that began after the traffic, so both views include it.
    """
    started = time.perf_counter()
    half = (len(plan) + 1) // 2
    before = _moment("before the probe", scrape, prometheus, job, timeout)
    tsdb_before = prometheus.tsdb_status()
    first = send_probe(clients, plan[:half])
    middle = _moment("after the first half", scrape, prometheus, job, timeout)
    second = send_probe(clients, plan[half:])
    after = _moment("after the second half", scrape, prometheus, job, timeout)
    tsdb_after = prometheus.tsdb_status()
    return CardinalityObservation(
        marker,
        tuple(plan),
        (first, second),
        (before, middle, after),
        tsdb_before,
        tsdb_after,
        time.perf_counter() - started,
    )


def observe_steady_traffic(
    client: httpx.Client, endpoints: Sequence[Endpoint], scrape: Callable[[], Exposition]
) -> tuple[Exposition, Exposition, list[HttpExchange]]:
    """Two scrapes with one round of the profile's own requests between them.

    A warm-up round goes first, so every series those requests create exists
    before the first scrape; the round between the scrapes repeats exactly
    the same requests.
    """
    exchanges = [send(client, ep) for ep in endpoints]
    first = scrape()
    exchanges += [send(client, ep) for ep in endpoints]
    second = scrape()
    return first, second, exchanges


def counter_history(
    prometheus: PrometheusClient, job: str, names: Sequence[str], window_seconds: float
) -> list[dict[str, Any]]:
    """Every sample Prometheus stored in the last ``window_seconds`` (at most
    :data:`MAX_HISTORY_SECONDS`) for the series called one of ``names``:
    ``{"metric": {...}, "values": [(t, v), ...]}`` per series.

    The raw range is fetched rather than ``resets()``, which drops the metric
    name, so a decrease can be named."""
    if not names:
        return []
    window = min(MAX_HISTORY_SECONDS, max(1, math.ceil(window_seconds)))
    selector = f'{{job="{job}",__name__=~"{"|".join(names)}"}}'
    return prometheus.query(f"{selector}[{window}s]")


@dataclass(frozen=True, slots=True)
class PublicMetricsAnswer:
    url: str
    status_code: int
    serves_metrics: bool
    content_type: str


def fetch_public_metrics(client: httpx.Client, path: str) -> PublicMetricsAnswer:
    """GET the metrics path on the public port, with no credentials."""
    url = str(client.base_url.join(path))
    try:
        response = client.get(path, headers={"Accept": ACCEPT_PROMETHEUS_TEXT})
    except httpx.HTTPError as exc:
        raise HarnessError(f"GET {url} failed: {type(exc).__name__}: {exc}") from exc
    content_type = response.headers.get("content-type", "")
    serves = False
    if response.status_code == 200:
        families, _, error = parse_exposition(response.text, content_type)
        serves = not error and bool(families)
    return PublicMetricsAnswer(url, response.status_code, serves, content_type)
