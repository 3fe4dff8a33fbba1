"""RL-* checks on hand-made exchanges: each requirement passes on what the
seed's service does and fails, under its own id, on the defect it exists for."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.samples import Sample

from conformance import load_profile
from conformance._exceptions import HarnessError
from conformance._profile import Endpoint, LogContract, schema_path
from conformance._sections.rate_limits import RateLimitMetric, RateLimitRule, RateLimitSection
from conformance.checks import ratelimits as rl
from conformance.checks._structured_fields import (
    Item,
    StructuredFieldError,
    Token,
    parse_dictionary,
    parse_list,
)
from conformance.checks.logs import parse_log_lines
from conformance.collect._ratelimit_probe import matching_samples
from conformance.telemetry import HttpExchange, LogLine

REPO = Path(__file__).resolve().parents[2]
CASES = yaml.safe_load((REPO / "tests/data/ratelimit_cases.yaml").read_text())
#: Every response in these tests "arrives" from here on: 2025-01-15T10:30:00Z.
T0 = datetime(2025, 1, 15, 10, 30, tzinfo=UTC).timestamp()
DATE = "Wed, 15 Jan 2025 10:30:00 GMT"
CID = "X-Correlation-ID"
LOGIN = Endpoint(name="login", path="/auth/login", method="POST", expect_status=(200,))


def rule(limit: int = 3, window: int = 5) -> RateLimitRule:
    return RateLimitRule("auth", LOGIN, limit, window)


def exchange(
    status: int | None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    cid: str = "",
    elapsed: float = 0.01,
) -> HttpExchange:
    items = tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)
    if cid:
        items += ((CID, cid),)
    return HttpExchange(
        endpoint="login",
        method="POST",
        url="http://127.0.0.1/auth/login",
        path="/auth/login",
        request_headers=((CID, cid),) if cid else (),
        status_code=status,
        response_headers=items,
        body=body,
        elapsed_seconds=elapsed,
        error="" if status is not None else "ConnectError: refused",
    )


def seed_429(retry_after: Any = 4, **over: Any) -> tuple[dict[str, str], bytes]:
    """The seed's 429: Retry-After, JSON body with retry_after, no-store, X-RateLimit-*."""
    headers = {
        "Content-Type": "application/json",
        "Retry-After": str(retry_after),
        "Cache-Control": "no-store",
        "Date": DATE,
    }
    body: dict[str, Any] = {
        "error": "rate_limit_exceeded",
        "message": "Rate limit exceeded: 3 per 5 seconds",
        "retry_after": retry_after,
    }
    headers.update({k: v for k, v in over.items() if k[0].isupper()})
    body.update({k: v for k, v in over.items() if k[0].islower()})
    return {k: v for k, v in headers.items() if v is not None}, json.dumps(body).encode()


def burst(
    limit: int = 3,
    margin: int = 2,
    *,
    passes: int | None = None,
    ok_headers: Sequence[Mapping[str, str]] | None = None,
    throttled: tuple[dict[str, str], bytes] | None = None,
    step: float = 0.01,
) -> list[rl.Observation]:
    """``passes`` (default ``limit``) 200s, then 429s, ``limit + margin`` in all."""
    passes = limit if passes is None else passes
    headers_429, body_429 = throttled or seed_429()
    out: list[rl.Observation] = []
    for i in range(limit + margin):
        if i < passes:
            x = exchange(200, (ok_headers or [{}] * (limit + margin))[i], b"{}", cid=f"c{i}")
        else:
            x = exchange(429, headers_429, body_429, cid=f"c{i}")
        out.append((T0 + i * step, x))
    return out


def ids(findings: Sequence[Any]) -> set[str]:
    return {f.requirement_id for f in findings}


def messages(findings: Sequence[Any]) -> str:
    return "\n".join(f.message for f in findings)


