"""RL-*: rate limiting as a state machine — limit, 429, Retry-After, body, recovery, telemetry.

Pure: what the rate-limit probe observed (the exchanges of each rule's burst,
its recovery poll and its second-client probe, each with the epoch time its
response arrived), metric totals and log lines in; findings out.

An observation is ``(received_at, exchange)``: ``received_at`` is the epoch
second the response arrived, needed to judge Retry-After dates, reset times
and recovery. A rule whose burst never drew a 429 leaves the 429-dependent
requirements nothing to examine; they fail with a finding that says so
(RL-001 names the cause), since they cannot be shown to hold. Checks whose
input may hold nothing to judge even with 429s (the telemetry ones) return
what they examined next to their findings (``{"log_records": 12}``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import jsonschema
from prometheus_client.samples import Sample

from conformance._exceptions import HarnessError
from conformance._mask import excerpt, mask_text
from conformance._model import Finding, Level
from conformance._profile import LogContract
from conformance._requirements import requirement
from conformance._sections.rate_limits import RateLimitMetric, RateLimitRule
from conformance.checks._structured_fields import (
    InnerList,
    Item,
    StructuredFieldError,
    parse_dictionary,
    parse_list,
)
from conformance.checks.logs import ParsedLogLine, get_field
from conformance.telemetry import HttpExchange

__all__ = [
    "CLOCK_TOLERANCE",
    "RL_001",
    "RL_002",
    "RL_003",
    "RL_004",
    "RL_005",
    "RL_006",
    "RL_007",
    "RL_008",
    "RL_009",
    "RL_010",
    "Observation",
    "RetryAfter",
    "burst_seconds",
    "cacheable_because",
    "check_429_counter",
    "check_429_log_records",
    "check_429_telemetry_pii",
    "check_error_body",
    "check_limit_boundary",
    "check_limit_headers",
    "check_not_cacheable",
    "check_recovery",
    "check_retry_after",
    "check_second_client",
    "correlation_id",
    "count_429s",
    "describe_burst",
    "limit_fields_seen",
    "parse_http_date",
    "parse_retry_after",
]

RL_001 = requirement(
    "RL-001",
    Level.MUST,
    "Exactly `limit` requests pass within the window; request limit+1 gets 429",
    source="seed 000 §Middleware 1 'Rate Limiting (slowapi)' default limits; RFC 6585 §4",
)
RL_002 = requirement(
    "RL-002",
    Level.MUST,
    "Every 429 carries one valid Retry-After (delay-seconds or IMF-fixdate), no longer than the window "
    "and equal to the body's retry_after",
    source="RFC 9110 §10.2.3 Retry-After, §5.6.7 HTTP-date; RFC 6585 §4; seed 000 429 'retry_after'",
)
RL_003 = requirement(
    "RL-003",
    Level.MUST,
    "The 429 body is JSON (JSON Content-Type) and validates against the 429 schema",
    source="seed 000 §Rate Limiting 'Response format'; schemas/rate-limit-error.schema.json",
)
RL_004 = requirement(
    "RL-004",
    Level.MUST,
    "The 429 is not cacheable (no-store/no-cache/private, or no explicit freshness)",
    source="RFC 6585 §4 'Responses with the 429 status code MUST NOT be stored by a cache'; "
    "RFC 9111 §3, §5.2.2, §5.3; RFC 9110 §15.1 (429 is not heuristically cacheable)",
)
RL_005 = requirement(
    "RL-005",
    Level.MUST,
    "After waiting Retry-After the client's requests succeed again",
    source="RFC 9110 §10.2.3; RFC 6585 §4 'how long to wait before making a new request'; "
    "seed 000 'Includes retry_after in response'",
)
RL_006 = requirement(
    "RL-006",
    Level.MUST,
    "Limits are per client key: a second client is not throttled by the first",
    source="seed 000 'Tracks by client IP address', §Production Recommendations 'API key-based limits'",
)
RL_007 = requirement(
    "RL-007",
    Level.SHOULD,
    "RateLimit/RateLimit-Policy and X-RateLimit-* fields, when sent, are well-formed and agree with "
    "the limit, the window, Retry-After and what the service did",
    source="draft-ietf-httpapi-ratelimit-headers-10 §3, §4, §6; RFC 8941; "
    "legacy X-RateLimit-* as sent by slowapi",
)
RL_008 = requirement(
    "RL-008",
    Level.MUST,
    'The 429 counter (http_requests_total{status_code="429"}) grows by exactly the number of 429s sent',
    source="seed 000 §Metrics http_requests_total{method,endpoint,status_code}",
)
RL_009 = requirement(
    "RL-009",
    Level.MUST,
    "Every 429 has exactly one request_completed record with its correlation id and status 429",
    source="seed 000 §Middleware 2 'Automatic request/response logging', 'Correlation IDs'",
)
RL_010 = requirement(
    "RL-010",
    Level.MUST,
    "The 429s' log records and metric labels carry no PII or credentials",
    source="seed 002 PII redaction; seed 000 'Correlation IDs' (ids, not identities)",
)

#: An observed exchange: (epoch second its response arrived, the exchange).
Observation = tuple[float, HttpExchange]

#: Seconds of slack for whole-second headers and clocks (Retry-After is rounded to seconds).
CLOCK_TOLERANCE = 1.5
#: Reset values at least this large are epoch seconds (slowapi, GitHub); smaller ones are delays.
_EPOCH_THRESHOLD = 1_000_000_000

_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_IMF_FIXDATE = re.compile(rf"^{_DAY}, \d{{2}} {_MONTH} \d{{4}} \d{{2}}:\d{{2}}:\d{{2}} GMT$")
_RFC850_DATE = re.compile(
    rf"^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \d{{2}}-{_MONTH}-\d{{2}} "
    r"\d{2}:\d{2}:\d{2} GMT$"
)
_ASCTIME_DATE = re.compile(rf"^{_DAY} {_MONTH} (?: \d|\d{{2}}) \d{{2}}:\d{{2}}:\d{{2}} \d{{4}}$")
_DELAY_SECONDS = re.compile(r"^[0-9]+$")


# -- small readers ----------------------------------------------------------
def _headers(x: HttpExchange, name: str) -> list[str]:
    wanted = name.lower()
    return [v for k, v in x.response_headers if k.lower() == wanted]


def _request_header(x: HttpExchange, name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in x.request_headers if k.lower() == wanted), None)


def correlation_id(x: HttpExchange, header: str) -> str | None:
    """The id the service answered with, else the one the harness sent."""
    return x.response_header(header) or _request_header(x, header)


def _is_ok(rule: RateLimitRule, x: HttpExchange) -> bool:
    return x.status_code in rule.endpoint.expect_status


def _throttled(burst: Sequence[Observation]) -> list[tuple[int, float, HttpExchange]]:
    """(1-based request number, received_at, exchange) of every 429 in the burst."""
    return [(i, at, x) for i, (at, x) in enumerate(burst, start=1) if x.status_code == 429]


def _passed_before_429(burst: Sequence[Observation]) -> int | None:
    """How many requests preceded the first 429, or None when none came."""
    for i, (_, x) in enumerate(burst):
        if x.status_code == 429:
            return i
    return None


def count_429s(observations: Iterable[Observation]) -> int:
    """How many of the observations are 429s (what RL-002 … RL-004 examine of a burst)."""
    return sum(1 for _, x in observations if x.status_code == 429)


def describe_burst(observations: Sequence[Observation]) -> str:
    """The statuses in order, runs merged: ``200x10, 429x2``."""
    runs: list[list[Any]] = []
    for _, x in observations:
        status = x.status_code if x.status_code is not None else "no response"
        if runs and runs[-1][0] == status:
            runs[-1][1] += 1
        else:
            runs.append([status, 1])
    return ", ".join(f"{s}x{n}" for s, n in runs)


def burst_seconds(observations: Sequence[Observation]) -> float:
    """From sending the first request to receiving the last response."""
    if not observations:
        return 0.0
    return observations[-1][0] - (observations[0][0] - observations[0][1].elapsed_seconds)


def _no_429(req_id: str, rule: RateLimitRule, sent: int, what: str) -> Finding:
    return Finding(
        req_id,
        f"{rule.name}: none of the {sent} requests to {rule.endpoint.method} {rule.endpoint.path} "
        f"drew a 429, so there is no 429 {what} (RL-001 reports the limit)",
        {"rule": rule.name, "requests": sent},
    )


def _evidence(rule: RateLimitRule, number: int, x: HttpExchange, **extra: Any) -> dict[str, Any]:
    return {"rule": rule.name, "request": number, "status_code": x.status_code, **extra}


# -- Retry-After and dates (RFC 9110 §10.2.3, §5.6.7) -----------------------
def parse_http_date(value: str) -> tuple[datetime | None, str]:
    """An HTTP-date as an aware UTC datetime, and a problem ("" when it is IMF-fixdate).

    Recipients must accept the two obsolete forms (RFC 9110 §5.6.7), so they
    are parsed, but a sender MUST generate IMF-fixdate: the problem says so.
    """
    text = value.strip()
    if _IMF_FIXDATE.match(text):
        problem = ""
    elif _RFC850_DATE.match(text) or _ASCTIME_DATE.match(text):
        problem = "uses an obsolete HTTP-date format; senders MUST generate IMF-fixdate (RFC 9110 §5.6.7)"
    else:
        return None, "is neither delay-seconds nor an HTTP-date"
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError) as exc:
        return None, f"is not a real date ({exc})"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed, problem


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """A parsed Retry-After: seconds to wait from when the response was generated."""

    seconds: float
    form: str  # "delay-seconds" or "http-date"
    problem: str = ""


def _response_time(x: HttpExchange, received_at: float) -> float:
    """When the response was generated: its Date header if valid, else when it arrived."""
    date = x.response_header("date")
    if date:
        parsed, problem = parse_http_date(date)
        if parsed is not None and not problem:
            return parsed.timestamp()
    return received_at


def parse_retry_after(x: HttpExchange, received_at: float) -> tuple[RetryAfter | None, str]:
    """The response's Retry-After, or None and why not (absent, repeated, malformed)."""
    values = _headers(x, "retry-after")
    if not values:
        return None, "has no Retry-After"
    if len({v.strip() for v in values}) > 1:
        return None, f"has {len(values)} different Retry-After values {values!r} (it is a singleton field)"
    text = values[0].strip()
    if _DELAY_SECONDS.match(text):
        return RetryAfter(float(int(text)), "delay-seconds"), ""
    parsed, problem = parse_http_date(text)
    if parsed is None:
        return None, f"has Retry-After {excerpt(text, 60)!r}, which {problem}"
    seconds = parsed.timestamp() - _response_time(x, received_at)
    return RetryAfter(seconds, "http-date", problem), ""


