"""Driving each rate-limit rule through its states and gathering what that left behind.

For every rule of the profile's ``rate_limits`` section, from a client key
no other traffic used:

1. **burst** — ``limit + margin`` requests to the rule's endpoint, one after
   another (so "request limit+1" means something);
2. **second client** — once the burst drew a 429, one request from another
   client key, while the first is still throttled;
3. **recovery** — a bounded poll: nothing is sent until the first 429's
   ``Retry-After`` (without a usable one: the window) has elapsed, then
   requests until one passes or ``window + recovery_margin`` seconds after
   that 429 have gone by.

Rules never share a client key, so they run concurrently (one thread each)
and their waits overlap: the whole probe takes about one window. Around the
rules it scrapes the 429 counter (before, and after until it has caught up)
and waits until the log stream holds a ``request_completed`` line for every
429. Everything goes to the service on 127.0.0.1; every request carries its
own correlation id so the checks can find its log record.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from conformance._exceptions import WaitTimeout
from conformance._sections.rate_limits import RateLimitMetric, RateLimitRule, RateLimitSection
from conformance._wait import wait_until
from conformance.collect._scrape import Exposition
from conformance.collect._traffic import send
from conformance.telemetry import HttpExchange, LogLine

__all__ = [
    "MAX_RECOVERY_ATTEMPTS",
    "RateLimitProbe",
    "RuleRun",
    "matching_samples",
    "run_rate_limit_probe",
]

#: Requests the recovery poll may send per rule, whatever the window.
MAX_RECOVERY_ATTEMPTS = 20
#: Header values for forwarded-for keys come from TEST-NET-1 (RFC 5737): never routed, only labels.
_FORWARDED_NET = "192.0.2."
#: Source addresses for source-address keys: other loopback addresses, so traffic stays on this host.
_LOOPBACK_NET = "127.0.0."
_SENSITIVE_KEY = re.compile(
    r"(?i)(e-?mail|pass(word|wd)?|secret|token|api[_-]?key|authori[sz]ation|card|ssn|phone)"
)

#: (epoch second the response arrived, the exchange).
Observation = tuple[float, HttpExchange]


@dataclass(frozen=True, slots=True)
class RuleRun:
    """What one rule's client went through."""

    rule: RateLimitRule
    #: How the second client differs from the first, for findings ("X-API-Key: another value").
    second_key: str
    burst: tuple[Observation, ...]
    second: Observation | None = None
    recovery: tuple[Observation, ...] = ()

    def throttled(self) -> list[HttpExchange]:
        """Every 429 this rule's clients received, in every phase."""
        everything = [*self.burst, *([self.second] if self.second else []), *self.recovery]
        return [x for _, x in everything if x.status_code == 429]


@dataclass(frozen=True, slots=True)
class RateLimitProbe:
    runs: tuple[RuleRun, ...]
    #: The 429 counter's total before and after (None: no sample of that name was exposed).
    counter_before: float | None
    counter_after: float | None
    #: The counter's matching samples after the bursts (their labels are checked for PII).
    samples: tuple[Sample, ...]
    log_lines: tuple[LogLine, ...]
    #: Description → value of what the harness sent that must not reach telemetry.
    sensitive: Mapping[str, str]
    seconds: float
    #: Telemetry waits that ran out (the checks then report what is missing).
    timeouts: tuple[str, ...] = field(default=())

    def throttled(self) -> dict[str, list[HttpExchange]]:
        return {run.rule.name: run.throttled() for run in self.runs}


def matching_samples(families: Sequence[Metric], metric: RateLimitMetric) -> list[Sample] | None:
    """Samples named ``metric.name`` carrying every label of ``metric.labels``;
    None when no sample has that name at all (the metric is not exposed)."""
    named = [s for family in families for s in family.samples if s.name == metric.name]
    if not named:
        return None
    return [s for s in named if all(s.labels.get(k) == v for k, v in metric.labels.items())]


def _total(exposition: Exposition, metric: RateLimitMetric) -> tuple[float | None, list[Sample]]:
    samples = matching_samples(exposition.families, metric) if exposition.ok else None
    if samples is None:
        return None, []
    return sum(s.value for s in samples), samples


@dataclass
class _Client:
    """One client key: the httpx client and the headers that make it that key."""

    http: httpx.Client
    headers: dict[str, str]