class TestLimitBoundary:
    def test_exact_limit_passes(self) -> None:
        assert rl.check_limit_boundary(rule(), burst()) == []

    def test_too_strict_names_the_count(self) -> None:
        findings = rl.check_limit_boundary(rule(), burst(passes=2))
        assert ids(findings) == {"RL-001"}
        assert "2 request(s) passed before the first 429; expected exactly 3 (too strict by 1)" in messages(
            findings
        )

    def test_too_loose_names_the_count(self) -> None:
        findings = rl.check_limit_boundary(rule(), burst(passes=4))
        assert "4 request(s) passed" in messages(findings) and "too loose by 1" in messages(findings)

    def test_no_429_at_all(self) -> None:
        limit_headers = [{"X-RateLimit-Limit": "6"}] * 5
        findings = rl.check_limit_boundary(rule(), burst(passes=5, ok_headers=limit_headers))
        assert ids(findings) == {"RL-001"}
        assert "all 5 requests passed; request 4 should have got 429" in messages(findings)
        assert "it advertises X-RateLimit-Limit: 6" in messages(findings)

    def test_success_after_429_in_the_same_window(self) -> None:
        observations = burst()
        observations[4] = (observations[4][0], exchange(200))
        assert "request 5 answered 200 after request 4 got 429" in messages(
            rl.check_limit_boundary(rule(), observations)
        )

    def test_unexpected_status_and_no_response(self) -> None:
        observations = burst()
        observations[0] = (T0, exchange(500))
        observations[1] = (T0, exchange(None))
        text = messages(rl.check_limit_boundary(rule(), observations))
        assert "request 1 answered 500; expected 200 or 429" in text
        assert "request 2 got no response" in text

    def test_burst_longer_than_the_window_is_inconclusive(self) -> None:
        with pytest.raises(HarnessError, match="longer than the 5s window"):
            rl.check_limit_boundary(rule(), burst(step=2.0))

    def test_empty_burst_is_a_harness_error(self) -> None:
        with pytest.raises(HarnessError, match="sent no requests"):
            rl.check_limit_boundary(rule(), [])


class TestRetryAfter:
    @pytest.mark.parametrize("case", CASES["retry_after"], ids=[c["id"] for c in CASES["retry_after"]])
    def test_parse(self, case: dict[str, Any]) -> None:
        headers = {"Retry-After": case["value"], **({"Date": DATE} if case.get("date") else {})}
        # Arrival a little after the Date header: a date form must count from Date when there is one.
        arrival = T0 + (0.6 if case.get("date") else 0.0)
        parsed, problem = rl.parse_retry_after(exchange(429, headers), arrival)
        if "seconds" in case:
            assert parsed is not None, problem
            assert parsed.seconds == pytest.approx(case["seconds"])
            assert case.get("problem", "") in parsed.problem
            assert bool(parsed.problem) == ("problem" in case), parsed.problem
        else:
            assert parsed is None
            assert case["problem"] in problem

    def test_seed_429_passes(self) -> None:
        assert rl.check_retry_after(rule(), burst()) == []

    def test_missing(self) -> None:
        findings = rl.check_retry_after(rule(), burst(throttled=seed_429(**{"Retry-After": None})))
        assert ids(findings) == {"RL-002"}
        assert "429 to request 4 has no Retry-After" in messages(findings)

    def test_repeated_with_different_values(self) -> None:
        headers, body = seed_429()
        pairs = [*headers.items(), ("Retry-After", "9")]
        observations = [*burst(margin=0), (T0, exchange(429, pairs, body))]
        assert "different Retry-After values" in messages(rl.check_retry_after(rule(), observations))

    def test_longer_than_the_window(self) -> None:
        findings = rl.check_retry_after(rule(window=5), burst(throttled=seed_429(retry_after=60)))
        assert "asks for 60s, longer than the 5s window" in messages(findings)

    def test_date_in_the_past(self) -> None:
        throttled = seed_429(**{"Retry-After": "Wed, 15 Jan 2025 10:29:00 GMT"}, retry_after=None)
        assert "60s in the past" in messages(rl.check_retry_after(rule(), burst(throttled=throttled)))

    def test_valid_date_matching_the_body(self) -> None:
        throttled = seed_429(**{"Retry-After": "Wed, 15 Jan 2025 10:30:04 GMT"}, retry_after=4)
        assert rl.check_retry_after(rule(), burst(throttled=throttled)) == []

    def test_body_disagrees_with_the_header(self) -> None:
        findings = rl.check_retry_after(
            rule(), burst(throttled=seed_429(retry_after=4, **{"Retry-After": "2"}))
        )
        assert "body retry_after=4 but Retry-After '2' means 2s" in messages(findings)

    def test_body_comparison_can_be_switched_off(self) -> None:
        throttled = seed_429(retry_after=4, **{"Retry-After": "2"})
        assert rl.check_retry_after(rule(), burst(throttled=throttled), body_field="") == []

    def test_a_plain_text_body_is_not_this_requirements_business(self) -> None:
        headers, _ = seed_429()
        assert rl.check_retry_after(rule(), burst(throttled=(headers, b"Too many requests"))) == []

    def test_no_429(self) -> None:
        findings = rl.check_retry_after(rule(), burst(passes=5))
        assert ids(findings) == {"RL-002"} and "drew a 429" in messages(findings)


