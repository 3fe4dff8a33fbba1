"""ALR-*: alert rules, from "the file parses" to "this alert really fires" (see conformance.checks.alerts).

promtool and the lint need no traffic; then the real Prometheus: rules
loaded (ALR-011), the live-fire with its quiet watch first (ALR-013, ALR-012:
two probes of the run's plan, see conformance._plan, running while the other
suites' probes do), and the selector check (ALR-009) once all the run's
traffic is over, so that series the traffic created (the error counters of a
failing endpoint) count.

Each verdict rests on what it examined (``verdict.examined``): rule files,
rules, alerts, unit-test groups, selectors, SLOs, live-fired alerts. A profile
without rule files, or rule files without alerts, leaves the requirements
that judge them nothing to examine: ``error``, with the hint to declare them
not applicable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance._exceptions import HarnessError, NoEvidence, WaitTimeout
from conformance._mask import excerpt
from conformance._plan import ProbeContext, implements
from conformance._session import ConformanceSession
from conformance._wait import wait_until
from conformance.checks import alerts
from conformance.checks.alerts import MetricInventory, RuleSet
from conformance.collect._livefire import LiveFireOutcome, QuietOutcome, fire_alert, watch_quiet
from conformance.collect._promtool import PromtoolRunner, RuleCheckResult, RuleTestResult, default_runner
from conformance.plugin import Verdict


def _not_applicable(what: str) -> str:
    """The fix when the profile gives a requirement nothing to examine."""
    return f"{what}, or declare the requirement in requirements.not_applicable with a reason"


def _section(session: ConformanceSession) -> Any:
    return session.profile.section("alerts")


def _rule_files(session: ConformanceSession) -> tuple[Path, ...]:
    files = session.profile.prometheus.rule_files
    if not files:
        raise NoEvidence(
            "the profile lists no rule files (prometheus.rule_files); nothing to examine",
            hint=_not_applicable("list the service's Prometheus rule files in prometheus.rule_files"),
        )
    return files


def _examined_alerts(verdict: Verdict, rules: RuleSet, session: ConformanceSession) -> None:
    """The alerting rules as what the verdict rests on; none is an ``error`` naming the files."""
    files = ", ".join(sorted({_display(f, session) for f in session.profile.prometheus.rule_files}))
    verdict.examined(
        alerts=len(rules.alerts),
        none_because=f"the rule files ({files}) define no alerting rule; nothing to examine",
        hint=_not_applicable("add the service's alerts to the rule files"),
    )


def _display(path: Path | str, session: ConformanceSession) -> str:
    """A rule file's name as the report shows it: relative to the profile when it is below it."""
    path = Path(path)
    try:
        return str(path.relative_to(session.profile.directory))
    except ValueError:
        return str(path)


def _texts(files: tuple[Path, ...], session: ConformanceSession) -> dict[str, str]:
    return {_display(f, session): f.read_text(encoding="utf-8") for f in files}


@pytest.fixture(scope="module")
def promtool(conformance_session: ConformanceSession) -> PromtoolRunner:
    return default_runner(timeout=_section(conformance_session).promtool_timeout)


@pytest.fixture(scope="module")
def rule_check(conformance_session: ConformanceSession, promtool: PromtoolRunner) -> RuleCheckResult:
    return promtool.check_rules(_rule_files(conformance_session), lint="all")


@pytest.fixture(scope="module")
def rule_set(conformance_session: ConformanceSession) -> RuleSet:
    return alerts.parse_rule_files(_texts(_rule_files(conformance_session), conformance_session))


@pytest.fixture
def lintable(rule_set: RuleSet, verdict: Verdict) -> RuleSet:
    """The rules, when every file could be read as rule groups (else the lint cannot run)."""
    if rule_set.problems:
        raise HarnessError(f"cannot read the rule files as rule groups (see ALR-001): {rule_set.problems[0]}")
    verdict.note(alerts=len(rule_set.alerts), recording_rules=len(rule_set.records))
    return rule_set


# -- promtool -----------------------------------------------------------------


@pytest.mark.requirement("ALR-001")
def test_promtool_accepts_the_rule_files(
    rule_check: RuleCheckResult, promtool: PromtoolRunner, verdict: Verdict
) -> None:
    verdict.note(
        promtool=promtool.describe(),
        command=f"check rules --lint={rule_check.lint}",
        files={
            f.file: {"exit_code": f.run.exit_code, "rules_found": f.rules_found} for f in rule_check.files
        },
    )
    lint = [excerpt(text, 300) for f in rule_check.files for text in f.lint]
    if lint:
        verdict.note(promtool_lint=lint)
    verdict.examined(
        rule_files=len(rule_check.files),
        rules=sum(f.rules_found or 0 for f in rule_check.files),
        none_because="promtool checked no rule file",
        hint=_not_applicable("list the service's Prometheus rule files in prometheus.rule_files"),
    )
    verdict.check(alerts.check_rule_files(rule_check), what=f"{len(rule_check.files)} rule file(s)")