class _Keys:
    """Hands out a fresh first and second client per rule, per the rule's client_key."""

    def __init__(
        self,
        section: RateLimitSection,
        client_for: Callable[[str], httpx.Client],
        service_url: str,
        request_timeout: float,
        exits: ExitStack,
    ) -> None:
        self._section = section
        self._client_for = client_for
        self._service_url = service_url
        self._timeout = request_timeout
        self._exits = exits

    def pair(self, index: int, rule: RateLimitRule) -> tuple[_Client, _Client, str]:
        if rule.client_key == "forwarded-for":
            http = self._client_for(f"rl-{rule.name}")
            name = self._section.forwarded_for_header
            first, second = (f"{_FORWARDED_NET}{2 * index + n}" for n in (1, 2))
            return _Client(http, {name: first}), _Client(http, {name: second}), f"{name}: {second}"
        if rule.client_key == "source-address":
            first, second = (f"{_LOOPBACK_NET}{10 + 2 * index + n}" for n in (0, 1))
            return self._bound(first), self._bound(second), f"source address {second}"
        return (
            _Client(self._client_for(f"rl-{rule.name}"), {}),
            _Client(self._client_for(f"rl-{rule.name}-second"), {}),
            "another value of the client header",
        )

    def _bound(self, address: str) -> _Client:
        transport = httpx.HTTPTransport(local_address=address)
        http = httpx.Client(base_url=self._service_url, timeout=self._timeout, transport=transport)
        return _Client(self._exits.enter_context(http), {})


def _wait_seconds(x: HttpExchange, window: float) -> float:
    """How long to wait after this 429: Retry-After when it reads as seconds or
    a date, else the window; clamped to [0, window]. Lenient on purpose — RL-002
    judges the header, this only decides when to try again."""
    value = (x.response_header("retry-after") or "").strip()
    seconds = float(window)
    if value.isdigit():
        seconds = float(value)
    elif value:
        with suppress(TypeError, ValueError):
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
    return min(max(seconds, 0.0), float(window))


class _RuleProber:
    def __init__(
        self,
        rule: RateLimitRule,
        first: _Client,
        second: _Client,
        second_key: str,
        *,
        margin: int,
        recovery_margin: float,
        correlation_header: str,
    ) -> None:
        self.rule = rule
        self.first = first
        self.second = second
        self.second_key = second_key
        self.margin = margin
        self.recovery_margin = recovery_margin
        self.correlation_header = correlation_header
        self._sent = 0

    def _send(self, client: _Client) -> tuple[Observation, float]:
        self._sent += 1
        cid = f"rl-{self.rule.name}-{self._sent}-{secrets.token_hex(6)}"
        headers = {self.correlation_header: cid, **client.headers}
        exchange = send(client.http, self.rule.endpoint, extra_headers=headers)
        return (time.time(), exchange), time.monotonic()

    def run(self) -> RuleRun:
        burst: list[Observation] = []
        first_429: tuple[HttpExchange, float] | None = None
        for _ in range(self.rule.limit + self.margin):
            observation, arrived = self._send(self.first)
            burst.append(observation)
            if first_429 is None and observation[1].status_code == 429:
                first_429 = (observation[1], arrived)
        if first_429 is None:
            return RuleRun(self.rule, self.second_key, tuple(burst))
        second, _ = self._send(self.second)
        recovery = self._recover(*first_429)
        return RuleRun(self.rule, self.second_key, tuple(burst), second, tuple(recovery))

    def _recover(self, throttled: HttpExchange, arrived: float) -> list[Observation]:
        wait = _wait_seconds(throttled, self.rule.window)
        retry_at = arrived + wait
        deadline = arrived + self.rule.window + self.recovery_margin
        attempts: list[Observation] = []

        def probe() -> tuple[Observation | None, str]:
            if time.monotonic() < retry_at:
                return None, f"Retry-After ({wait:g}s) not yet elapsed"
            observation, _ = self._send(self.first)
            attempts.append(observation)
            x = observation[1]
            if x.status_code in self.rule.endpoint.expect_status or len(attempts) >= MAX_RECOVERY_ATTEMPTS:
                return observation, ""
            return None, f"attempt {len(attempts)} answered {x.status_code or x.error}"

        with suppress(WaitTimeout):  # RL-005 reports the attempts
            wait_until(
                probe,
                awaited=f"rule {self.rule.name}: a request to pass again after its 429",
                timeout=max(deadline - time.monotonic(), 0.0),
                interval=0.05,
                max_interval=0.25,
            )
        return attempts