class TestErrorBody:
    schema: dict[str, Any] = json.loads(schema_path("rate-limit-error.schema.json").read_text())

    def test_seed_body_passes(self) -> None:
        assert rl.check_error_body(rule(), burst(), self.schema) == []

    def test_problem_json_is_json(self) -> None:
        throttled = seed_429(**{"Content-Type": "application/problem+json; charset=utf-8"})
        assert rl.check_error_body(rule(), burst(throttled=throttled), self.schema) == []

    def test_plain_text(self) -> None:
        headers, _ = seed_429(**{"Content-Type": "text/plain; charset=utf-8"})
        findings = rl.check_error_body(
            rule(), burst(throttled=(headers, b"Rate limit exceeded")), self.schema
        )
        assert ids(findings) == {"RL-003"}
        text = messages(findings)
        assert "Content-Type 'text/plain; charset=utf-8', not JSON" in text and "body is not JSON" in text

    def test_html_error_page(self) -> None:
        headers, _ = seed_429(**{"Content-Type": "text/html"})
        findings = rl.check_error_body(rule(), burst(throttled=(headers, b"<html>429</html>")), self.schema)
        assert "body is not JSON" in messages(findings)

    def test_body_off_schema(self) -> None:
        findings = rl.check_error_body(rule(), burst(throttled=seed_429(retry_after="soon")), self.schema)
        assert "retry_after: 'soon' is not of type 'integer'" in messages(findings)

    def test_profile_schema_replaces_the_seed_shape(self) -> None:
        problem = {"type": "object", "required": ["type", "title"]}
        findings = rl.check_error_body(rule(), burst(), problem)
        assert "'type' is a required property" in messages(findings)

    def test_no_429(self) -> None:
        assert ids(rl.check_error_body(rule(), burst(passes=5), self.schema)) == {"RL-003"}


class TestNotCacheable:
    @pytest.mark.parametrize("case", CASES["cacheability"], ids=[c["id"] for c in CASES["cacheability"]])
    def test_cacheability(self, case: dict[str, Any]) -> None:
        because = rl.cacheable_because(exchange(429, {"Date": DATE, **case["headers"]}), T0)
        assert bool(because) == case["cacheable"], because

    def test_seed_429_passes(self) -> None:
        assert rl.check_not_cacheable(rule(), burst()) == []

    def test_cacheable_429_fails(self) -> None:
        throttled = seed_429(**{"Cache-Control": "public, max-age=60"})
        findings = rl.check_not_cacheable(rule(), burst(throttled=throttled))
        assert ids(findings) == {"RL-004"}
        assert "is cacheable (Cache-Control: public, Cache-Control: max-age=60)" in messages(findings)

    def test_no_429(self) -> None:
        assert ids(rl.check_not_cacheable(rule(), burst(passes=5))) == {"RL-004"}


