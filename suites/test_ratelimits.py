"""RL-*: rate-limit behaviour (see conformance.checks.ratelimits).

One probe per run drives every rule of the profile's ``rate_limits``
section (conformance.collect._ratelimit_probe); each test checks one
requirement on what it observed, and records what its verdict rests on
(``verdict.examined``): rules probed, requests sent, 429s received, log
records and series watched. A rule that drew no 429 is a finding of the
429-dependent requirements (RL-001 names the cause), not an error.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from conformance._exceptions import HarnessError, NoEvidence
from conformance._plan import ProbeContext, implements
from conformance._profile import schema_path
from conformance._sections import rate_limits as section_module
from conformance._sections.rate_limits import RateLimitSection
from conformance._session import ConformanceSession
from conformance.checks import ratelimits as rl
from conformance.checks.logs import ParsedLogLine, parse_log_lines
from conformance.collect._ratelimit_probe import RateLimitProbe, run_rate_limit_probe
from conformance.plugin import Verdict


def _section(session: ConformanceSession) -> RateLimitSection:
    section: RateLimitSection = session.profile.section(section_module.KEY)
    return section


@dataclass(frozen=True)
class _Probed:
    probe: RateLimitProbe
    #: 429s that other probes' clients received while this probe counted its own.
    others_throttled: Counter[str]


@pytest.fixture(scope="module")
def probed(conformance_session: ConformanceSession) -> _Probed:
    result: _Probed = conformance_session.probe("rate-limits")
    return result


@pytest.fixture(scope="module")
def probe(probed: _Probed) -> RateLimitProbe:
    return probed.probe


@implements("rate-limits")
def _rate_limit_probe(s: ConformanceSession, _: ProbeContext) -> _Probed:
    """Every rule's bursts, then the 429 counter and the 429s' log records; the 429s
    other probes' clients received meanwhile are kept for RL-008."""
    started = time.monotonic()
    probe = _run_probe(s)
    ended = time.monotonic()
    others = Counter(p for t, p in list(s.throttled) if started <= t <= ended and not p.startswith("rl-"))
    return _Probed(probe, others)


def _run_probe(s: ConformanceSession) -> RateLimitProbe:
    section = _section(s)
    if not section.rules:
        raise NoEvidence(
            "the profile declares no rate-limit rules (rate_limits.rules); nothing to probe",
            hint="add rate_limits.rules (name, endpoint, limit, window), or list the RL ids under "
            "requirements.not_applicable with the reason",
        )
    s.require_running()
    return run_rate_limit_probe(
        section,
        client_for=s.client,
        service_url=s.stack.service_url,
        request_timeout=s.profile.request_timeout,
        scrape=s.scrape_or_gap,
        log_lines=s.log_lines,
        correlation_header=s.profile.correlation_header,
        client_header=s.profile.client_header,
        request_completed_message=s.profile.logs.request_completed_message,
    )


def _parsed(probe: RateLimitProbe, session: ConformanceSession) -> Sequence[ParsedLogLine]:
    return parse_log_lines(probe.log_lines, session.profile.logs)


_NO_RULES_HINT = "add rate_limits.rules, or list the RL ids under requirements.not_applicable"


def _examined_429s(verdict: Verdict, probe: RateLimitProbe) -> None:
    """The rules probed and the 429s their bursts drew (what RL-002 … RL-004 judge)."""
    verdict.examined(
        rules=len(probe.runs),
        **{"429s": sum(rl.count_429s(run.burst) for run in probe.runs)},
        none_because="no rate-limit rule was probed",
        hint=_NO_RULES_HINT,
    )


@pytest.mark.requirement("RL-001")
def test_limit_boundary(probe: RateLimitProbe, verdict: Verdict) -> None:
    verdict.note(
        probe_seconds=round(probe.seconds, 2),
        bursts={run.rule.name: rl.describe_burst(run.burst) for run in probe.runs},
        burst_seconds={run.rule.name: round(rl.burst_seconds(run.burst), 2) for run in probe.runs},
        **({"telemetry_timeouts": list(probe.timeouts)} if probe.timeouts else {}),
    )
    verdict.examined(rules=len(probe.runs), requests=sum(len(run.burst) for run in probe.runs))
    findings = [f for run in probe.runs for f in rl.check_limit_boundary(run.rule, run.burst)]
    verdict.check(findings, what=f"{len(probe.runs)} rule(s)")