def _wait_seconds(rule: RateLimitRule, observation: Observation) -> float:
    """How long a client should wait after this 429: Retry-After if valid, else the window."""
    at, x = observation
    parsed, _ = parse_retry_after(x, at)
    if parsed is None:
        return float(rule.window)
    return min(max(parsed.seconds, 0.0), float(rule.window))


# -- RL-001 -----------------------------------------------------------------
def _advertised_limit(burst: Sequence[Observation]) -> str:
    """The limit the responses claim, if any field says (to name the actual limit when no 429 came)."""
    for name in ("X-RateLimit-Limit", "RateLimit-Limit", "RateLimit-Policy"):
        for _, x in burst:
            values = _headers(x, name)
            if values:
                return f"{name}: {excerpt(', '.join(values), 60)}"
    return ""


def check_limit_boundary(rule: RateLimitRule, burst: Sequence[Observation]) -> list[Finding]:
    """RL-001: in a burst from a fresh client, requests 1..limit pass and the rest get 429.

    Raises :class:`HarnessError` when the burst outlasted the window: the
    count would then mix two windows and prove nothing.
    """
    if not burst:
        raise HarnessError(f"{rule.name}: the probe sent no requests")
    took = burst_seconds(burst)
    if took > rule.window:
        raise HarnessError(
            f"{rule.name}: the burst of {len(burst)} requests took {took:.1f}s, longer than the "
            f"{rule.window}s window, so the count spans windows",
            hint="give the test build a longer window (and the rule the same window) or a faster machine",
        )
    summary = {
        "rule": rule.name,
        "limit": rule.limit,
        "window": rule.window,
        "statuses": describe_burst(burst),
    }
    findings: list[Finding] = []
    passed = _passed_before_429(burst)
    for i, (_, x) in enumerate(burst, start=1):
        if x.status_code is None:
            findings.append(
                Finding(
                    RL_001.id,
                    f"{rule.name}: request {i} got no response ({excerpt(x.error, 100)})",
                    _evidence(rule, i, x),
                )
            )
        elif x.status_code != 429 and not _is_ok(rule, x):
            findings.append(
                Finding(
                    RL_001.id,
                    f"{rule.name}: request {i} answered {x.status_code}; expected "
                    f"{'/'.join(map(str, rule.endpoint.expect_status))} or 429",
                    _evidence(rule, i, x),
                )
            )
    if passed is None:
        advertised = _advertised_limit(burst)
        findings.append(
            Finding(
                RL_001.id,
                f"{rule.name}: all {len(burst)} requests passed; request {rule.limit + 1} should have got "
                f"429 (limit {rule.limit} per {rule.window}s): the service enforces no limit, or one of at "
                f"least {len(burst)}{f'; it advertises {advertised}' if advertised else ''}",
                {**summary, "passed": len(burst), **({"advertised": advertised} if advertised else {})},
            )
        )
        return findings
    if passed != rule.limit:
        off = "too strict" if passed < rule.limit else "too loose"
        findings.append(
            Finding(
                RL_001.id,
                f"{rule.name}: {passed} request(s) passed before the first 429; expected exactly "
                f"{rule.limit} ({off} by {abs(passed - rule.limit)})",
                {**summary, "passed": passed},
            )
        )
    for i, (_, x) in enumerate(burst[passed + 1 :], start=passed + 2):
        if x.status_code != 429 and x.status_code is not None:
            findings.append(
                Finding(
                    RL_001.id,
                    f"{rule.name}: request {i} answered {x.status_code} after request "
                    f"{passed + 1} got 429 in the same window",
                    {**summary, "request": i},
                )
            )
    return findings