def recovery_attempts(*statuses: int, start: float, step: float = 0.25) -> list[rl.Observation]:
    return [(start + i * step, exchange(s, elapsed=0.01)) for i, s in enumerate(statuses)]


class TestRecovery:
    def test_first_request_after_retry_after_passes(self) -> None:
        observations = burst(throttled=seed_429(retry_after=4))
        first_429 = observations[3][0]
        assert rl.check_recovery(rule(), observations, recovery_attempts(200, start=first_429 + 4.1)) == []

    def test_rounding_slack_is_tolerated(self) -> None:
        observations = burst(throttled=seed_429(retry_after=4))
        attempts = recovery_attempts(429, 429, 200, start=observations[3][0] + 4.1, step=0.5)
        assert rl.check_recovery(rule(), observations, attempts) == []

    def test_still_throttled_well_after_retry_after(self) -> None:
        observations = burst(throttled=seed_429(retry_after=2))
        attempts = recovery_attempts(429, 429, 429, 429, 200, start=observations[3][0] + 2.1, step=1.0)
        findings = rl.check_recovery(rule(), observations, attempts)
        assert ids(findings) == {"RL-005"}
        assert "still got 429, although the client was told to wait 2s" in messages(findings)

    def test_never_resets(self) -> None:
        observations = burst(throttled=seed_429(retry_after=4))
        findings = rl.check_recovery(
            rule(), observations, recovery_attempts(429, 429, start=observations[3][0] + 4)
        )
        assert "the limit does not reset within the 5s window" in messages(findings)

    def test_without_retry_after_the_window_is_waited(self) -> None:
        observations = burst(throttled=seed_429(**{"Retry-After": None}))
        attempts = recovery_attempts(200, start=observations[3][0] + 5.05)
        assert rl.check_recovery(rule(window=5), observations, attempts) == []

    def test_other_statuses_are_reported(self) -> None:
        observations = burst()
        findings = rl.check_recovery(
            rule(), observations, recovery_attempts(503, 200, start=observations[3][0] + 4)
        )
        assert "answered [503], neither success nor 429" in messages(findings)

    def test_no_429(self) -> None:
        assert ids(rl.check_recovery(rule(), burst(passes=5), [])) == {"RL-005"}

    def test_no_attempt_is_a_harness_error(self) -> None:
        with pytest.raises(HarnessError, match="no request after the 429"):
            rl.check_recovery(rule(), burst(), [])


class TestSecondClient:
    def test_other_client_is_served(self) -> None:
        assert rl.check_second_client(rule(), burst(), (T0, exchange(200)), key="X-API-Key: b") == []

    def test_shared_limit(self) -> None:
        findings = rl.check_second_client(rule(), burst(), (T0, exchange(429)), key="X-API-Key: b")
        assert ids(findings) == {"RL-006"}
        assert "(X-API-Key: b) got 429" in messages(findings) and "shared across clients" in messages(
            findings
        )

    def test_other_failure(self) -> None:
        findings = rl.check_second_client(rule(), burst(), (T0, exchange(None)), key="k")
        assert "got no response" in messages(findings)

    def test_no_429(self) -> None:
        assert ids(rl.check_second_client(rule(), burst(passes=5), None, key="k")) == {"RL-006"}

    def test_missing_probe_is_a_harness_error(self) -> None:
        with pytest.raises(HarnessError):
            rl.check_second_client(rule(), burst(), None, key="k")


def slowapi_headers(limit: int = 3, margin: int = 2, reset: float = T0 + 5) -> list[dict[str, str]]:
    """X-RateLimit-* as the reference service sends them: remaining counts down, reset is an epoch."""
    return [
        {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - i - 1)),
            "X-RateLimit-Reset": str(int(reset)),
        }
        for i in range(limit + margin)
    ]