def _sensitive_values(runs: Sequence[RuleRun], client_header: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    watched = [h for h in (client_header, "authorization", "cookie") if h]
    for run in runs:
        endpoint = run.rule.endpoint
        clients = {"": run.burst[:1], " (second client)": [run.second] if run.second else []}
        for which, observations in clients.items():
            for header in watched:
                for _, x in observations:
                    value = _sent_header(x, header)
                    if value:
                        found[f"the {header} value the harness sent ({run.rule.name}{which})"] = value
        for name, value in _body_strings(endpoint.json if endpoint.has_json else None):
            if _SENSITIVE_KEY.search(name) and len(value) >= 4:
                found[f"the request body's {name} ({endpoint.name})"] = value
    return found


def _body_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _body_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _body_strings(item, path)


def run_rate_limit_probe(
    section: RateLimitSection,
    *,
    client_for: Callable[[str], httpx.Client],
    service_url: str,
    request_timeout: float,
    scrape: Callable[[], Exposition],
    log_lines: Callable[[], list[LogLine]],
    correlation_header: str,
    client_header: str | None,
    request_completed_message: str,
) -> RateLimitProbe:
    """Probe every rule of ``section`` (see the module docstring).

    ``client_for(purpose)`` gives an HTTP client that is its own client key
    (the session's ``client``); ``scrape`` and ``log_lines`` read the
    service's ``/metrics`` and log stream.
    """
    started = time.monotonic()
    before, _ = _total(scrape(), section.metric)
    with ExitStack() as exits:
        keys = _Keys(section, client_for, service_url, request_timeout, exits)
        probers = []
        for index, rule in enumerate(section.rules):
            first, second, how = keys.pair(index, rule)
            probers.append(
                _RuleProber(
                    rule,
                    first,
                    second,
                    how,
                    margin=section.margin,
                    recovery_margin=section.recovery_margin,
                    correlation_header=correlation_header,
                )
            )
        with ThreadPoolExecutor(max_workers=len(probers), thread_name_prefix="rl-probe") as pool:
            runs = tuple(pool.map(_RuleProber.run, probers))
    timeouts: list[str] = []
    throttled = [x for run in runs for x in run.throttled()]
    after, samples = _await_counter(scrape, section, before, len(throttled), timeouts)
    lines = _await_log_lines(
        log_lines, throttled, correlation_header, request_completed_message, section, timeouts
    )
    return RateLimitProbe(
        runs=runs,
        counter_before=before,
        counter_after=after,
        samples=tuple(samples),
        log_lines=tuple(lines),
        sensitive=_sensitive_values(runs, client_header),
        seconds=time.monotonic() - started,
        timeouts=tuple(timeouts),
    )


def _await_counter(
    scrape: Callable[[], Exposition],
    section: RateLimitSection,
    before: float | None,
    sent: int,
    timeouts: list[str],
) -> tuple[float | None, list[Sample]]:
    """The counter once it has grown by ``sent`` (services count a request
    after answering it), or as last seen when ``telemetry_timeout`` runs out."""
    last: list[tuple[float | None, list[Sample]]] = []

    def probe() -> tuple[tuple[float | None, list[Sample]] | None, str]:
        total, samples = _total(scrape(), section.metric)
        last[:] = [(total, samples)]
        if total is not None and total - (before or 0.0) >= sent:
            return (total, samples), ""
        return None, f"{section.metric.name} total {total} (before: {before}; 429s sent: {sent})"

    try:
        return wait_until(
            probe, awaited=f"{section.metric.name} to count {sent} 429(s)", timeout=section.telemetry_timeout
        )
    except WaitTimeout as exc:
        timeouts.append(str(exc))
        return last[0] if last else (None, [])


def _await_log_lines(
    log_lines: Callable[[], list[LogLine]],
    throttled: Sequence[HttpExchange],
    correlation_header: str,
    request_completed_message: str,
    section: RateLimitSection,
    timeouts: list[str],
) -> list[LogLine]:
    """The log stream once a line holding both the completion message and the
    correlation id is there for every 429 (a substring test: the checks parse
    the records properly), or as it is when ``telemetry_timeout`` runs out."""
    wanted = {
        cid
        for x in throttled
        if (cid := x.response_header(correlation_header) or _sent_header(x, correlation_header))
    }
    last: list[list[LogLine]] = [[]]
    message = request_completed_message.encode()

    def probe() -> tuple[list[LogLine] | None, str]:
        lines = log_lines()
        last[0] = lines
        logged = {cid for line in lines if message in line.raw for cid in wanted if cid.encode() in line.raw}
        missing = len(wanted - logged)
        return (lines if not missing else None), f"{missing} of {len(wanted)} 429(s) not logged yet"

    try:
        return wait_until(probe, awaited="a log record for every 429", timeout=section.telemetry_timeout)
    except WaitTimeout as exc:
        timeouts.append(str(exc))
        return last[0]


def _sent_header(x: HttpExchange, name: str) -> str | None:
    return next((v for k, v in x.request_headers if k.lower() == name.lower()), None)