# -- RL-002 -----------------------------------------------------------------
def check_retry_after(
    rule: RateLimitRule, burst: Sequence[Observation], *, body_field: str = "retry_after"
) -> list[Finding]:
    """RL-002 on every 429 of the burst. The body comparison is made only
    when the body is JSON and has a numeric ``body_field`` (RL-003 owns the body)."""
    throttled = _throttled(burst)
    if not throttled:
        return [_no_429(RL_002.id, rule, len(burst), "whose Retry-After could be checked")]
    findings: list[Finding] = []
    for number, at, x in throttled:
        parsed, problem = parse_retry_after(x, at)
        if parsed is None:
            findings.append(
                Finding(
                    RL_002.id, f"{rule.name}: 429 to request {number} {problem}", _evidence(rule, number, x)
                )
            )
            continue
        shown = excerpt(_headers(x, "retry-after")[0], 60)
        if parsed.problem:
            findings.append(
                Finding(
                    RL_002.id,
                    f"{rule.name}: 429 to request {number}: Retry-After {shown!r} {parsed.problem}",
                    _evidence(rule, number, x),
                )
            )
        if parsed.seconds > rule.window + (CLOCK_TOLERANCE if parsed.form == "http-date" else 0):
            findings.append(
                Finding(
                    RL_002.id,
                    f"{rule.name}: 429 to request {number}: Retry-After {shown!r} asks for "
                    f"{parsed.seconds:.0f}s, longer than the {rule.window}s window",
                    _evidence(rule, number, x, retry_after=parsed.seconds),
                )
            )
        if parsed.seconds < -CLOCK_TOLERANCE:
            findings.append(
                Finding(
                    RL_002.id,
                    f"{rule.name}: 429 to request {number}: Retry-After {shown!r} lies "
                    f"{-parsed.seconds:.0f}s in the past",
                    _evidence(rule, number, x),
                )
            )
        body_value = _body_number(x, body_field)
        if body_value is not None:
            slack = 0.0 if parsed.form == "delay-seconds" else CLOCK_TOLERANCE
            if abs(body_value - parsed.seconds) > slack:
                findings.append(
                    Finding(
                        RL_002.id,
                        f"{rule.name}: 429 to request {number}: body {body_field}={body_value:g} "
                        f"but Retry-After {shown!r} means {parsed.seconds:.0f}s",
                        _evidence(rule, number, x, body=body_value),
                    )
                )
    return findings