def with_headers(
    observations: list[rl.Observation], per_response: Sequence[Mapping[str, str]]
) -> list[rl.Observation]:
    out = []
    for (at, x), extra in zip(observations, per_response, strict=True):
        headers = dict(x.response_headers)
        headers.update(extra)
        out.append((at, exchange(x.status_code, {k: v for k, v in headers.items() if v is not None}, x.body)))
    return out


class TestLimitHeaders:
    def test_no_fields_is_fine(self) -> None:
        assert rl.check_limit_headers(rule(), burst()) == []

    def test_slowapi_fields_agree(self) -> None:
        assert rl.check_limit_headers(rule(), with_headers(burst(), slowapi_headers())) == []

    def test_limit_disagrees_with_what_happened(self) -> None:
        headers = slowapi_headers()
        for h in headers:
            h["X-RateLimit-Limit"] = "6"
        findings = rl.check_limit_headers(rule(), with_headers(burst(), headers))
        assert ids(findings) == {"RL-007"}
        assert "X-RateLimit-Limit: says 6 but the service throttled after 3 requests" in messages(findings)

    def test_remaining_off_by_one(self) -> None:
        headers = slowapi_headers()
        headers[1]["X-RateLimit-Remaining"] = "2"
        assert "request 2 (200) said 2 left; expected 1" in messages(
            rl.check_limit_headers(rule(), with_headers(burst(), headers))
        )

    def test_remaining_not_zero_on_a_429(self) -> None:
        headers = slowapi_headers()
        headers[3]["X-RateLimit-Remaining"] = "1"
        assert "request 4 (429) said 1 left; expected 0" in messages(
            rl.check_limit_headers(rule(), with_headers(burst(), headers))
        )

    def test_remaining_lower_than_what_passed_without_a_429(self) -> None:
        headers = [{"X-RateLimit-Remaining": "0"}] * 5
        findings = rl.check_limit_headers(rule(), with_headers(burst(passes=5), headers))
        assert "request 1 (200) said 0 left; but at least 4" in messages(findings)

    def test_reset_outside_the_window(self) -> None:
        findings = rl.check_limit_headers(rule(), with_headers(burst(), slowapi_headers(reset=T0 + 60)))
        assert "resets in 60s, outside the 5s window" in messages(findings)

    def test_retry_after_earlier_than_reset(self) -> None:
        observations = burst(throttled=seed_429(retry_after=1))
        findings = rl.check_limit_headers(rule(), with_headers(observations, slowapi_headers(reset=T0 + 5)))
        assert "Retry-After (1s) is earlier than the reset (5s)" in messages(findings)

    def test_not_an_integer(self) -> None:
        headers = slowapi_headers()
        headers[0]["X-RateLimit-Limit"] = "three"
        assert "'three' is not a non-negative integer" in messages(
            rl.check_limit_headers(rule(), with_headers(burst(), headers))
        )

    def test_old_draft_reset_must_be_delay_seconds(self) -> None:
        headers = [{"RateLimit-Reset": str(int(T0 + 5))}] * 5
        findings = rl.check_limit_headers(rule(), with_headers(burst(), headers))
        assert "RateLimit-Reset: request 1" in messages(findings) and "delay-seconds" in messages(findings)

    def test_draft_fields_agree(self) -> None:
        headers = [
            {"RateLimit-Policy": '"auth";q=3;w=5', "RateLimit": f'"auth";r={max(0, 2 - i)};t=4'}
            for i in range(5)
        ]
        assert rl.check_limit_headers(rule(), with_headers(burst(), headers)) == []

    def test_draft_07_forms_agree(self) -> None:
        headers = [
            {"RateLimit-Policy": "3;w=5", "RateLimit": f"limit=3, remaining={max(0, 2 - i)}, reset=4"}
            for i in range(5)
        ]
        assert rl.check_limit_headers(rule(), with_headers(burst(), headers)) == []

    def test_policy_quota_and_window_disagree(self) -> None:
        headers = [{"RateLimit-Policy": '"auth";q=10;w=60'}] * 5
        findings = rl.check_limit_headers(rule(), with_headers(burst(), headers))
        assert "no policy has q=3, the limit the service enforced (auth q=10)" in messages(findings)
        headers = [{"RateLimit-Policy": '"auth";q=3;w=60'}] * 5
        findings = rl.check_limit_headers(rule(), with_headers(burst(), headers))
        assert "policy 'auth' says w=60; the rule's window is 5s" in messages(findings)

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            ('"auth";w=5', "has no non-negative integer q parameter"),
            ('"auth";q=3;w=0', "w=0; it must be a positive integer"),
            ('"auth";q=3,', "is not a Structured Field List"),
            ("", "is empty"),
            ('("a" "b");q=3', "contains an Inner List"),
        ],
    )
    def test_malformed_policy(self, value: str, problem: str) -> None:
        findings = rl.check_limit_headers(rule(), with_headers(burst(), [{"RateLimit-Policy": value}] * 5))
        assert problem in messages(findings)

    def test_policy_that_changes(self) -> None:
        headers = [{"RateLimit-Policy": f'"auth";q=3;w={5 if i < 2 else 4}'} for i in range(5)]
        assert "changed during the burst" in messages(
            rl.check_limit_headers(rule(), with_headers(burst(), headers))
        )

    def test_ratelimit_field_disagrees(self) -> None:
        headers = [{"RateLimit": '"auth";r=2;t=9'}] * 5
        text = messages(rl.check_limit_headers(rule(), with_headers(burst(), headers)))
        assert "RateLimit: request 2 (200) said 2 left; expected 1" in text
        assert "resets in 9s, outside the 5s window" in text

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            ('"auth";t=3', "item 'auth' has no non-negative integer r parameter"),
            ('"auth";r=1;t=-1', "has t=-1; it must be a non-negative integer"),
            ('"auth";r=1,', "is not a Structured Field List"),
            ("limit=3, reset=4", "(a draft-07 Dictionary) has no non-negative integer remaining"),
            ("", "is empty"),
        ],
    )
    def test_ratelimit_field_malformed(self, value: str, problem: str) -> None:
        headers = [{"RateLimit": value}] * 5
        assert problem in messages(rl.check_limit_headers(rule(), with_headers(burst(), headers)))

    def test_fields_seen(self) -> None:
        assert rl.limit_fields_seen(with_headers(burst(), slowapi_headers())) == [
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ]