@pytest.mark.requirement("ALR-002")
def test_promtool_unit_tests_pass(
    conformance_session: ConformanceSession,
    promtool: PromtoolRunner,
    verdict: Verdict,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    s = conformance_session
    _rule_files(s)
    # Every stack keeps its artifacts in a work directory (report-dir/work); the protocol does not name it.
    workdir = getattr(s.stack, "workdir", None)
    base = Path(workdir) if workdir is not None else tmp_path_factory.mktemp("alerts")
    junit = base / "alerts" / "promtool-rule-tests.xml"
    result: RuleTestResult = promtool.test_rules(s.profile.prometheus.rule_tests, junit_path=junit)
    verdict.note(
        promtool=promtool.describe(),
        files=list(result.files),
        parsed_from=result.source,
        junit=result.junit_path,
        test_groups=len(result.cases),
        passed=sum(1 for c in result.cases if c.passed),
        seconds=round(sum(r.duration_seconds for r in result.runs), 3),
    )
    # No test file or a file without test groups is a finding (the tests are missing), not an error.
    verdict.examined(
        test_groups=len(result.cases),
        none_because="promtool ran no unit-test group",
        hint=_not_applicable("add promtool unit tests for the rules in prometheus.rule_tests"),
    )
    verdict.check(alerts.check_rule_tests(result), what="the promtool unit tests")


@pytest.mark.requirement("ALR-003")
def test_every_alert_has_a_firing_unit_test(
    conformance_session: ConformanceSession, lintable: RuleSet, verdict: Verdict
) -> None:
    s = conformance_session
    fired = alerts.fired_in_tests(_texts(s.profile.prometheus.rule_tests, s))
    verdict.note(fired_in_tests=sorted(fired), unit_test_files=len(s.profile.prometheus.rule_tests))
    _examined_alerts(verdict, lintable, s)
    verdict.check(alerts.check_alerts_tested(lintable, fired), what=f"{len(lintable.alerts)} alerts")


# -- lint ----------------------------------------------------------------------


@pytest.mark.requirement("ALR-004")
def test_every_alert_has_for(
    conformance_session: ConformanceSession, lintable: RuleSet, verdict: Verdict
) -> None:
    _examined_alerts(verdict, lintable, conformance_session)
    verdict.check(alerts.check_for_durations(lintable), what=f"{len(lintable.alerts)} alerts")


@pytest.mark.requirement("ALR-005")
def test_every_alert_has_an_allowed_severity(
    conformance_session: ConformanceSession, lintable: RuleSet, verdict: Verdict
) -> None:
    allowed = _section(conformance_session).severities
    verdict.note(allowed=list(allowed))
    _examined_alerts(verdict, lintable, conformance_session)
    verdict.check(alerts.check_severities(lintable, allowed), what=f"{len(lintable.alerts)} alerts")


@pytest.mark.requirement("ALR-006")
def test_every_alert_has_its_annotations(
    conformance_session: ConformanceSession, lintable: RuleSet, verdict: Verdict
) -> None:
    required = _section(conformance_session).required_annotations
    verdict.note(required=list(required))
    _examined_alerts(verdict, lintable, conformance_session)
    verdict.check(alerts.check_annotations(lintable, required), what=f"{len(lintable.alerts)} alerts")


@pytest.mark.requirement("ALR-007")
def test_alert_names_are_unique(
    conformance_session: ConformanceSession, lintable: RuleSet, verdict: Verdict
) -> None:
    _examined_alerts(verdict, lintable, conformance_session)
    verdict.check(alerts.check_unique_alert_names(lintable), what=f"{len(lintable.alerts)} alerts")


@pytest.mark.requirement("ALR-008")
def test_recording_rules_are_well_named(lintable: RuleSet, verdict: Verdict) -> None:
    # A SHOULD on the rule files' recording rules: every rule is read to find them, and rule files
    # without a recording rule have none misnamed (no reference or seed profile records any).
    verdict.examined(
        rules=len(lintable.rules),
        recording_rules=len(lintable.records),
        none_because="the rule files define no rule; nothing to examine",
        hint=_not_applicable("add the service's rules to the rule files"),
    )
    verdict.check(
        alerts.check_recording_rule_names(lintable), what=f"{len(lintable.records)} recording rules"
    )


@pytest.mark.requirement("ALR-010")
def test_every_slo_has_an_alert(
    conformance_session: ConformanceSession, lintable: RuleSet, verdict: Verdict
) -> None:
    slos = list(conformance_session.profile.section("slos"))
    verdict.examined(
        slos=len(slos),
        none_because="the profile declares no SLOs (slos); no SLO to look for alerts on",
        hint=_not_applicable("declare the service's SLOs in slos"),
    )
    verdict.note(coverage=alerts.slo_coverage(slos, lintable), alerts=len(lintable.alerts))
    verdict.check(alerts.check_slo_coverage(slos, lintable), what=f"{len(slos)} SLO(s)")


# -- the real Prometheus --------------------------------------------------------


@pytest.mark.requirement("ALR-011")
def test_rules_evaluate_in_prometheus(
    conformance_session: ConformanceSession, lintable: RuleSet, verdict: Verdict
) -> None:
    s = conformance_session
    prometheus = s.prometheus
    wanted = {(r.group, r.name) for r in lintable.rules}

    def probe() -> tuple[list[dict[str, Any]] | None, str]:
        loaded = prometheus.rules()
        settled = {
            (str(r.get("group")), str(r.get("name"))) for r in loaded if r.get("health") in ("ok", "err")
        }
        waiting = wanted - settled
        return (loaded if not waiting else None), f"{len(waiting)} rule(s) not loaded or not yet evaluated"

    try:
        loaded = wait_until(
            probe, awaited="Prometheus to evaluate every rule once", timeout=_section(s).rules_timeout
        )
    except WaitTimeout:
        loaded = prometheus.rules()
    rejected = s.stack.rejected_rule_files
    verdict.note(
        loaded=len(loaded),
        evaluation_interval=s.profile.prometheus.evaluation_interval,
        files_not_loaded=sorted(rejected),
    )
    # A file Prometheus could not load is a finding even when no rule of it was read.
    verdict.examined(
        rules=len(lintable.rules),
        none_because="the rule files define no rule; nothing to look for in Prometheus",
        hint=_not_applicable("add the service's rules to the rule files"),
    )
    verdict.check(alerts.check_rules_loaded(lintable, loaded, rejected), what=f"{len(lintable.rules)} rules")


@dataclass
class LiveFireRun:
    quiet: QuietOutcome
    fired: list[LiveFireOutcome]
    seconds: float


def _live_fire_section(s: ConformanceSession) -> Any:
    section = _section(s)
    if not section.live_fire:
        raise NoEvidence(
            "the profile names no alert to live-fire (alerts.live_fire); nothing to examine",
            hint=_not_applicable("add a live_fire recipe (alert, request, expect) to the alerts section"),
        )
    return section


@implements("alerts-quiet")
def _watch_quiet(s: ConformanceSession, _: ProbeContext) -> tuple[QuietOutcome, float]:
    """Normal traffic while the live-fired alerts are watched (bounded; see collect._livefire)."""
    section = _live_fire_section(s)
    s.require_running()
    started = time.monotonic()
    base = section.baseline
    quiet = watch_quiet(
        s.client("alerts-baseline"),
        s.prometheus,
        alerts=[recipe.alert for recipe in section.live_fire],
        endpoints=base.endpoints,
        job=s.profile.prometheus.job,
        rate=base.rate,
        duration=base.duration,
        timeout=base.timeout,
    )
    return quiet, time.monotonic() - started


@implements("alerts-fire")
def _fire(s: ConformanceSession, probe: ProbeContext) -> tuple[list[LiveFireOutcome], float]:
    """Each recipe fired in turn; milestone ``series`` once Prometheus scraped the first
    recipe's answered requests (the error series it creates exist from then on)."""
    section = _live_fire_section(s)
    s.require_running()
    started = time.monotonic()
    client = s.client("alerts-live-fire")
    fired: list[LiveFireOutcome] = []
    try:
        for i, recipe in enumerate(section.live_fire):
            on_scraped = (lambda: probe.reached("series")) if i == 0 else None
            fired.append(
                fire_alert(client, s.prometheus, recipe, job=s.profile.prometheus.job, on_scraped=on_scraped)
            )
    finally:
        probe.reached("series")
    return fired, time.monotonic() - started


@pytest.fixture(scope="module")
def live_fire(conformance_session: ConformanceSession) -> LiveFireRun:
    """The quiet watch, then each recipe fired (two probes of the run's plan)."""
    s = conformance_session
    quiet, quiet_seconds = s.probe("alerts-quiet")
    fired, fire_seconds = s.probe("alerts-fire")
    return LiveFireRun(quiet, fired, round(quiet_seconds + fire_seconds, 3))


@pytest.mark.requirement("ALR-013")
def test_alerts_stay_quiet_under_normal_traffic(live_fire: LiveFireRun, verdict: Verdict) -> None:
    q = live_fire.quiet
    verdict.note(
        alerts=list(q.alerts),
        traffic_seconds=q.duration_seconds,
        requests=q.requests_sent,
        statuses=dict(q.statuses),
        evaluated_seconds_after_traffic=q.settled_after_seconds,
    )
    findings = alerts.check_quiet(q)
    # Quiet means something only if normal traffic was answered while the alerts were watched.
    answered = sum(n for status, n in q.statuses.items() if status != "no response")
    verdict.examined(alerts_watched=len(q.alerts), requests=answered)
    if not answered and not findings:
        raise NoEvidence(
            f"none of the {q.requests_sent} normal-traffic request(s) was answered while "
            f"{', '.join(q.alerts)} were watched; nothing to examine",
            hint="check alerts.baseline.endpoints, and that the service answers them",
        )
    verdict.check(findings, what=f"{len(q.alerts)} alert(s) under normal traffic")


@pytest.mark.requirement("ALR-012")
def test_alerts_fire_in_prometheus(live_fire: LiveFireRun, verdict: Verdict) -> None:
    verdict.note(
        live_fire_seconds=live_fire.seconds,
        alerts=[
            {
                "alert": o.alert,
                "request": o.request,
                "expect": o.expect,
                "reached": o.reached,
                "seconds_to_pending": o.seconds_to_pending,
                "seconds_to_firing": o.seconds_to_firing,
                "seconds": o.duration_seconds,
                "requests": o.requests_sent,
                "statuses": dict(o.statuses),
                "value": o.value,
            }
            for o in live_fire.fired
        ],
    )
    verdict.examined(
        live_fired_alerts=len(live_fire.fired),
        requests=sum(o.requests_sent for o in live_fire.fired),
        none_because="no alert was live-fired",
        hint=_not_applicable("add a live_fire recipe (alert, request, expect) to the alerts section"),
    )
    verdict.check(alerts.check_live_fire(live_fire.fired), what=f"{len(live_fire.fired)} live-fired alert(s)")


@pytest.mark.requirement("ALR-009")
def test_rule_selectors_exist_in_the_metrics(
    conformance_session: ConformanceSession, lintable: RuleSet, rule_check: RuleCheckResult, verdict: Verdict
) -> None:
    s = conformance_session
    section = _section(s)
    s.after_all_traffic()
    s.prometheus_target()  # a scrape newer than all the traffic so far
    series = s.prometheus.series([f'{{job="{s.profile.prometheus.job}"}}'])
    exposition = s.scrape()
    inventory = MetricInventory.build(series, exposition.families)
    if not inventory.names:
        # Every selector would "fail" against nothing: that verdict would rest on a broken scrape.
        raise NoEvidence(
            f"Prometheus stored no series for job {s.profile.prometheus.job!r} and {exposition.url} "
            f"(answered {exposition.status_code}) declares no metric; nothing to hold the rules' "
            "selectors against (see MET-001)",
            hint="set metrics.path / metrics.port and prometheus.job, or declare ALR-009 in "
            "requirements.not_applicable",
        )
    report = alerts.check_selectors(
        lintable, inventory, target_labels=section.target_labels, external_metrics=section.external_metrics
    )
    rejected_by_promtool = {_display(f.file, s) for f in rule_check.files if not f.ok}
    ours_only = [(r, e) for r, e in report.unparsable if r.file not in rejected_by_promtool]
    if ours_only:
        rule, error = ours_only[0]
        raise HarnessError(f"the PromQL parser rejects {rule.where} although promtool accepts it: {error}")
    verdict.note(
        selectors=report.selectors_checked,
        metric_names=len(inventory.series),
        declared_without_series=sorted(inventory.declared),
        unverified=report.unverified[:30],
        not_parsed=[f"{r.where}: {e}" for r, e in report.unparsable],
    )
    verdict.examined(
        selectors=report.selectors_checked,
        none_because=f"the {len(lintable.rules)} rule(s) select no metric"
        + (f" ({len(report.unparsable)} not parsed, see ALR-001)" if report.unparsable else "")
        + "; nothing to look for in the service's metrics",
        hint=_not_applicable("check the rules' expressions"),
    )
    verdict.check(report.findings, what=f"{report.selectors_checked} selector(s)")
