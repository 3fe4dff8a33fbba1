"""HLT-*: health probes (see conformance.checks.health).

The running service's probes are asked once each (HLT-001, HLT-004). HLT-002
and HLT-003 need a second instance of the service in which a dependency
fails (``health.dependency_failure``); it is started once per run, asked,
and stopped before its fixture returns, and its answers serve HLT-002..004.
Each verdict rests on the probes it asked (``verdict.examined(probes=…)``);
a profile that names none leaves nothing to examine: ``error``.
"""

from __future__ import annotations

import pytest

from conformance._exceptions import HarnessError, NoEvidence
from conformance._plan import ProbeContext, implements
from conformance._sections.health import KEY, HealthSection
from conformance._session import ConformanceSession
from conformance.checks import health
from conformance.collect._health import DependencyFailureRun, fetch_probes, probe_with_dependency_failure
from conformance.plugin import Verdict
from conformance.telemetry import ProbeAnswer


@pytest.fixture(scope="module")
def section(conformance_session: ConformanceSession) -> HealthSection:
    result: HealthSection = conformance_session.profile.section(KEY)
    return result


@pytest.fixture(scope="module")
def answers(conformance_session: ConformanceSession) -> list[ProbeAnswer]:
    result: list[ProbeAnswer] = conformance_session.probe("health-probes")
    return result


@implements("health-probes")
def _health_probes(s: ConformanceSession, _: ProbeContext) -> list[ProbeAnswer]:
    s.require_running()
    section: HealthSection = s.profile.section(KEY)
    return fetch_probes(s.client("health"), section.probes)


@pytest.fixture(scope="session")
def dependency_failure(conformance_session: ConformanceSession) -> DependencyFailureRun:
    """The second instance's answers (a probe of the run's plan, tried once per run)."""
    result: DependencyFailureRun = conformance_session.probe("health-dependency")
    return result


@implements("health-dependency")
def _dependency_failure(s: ConformanceSession, _: ProbeContext) -> DependencyFailureRun:
    failure = s.profile.section(KEY).dependency_failure
    if failure is None:
        raise NoEvidence(
            "the profile has no health.dependency_failure, so no instance with a failing dependency "
            "can be probed; nothing to examine",
            hint="add health.dependency_failure (env, ready, live) or declare HLT-002/HLT-003 not_applicable",
        )
    return probe_with_dependency_failure(s.stack, s.profile, failure)


def _note_run(verdict: Verdict, run: DependencyFailureRun) -> None:
    verdict.note(
        second_instance=run.url,
        env_keys=list(run.env_keys),
        startup_seconds=round(run.startup_seconds, 3),
        logs=str(run.log_dir),
    )


def _note_answers(verdict: Verdict, answers: list[ProbeAnswer]) -> None:
    verdict.note(
        answers=[
            {
                "endpoint": a.probe.endpoint.name,
                "status": a.exchange.status_code,
                "expected_status": a.probe.status,
                "schema": a.probe.schema_file.name if a.probe.schema_file else None,
                "seconds": round(a.exchange.elapsed_seconds, 4),
                "dependency_failing": a.dependency_failing,
            }
            for a in answers
        ]
    )


@pytest.mark.requirement("HLT-001")
def test_probes_answer_their_documented_body(
    answers: list[ProbeAnswer], section: HealthSection, verdict: Verdict
) -> None:
    verdict.examined(
        probes=len(answers),
        none_because="the profile lists no health probes (health.probes); nothing to ask",
        hint="add health.probes (endpoint, status, schema) or declare HLT-001 not_applicable",
    )
    _note_answers(verdict, answers)
    verdict.check(health.check_probe_answers(answers), what=f"{len(answers)} health probe(s)")


@pytest.mark.requirement("HLT-002")
def test_readiness_fails_with_a_dependency(
    dependency_failure: DependencyFailureRun, verdict: Verdict
) -> None:
    run = dependency_failure
    _note_run(verdict, run)
    asked = [run.ready] if run.ready is not None else []
    verdict.examined(
        probes=len(asked),
        none_because="health.dependency_failure names no ready probe; nothing to ask the second instance",
        hint="add health.dependency_failure.ready or declare HLT-002 not_applicable",
    )
    _note_answers(verdict, asked)
    verdict.check([f for a in asked for f in health.check_ready_under_failure(a)], what="the readiness probe")


@pytest.mark.requirement("HLT-003")
def test_liveness_ignores_dependencies(dependency_failure: DependencyFailureRun, verdict: Verdict) -> None:
    run = dependency_failure
    _note_run(verdict, run)
    asked = [run.live] if run.live is not None else []
    verdict.examined(
        probes=len(asked),
        none_because="health.dependency_failure names no live probe; nothing to ask the second instance",
        hint="add health.dependency_failure.live or declare HLT-003 not_applicable",
    )
    _note_answers(verdict, asked)
    verdict.check([f for a in asked for f in health.check_live_under_failure(a)], what="the liveness probe")


@pytest.mark.requirement("HLT-004")
def test_probes_answer_in_time(
    answers: list[ProbeAnswer], section: HealthSection, request: pytest.FixtureRequest, verdict: Verdict
) -> None:
    measured = list(answers)
    verdict.note(max_seconds=section.max_seconds)
    if section.dependency_failure is None:
        verdict.note(dependency_failure="not configured: only the running service's probes were timed")
    else:
        try:
            run: DependencyFailureRun = request.getfixturevalue("dependency_failure")
        except HarnessError:
            # Probes already too slow are a finding whether or not the second instance could start.
            slow = health.check_response_times(measured, section.max_seconds)
            if slow:
                _note_answers(verdict, measured)
                verdict.examined(probes=len(measured))
                verdict.check(slow, what=f"{len(measured)} health probe answer(s)")
            raise
        _note_run(verdict, run)
        measured += run.answers
    verdict.examined(
        probes=len(measured),
        none_because="the profile lists no health probe to time (health.probes, "
        "health.dependency_failure); nothing to examine",
        hint="add health.probes or declare HLT-004 not_applicable",
    )
    _note_answers(verdict, measured)
    verdict.check(
        health.check_response_times(measured, section.max_seconds),
        what=f"{len(measured)} health probe answer(s)",
    )