class TestStructuredFields:
    @pytest.mark.parametrize(
        "case",
        CASES["structured_fields"],
        ids=[f"{c['kind']}:{c['text']}" for c in CASES["structured_fields"]],
    )
    def test_parse(self, case: dict[str, Any]) -> None:
        parse = parse_list if case["kind"] == "list" else parse_dictionary
        if case["valid"]:
            parse(case["text"])
        else:
            with pytest.raises(StructuredFieldError):
                parse(case["text"])

    def test_values_and_parameters(self) -> None:
        [policy, daily] = parse_list('"burst";q=100;w=60, daily;q=1000;pk=:aGk=:;x')
        assert isinstance(policy, Item) and isinstance(daily, Item)
        assert policy.value == "burst" and not isinstance(policy.value, Token)
        assert dict(policy.params) == {"q": 100, "w": 60}
        assert isinstance(daily.value, Token) and dict(daily.params) == {"q": 1000, "pk": b"hi", "x": True}


def throttled_by_rule(*xs: HttpExchange, name: str = "auth") -> dict[str, list[HttpExchange]]:
    return {name: list(xs)}


METRIC = RateLimitMetric()


class TestCounter:
    def test_counts_every_429(self) -> None:
        assert rl.check_429_counter(throttled_by_rule(exchange(429), exchange(429)), 1.0, 3.0, METRIC) == []

    def test_missing_before_counts_as_zero(self) -> None:
        assert rl.check_429_counter(throttled_by_rule(exchange(429)), None, 1.0, METRIC) == []

    def test_undercount(self) -> None:
        findings = rl.check_429_counter(throttled_by_rule(exchange(429), exchange(429)), 0.0, 1.0, METRIC)
        assert ids(findings) == {"RL-008"}
        assert 'http_requests_total{status_code="429"} grew by 1 while the service sent 2' in messages(
            findings
        )

    def test_not_exposed(self) -> None:
        assert "is not exposed after 1 429" in messages(
            rl.check_429_counter(throttled_by_rule(exchange(429)), None, None, METRIC)
        )

    def test_rule_without_429(self) -> None:
        findings = rl.check_429_counter({"auth": [exchange(429)], "chat": []}, 0.0, 1.0, METRIC)
        assert messages(findings).startswith("chat: the probe drew no 429")

    def test_matching_samples(self) -> None:
        from prometheus_client.metrics_core import CounterMetricFamily

        family = CounterMetricFamily("http_requests", "", labels=["status_code", "endpoint"])
        family.add_metric(["429", "/a"], 2)
        family.add_metric(["200", "/a"], 7)
        family.add_metric(["429", "/b"], 1)
        samples = matching_samples([family], METRIC)
        assert samples is not None and sum(s.value for s in samples) == 3
        assert matching_samples([family], RateLimitMetric(name="rate_limit_hits_total")) is None