def _body_json(x: HttpExchange) -> Any:
    try:
        return json.loads(x.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _body_number(x: HttpExchange, body_field: str) -> float | None:
    if not body_field:
        return None
    body = _body_json(x)
    if not isinstance(body, dict):
        return None
    value = get_field(body, body_field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# -- RL-003 -----------------------------------------------------------------
def _is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def check_error_body(
    rule: RateLimitRule, burst: Sequence[Observation], schema: Mapping[str, Any]
) -> list[Finding]:
    """RL-003 on every 429 of the burst."""
    throttled = _throttled(burst)
    if not throttled:
        return [_no_429(RL_003.id, rule, len(burst), "body to check")]
    validator = jsonschema.Draft202012Validator(schema)
    findings: list[Finding] = []
    for number, _, x in throttled:
        content_type = x.response_header("content-type") or ""
        body_text = x.body.decode("utf-8", errors="replace")
        evidence = _evidence(rule, number, x, content_type=content_type, body=excerpt(body_text, 120))
        if not _is_json_media_type(content_type):
            findings.append(
                Finding(
                    RL_003.id,
                    f"{rule.name}: 429 to request {number} has Content-Type "
                    f"{content_type or '(none)'!r}, not JSON",
                    evidence,
                )
            )
        body = _body_json(x)
        if body is None and x.body.strip() != b"null":
            findings.append(
                Finding(
                    RL_003.id,
                    f"{rule.name}: 429 to request {number}: body is not JSON ({excerpt(body_text, 60)!r})",
                    evidence,
                )
            )
            continue
        for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
            where = "/".join(map(str, error.absolute_path)) or "(body)"
            findings.append(
                Finding(
                    RL_003.id,
                    f"{rule.name}: 429 to request {number}: {where}: {excerpt(error.message, 120)}",
                    evidence,
                )
            )
    return findings


# -- RL-004 -----------------------------------------------------------------
_CACHE_DIRECTIVE = re.compile(r'\s*([^=,\s]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,]*))?\s*(?:,|$)')


def _cache_directives(x: HttpExchange) -> dict[str, str]:
    """Cache-Control directives (RFC 9111 §5.2): name → argument ("" without one), first wins."""
    directives: dict[str, str] = {}
    for value in _headers(x, "cache-control"):
        for match in _CACHE_DIRECTIVE.finditer(value):
            argument = (match.group(2) or "").strip()
            if argument.startswith('"'):
                argument = re.sub(r"\\(.)", r"\1", argument[1:-1])
            directives.setdefault(match.group(1).lower(), argument)
    return directives


def cacheable_because(x: HttpExchange, received_at: float) -> str:
    """Why a cache could store and reuse this response, or ``""`` when it could not.

    The decision (RFC 9111 §3, §4.2.1): ``no-store``, ``no-cache`` or
    ``private`` keep it out of shared caches or force revalidation, so it is
    not cacheable. Otherwise only explicit freshness makes a 429 storable —
    ``public``, ``max-age``/``s-maxage`` > 0, or an ``Expires`` later than
    the response's Date — because 429 is not heuristically cacheable
    (RFC 9110 §15.1). ``max-age=0`` and an invalid ``Expires`` (which means
    "already expired", RFC 9111 §5.3) are fine.
    """
    directives = _cache_directives(x)
    if "no-store" in directives or any(directives.get(d) == "" for d in ("no-cache", "private")):
        return ""  # the qualified forms (private="Set-Cookie") cover only the fields they name
    reasons = []
    if "public" in directives:
        reasons.append("Cache-Control: public")
    for name in ("max-age", "s-maxage"):
        if name in directives:
            value = directives[name]
            if not value.isdigit():
                continue
            if int(value) > 0:
                reasons.append(f"Cache-Control: {name}={value}")
    for value in _headers(x, "expires"):
        parsed, _ = parse_http_date(value)
        if parsed is not None and parsed.timestamp() > _response_time(x, received_at):
            reasons.append(f"Expires: {excerpt(value, 40)}")
    return ", ".join(reasons)


def check_not_cacheable(rule: RateLimitRule, burst: Sequence[Observation]) -> list[Finding]:
    """RL-004 on every 429 of the burst."""
    throttled = _throttled(burst)
    if not throttled:
        return [_no_429(RL_004.id, rule, len(burst), "whose caching could be checked")]
    findings = []
    for number, at, x in throttled:
        because = cacheable_because(x, at)
        if because:
            findings.append(
                Finding(
                    RL_004.id,
                    f"{rule.name}: 429 to request {number} is cacheable ({because}); a cache "
                    "would serve the refusal to later requests",
                    _evidence(rule, number, x),
                )
            )
    return findings


# -- RL-005 -----------------------------------------------------------------
def check_recovery(
    rule: RateLimitRule, burst: Sequence[Observation], recovery: Sequence[Observation]
) -> list[Finding]:
    """RL-005: the first client's requests sent once Retry-After (or, without
    a valid one, the window) has elapsed since its first 429 succeed, with
    :data:`CLOCK_TOLERANCE` seconds of slack for whole-second rounding."""
    throttled = _throttled(burst)
    if not throttled:
        return [_no_429(RL_005.id, rule, len(burst), "to wait out")]
    if not recovery:
        raise HarnessError(f"{rule.name}: the probe sent no request after the 429 to test recovery")
    first_429_at = throttled[0][1]
    wait = _wait_seconds(rule, burst[throttled[0][0] - 1])
    retry_at = first_429_at + wait
    findings: list[Finding] = []
    evidence = {"rule": rule.name, "wait_seconds": round(wait, 3), "attempts": describe_burst(recovery)}
    for at, x in recovery:
        sent_after = at - x.elapsed_seconds - first_429_at
        if x.status_code == 429 and at - x.elapsed_seconds > retry_at + CLOCK_TOLERANCE:
            findings.append(
                Finding(
                    RL_005.id,
                    f"{rule.name}: a request sent {sent_after:.1f}s after the first 429 still got "
                    f"429, although the client was told to wait {wait:.0f}s",
                    evidence,
                )
            )
            break
    recovered = next(((at, x) for at, x in recovery if _is_ok(rule, x)), None)
    if recovered is None:
        last_at, last = recovery[-1]
        findings.append(
            Finding(
                RL_005.id,
                f"{rule.name}: still not served {last_at - first_429_at:.1f}s after the first 429 "
                f"({len(recovery)} attempt(s), last answered {last.status_code}); the limit does not reset "
                f"within the {rule.window}s window",
                evidence,
            )
        )
    others = [x.status_code for _, x in recovery if x.status_code != 429 and not _is_ok(rule, x)]
    if others:
        findings.append(
            Finding(
                RL_005.id,
                f"{rule.name}: recovery attempts answered {others}, neither success nor 429",
                evidence,
            )
        )
    return findings


# -- RL-006 -----------------------------------------------------------------
def check_second_client(
    rule: RateLimitRule, burst: Sequence[Observation], second: Observation | None, *, key: str
) -> list[Finding]:
    """RL-006: ``second`` was sent by another client key (``key`` says how it
    differs) right after the first client's burst drew its 429s."""
    throttled = _throttled(burst)
    if not throttled:
        return [_no_429(RL_006.id, rule, len(burst), "from which a second client could be kept apart")]
    if second is None:
        raise HarnessError(f"{rule.name}: the probe sent no second-client request")
    _, x = second
    evidence = {"rule": rule.name, "client_key": key, "status_code": x.status_code}
    if x.status_code == 429:
        return [
            Finding(
                RL_006.id,
                f"{rule.name}: a second client ({key}) got 429 right after the first client was "
                "throttled; the limit is shared across clients",
                evidence,
            )
        ]
    if not _is_ok(rule, x):
        shown = x.status_code if x.status_code is not None else f"no response ({excerpt(x.error, 80)})"
        return [
            Finding(
                RL_006.id,
                f"{rule.name}: the second client ({key}) got {shown}, expected "
                f"{'/'.join(map(str, rule.endpoint.expect_status))}",
                evidence,
            )
        ]
    return []


# -- RL-007 -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Expectation:
    """What happened in the burst, to judge what the fields said."""

    passed: int | None  # requests before the first 429; None: no 429
    total_ok: int  # successes before the first 429 (all of them when none came)


def _expected_remaining(expect: _Expectation, index: int, x: HttpExchange) -> tuple[str, int] | None:
    """("==" or ">=", n): what remaining quota response ``index`` (0-based) should report."""
    if x.status_code == 429:
        return "==", 0
    if expect.passed is not None and index < expect.passed:
        return "==", expect.passed - index - 1
    if expect.passed is None:
        return ">=", expect.total_ok - index - 1
    return None


def _integer(text: str) -> int | None:
    head = text.split(",", 1)[0].split(";", 1)[0].strip()
    return int(head) if head.isdigit() else None


class _FieldReport:
    """Collects one rule's disagreements; one finding per field and kind of
    problem (the same message but for its numbers), with a count."""

    def __init__(self, rule: RateLimitRule) -> None:
        self.rule = rule
        self.problems: dict[tuple[str, str], list[str]] = {}

    def add(self, field_name: str, problem: str) -> None:
        kind = re.sub(r"\d+", "N", problem)
        self.problems.setdefault((field_name, kind), []).append(problem)

    def findings(self) -> list[Finding]:
        out = []
        for (name, _), problems in self.problems.items():
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            out.append(
                Finding(
                    RL_007.id,
                    f"{self.rule.name}: {name}: {problems[0]}{more}",
                    {"rule": self.rule.name, "field": name, "problems": problems[:5]},
                )
            )
        return out


def _check_remaining(
    report: _FieldReport, name: str, expect: _Expectation, index: int, x: HttpExchange, value: int
) -> None:
    wanted = _expected_remaining(expect, index, x)
    if wanted is None:
        return
    op, n = wanted
    if (op == "==" and value != n) or (op == ">=" and value < n):
        report.add(
            name,
            f"request {index + 1} ({x.status_code}) said {value} left; "
            f"{'expected' if op == '==' else 'but at least'} {n}",
        )


def _check_reset(
    report: _FieldReport,
    rule: RateLimitRule,
    name: str,
    observation: Observation,
    index: int,
    seconds_until: float,
) -> None:
    at, x = observation
    if not -CLOCK_TOLERANCE <= seconds_until <= rule.window + CLOCK_TOLERANCE:
        report.add(
            name,
            f"request {index + 1} says the quota resets in {seconds_until:.0f}s, outside the "
            f"{rule.window}s window",
        )
    if x.status_code == 429:
        parsed, _ = parse_retry_after(x, at)
        if parsed is not None and parsed.seconds < seconds_until - CLOCK_TOLERANCE:
            report.add(
                name,
                f"request {index + 1}: Retry-After ({parsed.seconds:.0f}s) is earlier than the "
                f"reset ({seconds_until:.0f}s)",
            )


def _legacy_fields(
    report: _FieldReport, rule: RateLimitRule, burst: Sequence[Observation], expect: _Expectation, prefix: str
) -> None:
    """``X-RateLimit-*`` (reset: epoch or delay seconds) or the pre-08 drafts'
    ``RateLimit-Limit/Remaining/Reset`` (reset: delay seconds)."""
    limits: set[int] = set()
    for index, (at, x) in enumerate(burst):
        for suffix in ("Limit", "Remaining", "Reset"):
            name = prefix + suffix
            values = _headers(x, name)
            if not values:
                continue
            value = _integer(values[0])
            if value is None:
                report.add(
                    name, f"request {index + 1}: {excerpt(values[0], 40)!r} is not a non-negative integer"
                )
                continue
            if suffix == "Limit":
                limits.add(value)
                if expect.passed is not None and value != expect.passed:
                    report.add(name, f"says {value} but the service throttled after {expect.passed} requests")
            elif suffix == "Remaining":
                _check_remaining(report, name, expect, index, x, value)
            elif value >= _EPOCH_THRESHOLD and prefix.startswith("X-"):
                _check_reset(report, rule, name, (at, x), index, value - at)
            elif value >= _EPOCH_THRESHOLD:
                report.add(
                    name,
                    f"request {index + 1}: {value} looks like an epoch time; this field is delay-seconds",
                )
            else:
                _check_reset(report, rule, name, (at, x), index, float(value))
    if len(limits) > 1:
        report.add(prefix + "Limit", f"changed during the burst: {sorted(limits)}")


@dataclass(frozen=True, slots=True)
class _Policy:
    name: str
    quota: int
    window: int | None


def _sf_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _parse_policies(text: str) -> tuple[list[_Policy], str]:
    try:
        members = parse_list(text)
    except StructuredFieldError as exc:
        return [], f"is not a Structured Field List: {exc}"
    if not members:
        return [], "is empty (it must be a non-empty List)"
    policies = []
    for member in members:
        if isinstance(member, InnerList):
            return [], "contains an Inner List; members are Items"
        quota = _sf_int(member.params.get("q"))
        if quota is None and _sf_int(member.value) is not None and "q" not in member.params:
            quota = _sf_int(member.value)  # draft-07 and earlier: the item is the quota
        if quota is None:
            return [], f"policy {str(member.value)!r} has no non-negative integer q parameter"
        window = member.params.get("w")
        if window is not None and (_sf_int(window) is None or window == 0):
            return [], f"policy {str(member.value)!r} has w={window!r}; it must be a positive integer"
        policies.append(_Policy(str(member.value), quota, _sf_int(window)))
    return policies, ""


def _policy_field(
    report: _FieldReport, rule: RateLimitRule, burst: Sequence[Observation], expect: _Expectation
) -> str | None:
    """RateLimit-Policy; returns the name of the policy that matches the observed limit."""
    name = "RateLimit-Policy"
    seen = {", ".join(_headers(x, name)) for _, x in burst if _headers(x, name)}
    if not seen:
        return None
    if len(seen) > 1:
        report.add(
            name, f"changed during the burst ({len(seen)} different values); it SHOULD stay consistent"
        )
    matched = None
    for text in sorted(seen):
        policies, problem = _parse_policies(text)
        if problem:
            report.add(name, f"{excerpt(text, 80)!r} {problem}")
            continue
        if expect.passed is None:
            continue
        fitting = [p for p in policies if p.quota == expect.passed]
        if not fitting:
            quotas = ", ".join(f"{p.name} q={p.quota}" for p in policies)
            report.add(name, f"no policy has q={expect.passed}, the limit the service enforced ({quotas})")
            continue
        matched = fitting[0].name
        if fitting[0].window is not None and fitting[0].window != rule.window:
            report.add(
                name, f"policy {matched!r} says w={fitting[0].window}; the rule's window is {rule.window}s"
            )
    return matched


def _service_limit(text: str, policy: str | None) -> tuple[tuple[int, int | None] | None, str]:
    """(remaining, reset seconds) from a RateLimit field: a draft-08+ List of
    service-limit items, or the draft-07 Dictionary ``limit=, remaining=, reset=``."""
    try:
        members = parse_list(text)
    except StructuredFieldError as list_error:
        try:
            legacy = parse_dictionary(text)
        except StructuredFieldError:
            return None, f"is not a Structured Field List: {list_error}"
        remaining_item = legacy.get("remaining")
        reset_item = legacy.get("reset")
        remaining = _sf_int(remaining_item.value) if isinstance(remaining_item, Item) else None
        if remaining is None:
            return None, "(a draft-07 Dictionary) has no non-negative integer remaining"
        return (remaining, _sf_int(reset_item.value) if isinstance(reset_item, Item) else None), ""
    limits: list[tuple[str, int, object]] = []
    for member in members:
        if isinstance(member, InnerList):
            return None, "contains an Inner List; members are Items"
        remaining = _sf_int(member.params.get("r"))
        if remaining is None:
            return None, f"item {str(member.value)!r} has no non-negative integer r parameter"
        limits.append((str(member.value), remaining, member.params.get("t")))
    if not limits:
        return None, "is empty"
    chosen = next((lim for lim in limits if lim[0] == policy), min(limits, key=lambda lim: lim[1]))
    reset = chosen[2]
    if reset is not None and _sf_int(reset) is None:
        return None, f"item {chosen[0]!r} has t={reset!r}; it must be a non-negative integer"
    return (chosen[1], _sf_int(reset)), ""


def _ratelimit_field(
    report: _FieldReport,
    rule: RateLimitRule,
    burst: Sequence[Observation],
    expect: _Expectation,
    policy: str | None,
) -> None:
    name = "RateLimit"
    for index, (at, x) in enumerate(burst):
        values = _headers(x, name)
        if not values:
            continue
        text = ", ".join(values)
        parsed, problem = _service_limit(text, policy)
        if parsed is None:
            report.add(name, f"request {index + 1}: {excerpt(text, 80)!r} {problem}")
            continue
        remaining, reset = parsed
        _check_remaining(report, name, expect, index, x, remaining)
        if reset is not None:
            _check_reset(report, rule, name, (at, x), index, float(reset))


def check_limit_headers(rule: RateLimitRule, burst: Sequence[Observation]) -> list[Finding]:
    """RL-007: whichever of the rate-limit fields the service sends must parse
    and agree with the burst — the limit it enforced, the quota left after each
    request (0 on a 429), a reset within the window and not after Retry-After.
    Fields it does not send are not required."""
    passed = _passed_before_429(burst)
    total_ok = passed if passed is not None else sum(1 for _, x in burst if _is_ok(rule, x))
    expect = _Expectation(passed, total_ok)
    report = _FieldReport(rule)
    _legacy_fields(report, rule, burst, expect, "X-RateLimit-")
    _legacy_fields(report, rule, burst, expect, "RateLimit-")
    policy = _policy_field(report, rule, burst, expect)
    _ratelimit_field(report, rule, burst, expect, policy)
    return report.findings()


def limit_fields_seen(burst: Iterable[Observation]) -> list[str]:
    """Names of the rate-limit fields present in any response (for the report's notes)."""
    names = (
        "RateLimit",
        "RateLimit-Policy",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    )
    return [n for n in names if any(_headers(x, n) for _, x in burst)]


# -- RL-008 -----------------------------------------------------------------
def _selector(metric: RateLimitMetric) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(metric.labels.items()))
    return f"{metric.name}{{{labels}}}"


def check_429_counter(
    throttled: Mapping[str, Sequence[HttpExchange]],
    before: float | None,
    after: float | None,
    metric: RateLimitMetric,
) -> list[Finding]:
    """RL-008: ``throttled`` maps each rule to every 429 the probe received
    (bursts, second clients, recovery polls); ``before``/``after`` are the
    metric's totals (None: no sample of that name was exposed)."""
    findings = [
        Finding(
            RL_008.id,
            f"{rule}: the probe drew no 429 from this rule, so the counter cannot be shown to "
            "count it (RL-001 reports the limit)",
            {"rule": rule},
        )
        for rule, xs in throttled.items()
        if not xs
    ]
    sent = sum(len(xs) for xs in throttled.values())
    selector = _selector(metric)
    if after is None:
        findings.append(
            Finding(
                RL_008.id,
                f"{metric.name} is not exposed after {sent} 429 response(s)",
                {"metric": selector, "sent": sent},
            )
        )
        return findings
    grew = after - (before or 0.0)
    if sent and not math.isclose(grew, sent):
        findings.append(
            Finding(
                RL_008.id,
                f"{selector} grew by {grew:g} while the service sent {sent} 429 response(s)",
                {"metric": selector, "before": before, "after": after, "sent": sent},
            )
        )
    return findings


# -- RL-009 -----------------------------------------------------------------
def check_429_log_records(
    parsed: Sequence[ParsedLogLine],
    throttled: Mapping[str, Sequence[HttpExchange]],
    contract: LogContract,
    correlation_header: str,
) -> tuple[list[Finding], dict[str, int]]:
    """RL-009: one request_completed record per 429, found by correlation id.

    Also returns what was examined: the ``429s`` looked up and the
    ``log_records`` (request_completed records) found for them."""
    findings = [
        Finding(
            RL_009.id,
            f"{rule}: the probe drew no 429 from this rule, so its logging cannot be checked "
            "(RL-001 reports the limit)",
            {"rule": rule},
        )
        for rule, xs in throttled.items()
        if not xs
    ]
    completed: dict[str, list[Mapping[str, Any]]] = {}
    for p in parsed:
        record = p.record
        if record is not None and record.get("message") == contract.request_completed_message:
            cid = record.get("correlation_id")
            if cid is not None:
                completed.setdefault(str(cid), []).append(record)
    examined = {"429s": 0, "log_records": 0}
    for rule, xs in throttled.items():
        for x in xs:
            cid = correlation_id(x, correlation_header)
            evidence = {"rule": rule, "correlation_id": cid, "method": x.method, "path": x.path}
            records = completed.get(cid or "", []) if cid else []
            examined["429s"] += 1
            examined["log_records"] += len(records)
            if not records:
                findings.append(
                    Finding(
                        RL_009.id,
                        f"{rule}: no {contract.request_completed_message} record for "
                        f"the 429 to {x.method} {x.path} ({correlation_header}: {cid})",
                        evidence,
                    )
                )
                continue
            if len(records) > 1:
                findings.append(
                    Finding(
                        RL_009.id,
                        f"{rule}: {len(records)} {contract.request_completed_message} "
                        f"records for one 429 ({correlation_header}: {cid})",
                        evidence,
                    )
                )
            statuses = {str(r.get("status_code")) for r in records}
            if statuses != {"429"}:
                findings.append(
                    Finding(
                        RL_009.id,
                        f"{rule}: the record for the 429 ({correlation_header}: {cid}) "
                        f"says status_code {sorted(statuses)}",
                        evidence,
                    )
                )
    return findings, examined


# -- RL-010 -----------------------------------------------------------------
def _strings(value: Any, path: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path or "(value)", value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


def _pii_problem(text: str, sensitive: Mapping[str, str]) -> str:
    for what, secret in sensitive.items():
        if secret and secret in text:
            return f"contains {what}"
    if mask_text(text) != text:
        return f"looks like PII or a credential ({mask_text(excerpt(text, 80))!r})"
    return ""


def check_429_telemetry_pii(
    parsed: Sequence[ParsedLogLine],
    throttled: Mapping[str, Sequence[HttpExchange]],
    samples: Sequence[Sample],
    correlation_header: str,
    sensitive: Mapping[str, str],
) -> tuple[list[Finding], dict[str, int]]:
    """RL-010: every string in the log records that carry a 429's correlation
    id, and every label value of the 429 counter's samples, is free of what
    :func:`conformance._mask.mask_text` masks (emails, cards, SSNs, phones,
    JWTs, bearer/API keys) and of the ``sensitive`` values the harness sent
    (description → value: the client key, credentials in the request body).

    Also returns what was watched: the ``log_records`` carrying a 429's
    correlation id and the counter's ``series``; both 0 means nothing was."""
    findings = [
        Finding(
            RL_010.id,
            f"{rule}: the probe drew no 429 from this rule, so its telemetry cannot be shown "
            "free of PII (RL-001 reports the limit)",
            {"rule": rule},
        )
        for rule, xs in throttled.items()
        if not xs
    ]
    ids = {
        cid: rule
        for rule, xs in throttled.items()
        for x in xs
        if (cid := correlation_id(x, correlation_header))
    }
    examined = {"log_records": 0, "series": len(samples)}
    for p in parsed:
        record, raw = p.record, p.raw_record
        if record is None or raw is None or str(record.get("correlation_id")) not in ids:
            continue
        examined["log_records"] += 1
        for path, text in _strings(raw):
            problem = _pii_problem(text, sensitive)
            if problem:
                rule = ids[str(record.get("correlation_id"))]
                findings.append(
                    Finding(
                        RL_010.id,
                        f"{rule}: log {p.line.where}, field {path} {problem}",
                        {"rule": rule, "line": p.line.number, "field": path},
                    )
                )
    for sample in samples:
        for label, text in sample.labels.items():
            problem = _pii_problem(text, sensitive)
            if problem:
                findings.append(
                    Finding(
                        RL_010.id,
                        f"{sample.name} label {label} {problem}",
                        {"metric": sample.name, "label": label},
                    )
                )
    return findings, examined