@pytest.mark.requirement("RL-002")
def test_retry_after(
    probe: RateLimitProbe, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    field = _section(conformance_session).body_retry_after_field
    _examined_429s(verdict, probe)
    findings = [f for run in probe.runs for f in rl.check_retry_after(run.rule, run.burst, body_field=field)]
    verdict.check(findings, what="429 responses")


@pytest.mark.requirement("RL-003")
def test_error_body(probe: RateLimitProbe, verdict: Verdict, conformance_session: ConformanceSession) -> None:
    path = _section(conformance_session).error_schema or schema_path("rate-limit-error.schema.json")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    verdict.note(schema=str(path.name))
    _examined_429s(verdict, probe)
    findings = [f for run in probe.runs for f in rl.check_error_body(run.rule, run.burst, schema)]
    verdict.check(findings, what="429 bodies")


@pytest.mark.requirement("RL-004")
def test_not_cacheable(probe: RateLimitProbe, verdict: Verdict) -> None:
    _examined_429s(verdict, probe)
    findings = [f for run in probe.runs for f in rl.check_not_cacheable(run.rule, run.burst)]
    verdict.check(findings, what="429 responses")


@pytest.mark.requirement("RL-005")
def test_recovery(probe: RateLimitProbe, verdict: Verdict) -> None:
    verdict.note(recovery={run.rule.name: rl.describe_burst(run.recovery) for run in probe.runs})
    verdict.examined(rules=len(probe.runs), recovery_requests=sum(len(run.recovery) for run in probe.runs))
    findings = [f for run in probe.runs for f in rl.check_recovery(run.rule, run.burst, run.recovery)]
    verdict.check(findings, what="recovery after Retry-After")


@pytest.mark.requirement("RL-006")
def test_second_client(probe: RateLimitProbe, verdict: Verdict) -> None:
    verdict.examined(
        rules=len(probe.runs), second_client_requests=sum(run.second is not None for run in probe.runs)
    )
    findings = [
        f
        for run in probe.runs
        for f in rl.check_second_client(run.rule, run.burst, run.second, key=run.second_key)
    ]
    verdict.check(findings, what="second-client probes")


@pytest.mark.requirement("RL-007")
def test_limit_headers(probe: RateLimitProbe, verdict: Verdict) -> None:
    fields = {run.rule.name: rl.limit_fields_seen(run.burst) for run in probe.runs}
    verdict.note(fields=fields, responses=sum(len(run.burst) for run in probe.runs))
    # Fields are judged only when sent: with none sent there is nothing to judge.
    verdict.examined(
        rate_limit_fields=sum(len(names) for names in fields.values()),
        none_because=f"none of the {sum(len(run.burst) for run in probe.runs)} responses to the bursts "
        "carried a RateLimit, RateLimit-Policy or X-RateLimit-* field, so there is no field to judge",
        hint="RL-007 asks only of the fields a service sends: declare it in requirements.not_applicable "
        "if the service sends none",
    )
    findings = [f for run in probe.runs for f in rl.check_limit_headers(run.rule, run.burst)]
    verdict.check(findings, what="rate-limit header fields")


@pytest.mark.requirement("RL-008")
def test_429_counter(probed: _Probed, verdict: Verdict, conformance_session: ConformanceSession) -> None:
    probe = probed.probe
    metric = _section(conformance_session).metric
    if probed.others_throttled:
        # The run's other probes use their own client keys; a limiter that throttled them anyway
        # (RL-006) makes the counter's growth impossible to attribute to the probe's 429s.
        raise HarnessError(
            f"{sum(probed.others_throttled.values())} request(s) of other probes "
            f"({', '.join(sorted(probed.others_throttled))}) were answered 429 while the rate-limit "
            "probe counted its own, so the counter's growth cannot be attributed",
            hint="key the limiter by traffic.client_header (see RL-006), or run with --sequential",
        )
    gap = conformance_session.otlp_metrics_gap()
    if gap and probe.counter_after is None:
        # metrics.source: otlp and the exporter showed nothing: the counter was never seen, not absent.
        raise NoEvidence(gap, hint="see MET-001; metrics.push_timeout bounds the wait for a push")
    throttled = probe.throttled()
    verdict.note(
        before=probe.counter_before,
        after=probe.counter_after,
        sent={rule: len(xs) for rule, xs in throttled.items()},
    )
    # A rule without a 429 and a counter that is not exposed are findings, not missing evidence.
    verdict.examined(
        **{"429s": sum(len(xs) for xs in throttled.values())},
        counter_series=len(probe.samples),
        none_because="no rate-limit rule was probed",
        hint=_NO_RULES_HINT,
    )
    findings = rl.check_429_counter(throttled, probe.counter_before, probe.counter_after, metric)
    verdict.check(findings, what=metric.name)


@pytest.mark.requirement("RL-009")
def test_429_log_records(
    probe: RateLimitProbe, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    parsed = _parsed(probe, s)
    verdict.note(log_lines_read=len(parsed))
    findings, examined = rl.check_429_log_records(
        parsed, probe.throttled(), s.profile.logs, s.profile.correlation_header
    )
    # Each 429 without its record is a finding; records are looked up per 429.
    verdict.examined(**examined, none_because="no rate-limit rule was probed", hint=_NO_RULES_HINT)
    verdict.check(findings, what="429 log records")


@pytest.mark.requirement("RL-010")
def test_429_telemetry_has_no_pii(
    probe: RateLimitProbe, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    parsed = _parsed(probe, s)
    throttled = probe.throttled()
    received = sum(len(xs) for xs in throttled.values())
    verdict.note(
        sent_values_watched=sorted(probe.sensitive), log_lines_read=len(parsed), received_429s=received
    )
    findings, watched = rl.check_429_telemetry_pii(
        parsed, throttled, probe.samples, s.profile.correlation_header, probe.sensitive
    )
    # A rule that drew no 429 is a finding above; with 429s, something must have been watched.
    verdict.examined(
        **watched,
        none_because=f"none of the {received} 429(s) left a log record carrying its correlation id "
        f"({len(parsed)} log lines read) and {_section(s).metric.name} has no 429 series; no telemetry "
        "was watched for PII",
        hint="make the service log every request with its correlation id (see RL-009) and count 429s "
        "in rate_limits.metric (see RL-008), or declare RL-010 in requirements.not_applicable",
    )
    verdict.check(findings, what="429 log records and metric labels")