def log(*records: dict[str, Any]) -> list[Any]:
    lines = [LogLine(i, json.dumps(r).encode()) for i, r in enumerate(records, 1)]
    return parse_log_lines(lines, LogContract())


def completed(cid: str, status: int = 429, **extra: Any) -> dict[str, Any]:
    return {
        "message": "request_completed",
        "correlation_id": cid,
        "status_code": status,
        "level": "INFO",
        "path": "/auth/login",
        **extra,
    }


class TestLogRecords:
    def test_one_record_per_429(self) -> None:
        parsed = log(
            completed("a"), completed("b"), {"message": "rate_limit_exceeded", "correlation_id": "a"}
        )
        throttled = throttled_by_rule(exchange(429, cid="a"), exchange(429, cid="b"))
        assert rl.check_429_log_records(parsed, throttled, LogContract(), CID) == (
            [],
            {"429s": 2, "log_records": 2},
        )

    def test_the_sent_id_is_used_when_the_response_has_none(self) -> None:
        x = replace(exchange(429), request_headers=((CID, "sent-1"),))
        parsed = log(completed("sent-1"))
        assert rl.check_429_log_records(parsed, throttled_by_rule(x), LogContract(), CID)[0] == []

    def test_missing_duplicate_and_wrong_status(self) -> None:
        parsed = log(completed("b"), completed("b"), completed("c", status=200))
        throttled = throttled_by_rule(exchange(429, cid="a"), exchange(429, cid="b"), exchange(429, cid="c"))
        findings, examined = rl.check_429_log_records(parsed, throttled, LogContract(), CID)
        assert examined == {"429s": 3, "log_records": 3}  # none for a, two for b, one for c
        assert ids(findings) == {"RL-009"}
        text = messages(findings)
        assert "no request_completed record for the 429 to POST /auth/login (X-Correlation-ID: a)" in text
        assert "2 request_completed records for one 429" in text
        assert "says status_code ['200']" in text

    def test_rule_without_429(self) -> None:
        findings, examined = rl.check_429_log_records([], {"auth": []}, LogContract(), CID)
        assert ids(findings) == {"RL-009"} and examined == {"429s": 0, "log_records": 0}


class TestPii:
    sensitive = {"the X-API-Key value the harness sent (auth)": "obsconform-rl-auth-0123abcd"}

    def check_examined(
        self, parsed: Sequence[Any], samples: Sequence[Sample] = ()
    ) -> tuple[list[Any], dict[str, int]]:
        throttled = throttled_by_rule(exchange(429, cid="a"))
        return rl.check_429_telemetry_pii(parsed, throttled, samples, CID, self.sensitive)

    def check(self, parsed: Sequence[Any], samples: Sequence[Sample] = ()) -> list[Any]:
        return self.check_examined(parsed, samples)[0]

    def test_clean_records_and_labels(self) -> None:
        sample = Sample("http_requests_total", {"status_code": "429", "endpoint": "/auth/login"}, 2.0)
        assert self.check_examined(log(completed("a")), [sample]) == ([], {"log_records": 1, "series": 1})

    def test_nothing_watched_is_reported_as_nothing_examined(self) -> None:
        """A 429 whose record never showed up and no counter series: no finding, and 0 examined
        (the suite turns that into an error, never a pass)."""
        assert self.check_examined(log(completed("other"))) == ([], {"log_records": 0, "series": 0})

    def test_email_in_a_429_record(self) -> None:
        findings = self.check(log(completed("a", user={"email": "jane.doe@example.com"})))
        assert ids(findings) == {"RL-010"}
        assert "field user.email looks like PII" in messages(findings)
        assert "jane.doe@example.com" not in messages(findings)

    def test_client_key_in_a_429_record(self) -> None:
        findings = self.check(log(completed("a", client="key:obsconform-rl-auth-0123abcd")))
        assert "field client contains the X-API-Key value the harness sent (auth)" in messages(findings)

    def test_records_of_other_requests_are_not_this_requirements_business(self) -> None:
        findings, examined = self.check_examined(log(completed("other", email="jane.doe@example.com")))
        assert findings == [] and examined["log_records"] == 0

    def test_label_value(self) -> None:
        sample = Sample("http_requests_total", {"status_code": "429", "user": "jane.doe@example.com"}, 1.0)
        assert "http_requests_total label user looks like PII" in messages(self.check([], [sample]))

    def test_rule_without_429(self) -> None:
        findings, _ = rl.check_429_telemetry_pii([], {"auth": []}, [], CID, {})
        assert ids(findings) == {"RL-010"}


def test_count_429s() -> None:
    observations = [(T0, exchange(200)), (T0, exchange(429)), (T0, exchange(429)), (T0, exchange(503))]
    assert rl.count_429s(observations) == 2
    assert rl.count_429s([]) == 0


class TestSection:
    def test_reference_profile(self) -> None:
        profile = load_profile(REPO / "fixtures/reference_service/conformance.yaml")
        section: RateLimitSection = profile.section("rate_limits")
        assert [(r.name, r.endpoint.path, r.limit, r.window) for r in section.rules] == [
            ("auth", "/auth/login", 10, 5),
            ("chat", "/chat/completions", 30, 5),
            ("health", "/health", 60, 5),
            ("general", "/models", 100, 5),
        ]
        assert {r.window for r in section.rules} == {
            int(profile.service.env["REFSVC_RATE_LIMIT_WINDOW_SECONDS"])
        }
        assert section.client_key == "header" and section.error_schema is None

    @pytest.mark.parametrize(
        ("traffic", "key"), [("traffic: {client_header: X-API-Key}\n", "header"), ("", "source-address")]
    )
    def test_defaults(self, tmp_path: Path, traffic: str, key: str) -> None:
        path = tmp_path / "p.yaml"
        path.write_text(f"version: 1\nservice: {{name: x, command: [x]}}\n{traffic}")
        section: RateLimitSection = load_profile(path).section("rate_limits")
        assert section.rules == () and section.client_key == key and section.margin == 2
        assert section.metric == RateLimitMetric("http_requests_total", {"status_code": "429"})

    def test_custom_error_schema_and_per_rule_key(self, tmp_path: Path) -> None:
        (tmp_path / "problem.json").write_text('{"type": "object"}')
        path = tmp_path / "p.yaml"
        path.write_text(
            "version: 1\nservice: {name: x, command: [x]}\nendpoints: [{name: e, path: /e}]\n"
            "rate_limits: {error_schema: problem.json, client_key: forwarded-for,\n"
            "  rules: [{name: a, endpoint: e, limit: 2, window: 1, client_key: source-address}]}\n"
        )
        section: RateLimitSection = load_profile(path).section("rate_limits")
        assert section.error_schema == (tmp_path / "problem.json").resolve()
        assert section.rules[0].client_key == "source-address"
