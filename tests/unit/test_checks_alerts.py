"""ALR-*: each alert-rule check fails for the right reason, and only then.

Two kinds of tests: the rule files under tests/data/rules (cases.yaml) run
through every file-level check, with the real promtool for ALR-001/002,
and must fail exactly their ids; hand-made values pin each check's edges.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conformance._sections.slos import Slo
from conformance.checks import alerts
from conformance.checks.alerts import MetricInventory, Rule, RuleSet
from conformance.collect._livefire import LiveFireOutcome, QuietOutcome
from conformance.collect._promtool import (
    LocalPromtool,
    PromtoolRun,
    RuleCheckResult,
    RuleTestCase,
    RuleTestResult,
    parse_check_rules_output,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "rules"
CASES = yaml.safe_load((DATA / "cases.yaml").read_text())
SLOS = [Slo(name=s["name"], metric=s["metric"]) for s in CASES["slos"]]
# promtool is installed by scripts/bootstrap; without it these tests fail with that hint, never skip.
needs_promtool = pytest.mark.usefixtures("_promtool_on_path")


@pytest.fixture
def _promtool_on_path() -> None:
    if shutil.which("promtool") is None:
        raise RuntimeError("promtool not on PATH: run scripts/bootstrap (Debian's prometheus package)")


def inventory_from(text: str) -> MetricInventory:
    return MetricInventory.from_exposition(text_string_to_metric_families(text))


INVENTORY = inventory_from((DATA / "metrics.prom").read_text())


@pytest.fixture(scope="module")
def promtool() -> LocalPromtool:
    return LocalPromtool.discover()


_unit_tests: dict[Path, RuleTestResult] = {}


def unit_test(promtool: LocalPromtool, tests_file: Path) -> RuleTestResult:
    """``promtool test rules`` once per file: the test files test good.yml, whatever the case's rules."""
    if tests_file not in _unit_tests:
        _unit_tests[tests_file] = promtool.test_rules([tests_file])
    return _unit_tests[tests_file]


def failing_ids(promtool: LocalPromtool, rules_file: Path, tests_file: Path) -> dict[str, list[str]]:
    """Every file-level ALR check on one rule file: id → finding messages."""
    rule_set = alerts.parse_rule_files({rules_file.name: rules_file.read_text()})
    assert rule_set.problems == ()
    tests_text = {tests_file.name: tests_file.read_text()}
    findings = [
        *alerts.check_rule_files(promtool.check_rules([rules_file])),
        *alerts.check_rule_tests(unit_test(promtool, tests_file)),
        *alerts.check_alerts_tested(rule_set, alerts.fired_in_tests(tests_text)),
        *alerts.check_for_durations(rule_set),
        *alerts.check_severities(rule_set, ("critical", "warning", "info")),
        *alerts.check_annotations(rule_set, ("summary", "description", "runbook_url")),
        *alerts.check_unique_alert_names(rule_set),
        *alerts.check_recording_rule_names(rule_set),
        *alerts.check_selectors(rule_set, INVENTORY).findings,
        *alerts.check_slo_coverage(SLOS, rule_set),
    ]
    out: dict[str, list[str]] = {}
    for f in findings:
        out.setdefault(f.requirement_id, []).append(f.message)
    return out


@needs_promtool
@pytest.mark.parametrize(
    "case", CASES["cases"], ids=[f"{c['rules']}-{c.get('tests', 'good_test.yml')}" for c in CASES["cases"]]
)
def test_rule_file_fails_exactly_its_ids(promtool: LocalPromtool, case: dict[str, Any]) -> None:
    failed = failing_ids(promtool, DATA / case["rules"], DATA / case.get("tests", "good_test.yml"))
    assert sorted(failed) == case["fails"], failed


def test_every_file_level_requirement_has_a_failing_rule_file() -> None:
    covered = {i for case in CASES["cases"] for i in case["fails"]}
    assert covered == {f"ALR-{n:03d}" for n in range(1, 11)}


def test_every_broken_rule_file_is_a_case() -> None:
    files = {p.name for p in DATA.glob("*.yml") if not p.name.endswith("test.yml")}
    assert files == {c["rules"] for c in CASES["cases"]}


# -- parsing rule files ----------------------------------------------------------

RULES = """\
groups:
  - name: g
    rules:
      - alert: A
        expr: up == 0
        for: 1m
        labels: {severity: critical}
        annotations: {summary: s, description: d, runbook_url: "https://r.example/a"}
      - record: job:up:sum
        expr: sum by (job) (up)
"""


def rules(text: str = RULES, file: str = "r.yml") -> RuleSet:
    return alerts.parse_rule_files({file: text})


def test_rules_are_read_with_their_lines() -> None:
    parsed = rules()
    assert [(r.kind, r.name, r.line) for r in parsed.rules] == [
        ("alert", "A", 4),
        ("record", "job:up:sum", 9),
    ]
    assert parsed.alerts[0].where == 'r.yml:4 group "g" alert A'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("groups: [\n", "not valid YAML"),
        ("rules: []\n", "no `groups` list"),
        ("groups: [{name: g}]\n", "groups[0] has no `rules` list"),
        ("groups: [{name: g, rules: [{expr: up}]}]\n", "neither an alert nor a recording rule"),
    ],
)
def test_what_is_not_a_rule_file_is_a_problem(text: str, problem: str) -> None:
    parsed = rules(text)
    assert parsed.rules == () and problem in parsed.problems[0]


def alert(**overrides: Any) -> Rule:
    fields: dict[str, Any] = {
        "file": "r.yml",
        "group": "g",
        "index": 1,
        "kind": "alert",
        "name": "A",
        "expr": "up == 0",
        "for_": "5m",
        "labels": {"severity": "critical"},
        "annotations": {"summary": "s", "description": "d", "runbook_url": "https://runbooks.example/a"},
        "line": 3,
    }
    fields.update(overrides)
    return Rule(**fields)


def record(name: str, expr: str) -> Rule:
    return Rule(file="r.yml", group="g", index=1, kind="record", name=name, expr=expr)


# -- ALR-001 / ALR-002: promtool ------------------------------------------------


def run(code: int, stdout: str = "", stderr: str = "") -> PromtoolRun:
    return PromtoolRun(("promtool",), code, stdout, stderr, 0.01)


def test_alr001_quotes_promtool_error() -> None:
    stderr = (
        '  FAILED:\nr.yml: 5:15: group "g", rule 1, "A": could not parse expression: '
        "unclosed left parenthesis\n"
    )
    check = parse_check_rules_output("r.yml", run(1, "Checking r.yml\n", stderr))
    result = RuleCheckResult(lint="all", files=(check,))
    (finding,) = alerts.check_rule_files(result)
    assert finding.requirement_id == "ALR-001" and "unclosed left parenthesis" in finding.message


def test_alr001_lint_alone_is_not_a_failure() -> None:
    lint = (
        "  FAILED:\nlint error 1 duplicate rule(s) found.\nMetric: A\nLabel(s):\nMight cause inconsistency\n"
    )
    check = parse_check_rules_output("r.yml", run(0, "Checking r.yml\n", lint))
    assert check.ok and check.lint and not check.errors
    assert alerts.check_rule_files(RuleCheckResult("all", (check,))) == []


def test_alr002_failed_group_is_named() -> None:
    result = RuleTestResult(
        files=("t.yml",),
        cases=(
            RuleTestCase("t.yml", "fires"),
            RuleTestCase("t.yml", "quiet", failures=("alertname: A, exp:[], got:[x]",)),
        ),
        source="junit",
        runs=(),
    )
    (finding,) = alerts.check_rule_tests(result)
    assert "test 'quiet' failed: alertname: A" in finding.message


def test_alr002_unrunnable_file() -> None:
    result = RuleTestResult(("t.yml",), (RuleTestCase("t.yml", "", error="yaml: line 3: bad"),), "text", ())
    (finding,) = alerts.check_rule_tests(result)
    assert "t.yml: could not run: yaml: line 3: bad" in finding.message


def test_alr002_no_test_files_or_no_groups() -> None:
    assert (
        "no promtool unit-test files"
        in alerts.check_rule_tests(RuleTestResult((), (), "text", ()))[0].message
    )
    (empty,) = alerts.check_rule_tests(RuleTestResult(("t.yml",), (), "text", ()))
    assert empty.message == "t.yml: no test groups"


def test_alr002_passes_when_every_group_passes() -> None:
    assert (
        alerts.check_rule_tests(RuleTestResult(("t.yml",), (RuleTestCase("t.yml", "a"),), "text", ())) == []
    )


# -- ALR-003 … ALR-008: lint -----------------------------------------------------


def test_alr003_alert_without_firing_test() -> None:
    tests = {
        "t.yml": "tests: [{alert_rule_test: [{alertname: A, exp_alerts: []}, "
        "{alertname: B, exp_alerts: [{}]}]}]"
    }
    fired = alerts.fired_in_tests(tests)
    assert fired == {"B"}
    (finding,) = alerts.check_alerts_tested(RuleSet((alert(name="A"), alert(name="B"))), fired)
    assert finding.message.endswith("alert A: no promtool unit test expects it to fire")


@pytest.mark.parametrize(
    ("for_", "fails"), [(None, "no `for`"), ("0s", "is zero"), ("0m", "is zero"), ("1m", "")]
)
def test_alr004_for(for_: str | None, fails: str) -> None:
    findings = alerts.check_for_durations(RuleSet((alert(for_=for_),)))
    assert [fails in f.message for f in findings] == ([True] if fails else [])


@pytest.mark.parametrize(
    ("labels", "fails"),
    [
        ({}, "no labels.severity"),
        ({"severity": "page"}, "severity 'page' is not one of critical, warning"),
        ({"severity": "warning"}, ""),
    ],
)
def test_alr005_severity(labels: dict[str, str], fails: str) -> None:
    findings = alerts.check_severities(RuleSet((alert(labels=labels),)), ("critical", "warning", "info"))
    assert [fails in f.message for f in findings] == ([True] if fails else [])


@pytest.mark.parametrize(
    ("annotations", "fails"),
    [
        ({"summary": "s"}, "missing or empty annotation(s) description, runbook_url"),
        ({"summary": " ", "description": "d", "runbook_url": "https://r.example/x"}, "annotation(s) summary"),
        (
            {"summary": "s", "description": "d", "runbook_url": "wiki/HighErrors"},
            "is not an absolute http(s) URL",
        ),
        (
            {"summary": "s", "description": "d", "runbook_url": "ftp://r.example/x"},
            "is not an absolute http(s) URL",
        ),
        ({"summary": "s", "description": "d", "runbook_url": "https://r.example/x"}, ""),
    ],
)
def test_alr006_annotations(annotations: dict[str, str], fails: str) -> None:
    findings = alerts.check_annotations(
        RuleSet((alert(annotations=annotations),)), ("summary", "description", "runbook_url")
    )
    assert [fails in f.message for f in findings] == ([True] if fails else [])


def test_alr006_required_set_is_configurable() -> None:
    assert alerts.check_annotations(RuleSet((alert(annotations={"summary": "s"}),)), ("summary",)) == []


def test_alr007_duplicate_across_files() -> None:
    parsed = RuleSet((alert(file="a.yml"), alert(file="b.yml", line=9), alert(name="B")))
    (finding,) = alerts.check_unique_alert_names(parsed)
    assert (
        finding.message == 'alert A is defined 2 times: a.yml:3 group "g" alert A; b.yml:9 group "g" alert A'
    )


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("job:http_requests:rate5m", True),
        ("instance_path:requests:rate5m", True),
        ("http_requests_rate5m", False),
        ("job:http_requests", False),
        ("job::rate5m", False),
        ("a:b:c:d", False),
        ("job:http-requests:rate5m", False),
    ],
)
def test_alr008_recording_rule_names(name: str, ok: bool) -> None:
    findings = alerts.check_recording_rule_names(RuleSet((record(name, "sum(up)"),)))
    assert (findings == []) == ok


# -- ALR-009: selectors vs the service's metrics -------------------------------

EXPOSITION = """\
# TYPE http_requests_total counter
http_requests_total{endpoint="/health",method="GET",status_code="200"} 3
# TYPE http_errors_total counter
# TYPE latency_seconds histogram
latency_seconds_bucket{le="+Inf"} 1
latency_seconds_count 1
latency_seconds_sum 0.1
"""


def selector_report(expr: str, *extra: Rule, **kwargs: Any) -> alerts.SelectorReport:
    return alerts.check_selectors(RuleSet((alert(expr=expr), *extra)), inventory_from(EXPOSITION), **kwargs)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            "rate(http_request_total[5m]) > 1",
            "no metric http_request_total in the service's metrics (similar: http_requests_total)",
        ),
        (
            'rate(http_requests_total{status=~"5.."}[5m]) > 1',
            "label 'status' never appears on http_requests_total (its labels: endpoint, method, status_code)",
        ),
        ('sum(http_requests_total{code!="", endpoint="/health"})', "label 'code' never appears"),
        ('{__name__=~"grpc_.*"}', 'no metric __name__=~"grpc_.*"'),
        ("histogram_quantile(0.9, rate(latency_bucket[5m]))", "no metric latency_bucket"),
        ("max_over_time(nope[10m:1m])", "no metric nope"),
    ],
)
def test_alr009_fails(expr: str, message: str) -> None:
    report = selector_report(expr)
    assert len(report.findings) == 1 and message in report.findings[0].message, report.findings


@pytest.mark.parametrize(
    ("expr", "unverified"),
    [
        (
            'rate(http_requests_total{status_code=~"5.."}[5m]) > 0',
            'no series with status_code=~"5.." yet (values seen: 200)',
        ),
        ("rate(http_errors_total[1m]) > 0", "declared by the exposition but no series yet"),
        ('{job="x"}', "selects no metric by name"),
        ('rate(latency_seconds_bucket[5m]) + latency_seconds_count + http_requests_total{method="GET"}', ""),
        ('up{job="production", instance="a:9090"} == 0', ""),
        ('http_requests_total{status!="500", other=""}', ""),
        ('ALERTS{alertstate="firing"}', ""),
        ('{__name__=~"http_.*_total", endpoint="/health"}', ""),
    ],
)
def test_alr009_passes_and_says_what_it_could_not_verify(expr: str, unverified: str) -> None:
    report = selector_report(expr)
    assert report.findings == []
    assert [unverified in u for u in report.unverified] == ([True] if unverified else [])


def test_alr009_recorded_and_external_names_are_known() -> None:
    report = selector_report(
        "job:http_requests:rate5m > 0 and node_load1 > 4",
        record("job:http_requests:rate5m", "sum by (job) (rate(http_requests_total[5m]))"),
        external_metrics=["node_load1"],
    )
    assert report.findings == [] and report.selectors_checked == 3


def test_alr009_target_labels_are_configurable() -> None:
    assert selector_report('http_requests_total{region="eu"}', target_labels=["region"]).findings == []
    assert selector_report('http_requests_total{region="eu"}').findings != []


def test_alr009_unparsable_expressions_are_left_to_alr001() -> None:
    report = selector_report("sum(rate(x[1m])")
    assert report.findings == [] and report.unparsable[0][1] == "unclosed left parenthesis"


def test_alr009_inventory_from_prometheus_series_and_declared_families() -> None:
    families = list(text_string_to_metric_families(EXPOSITION))
    inventory = MetricInventory.build(
        [
            {"__name__": "http_requests_total", "job": "service", "endpoint": "/x"},
            {"__name__": "up", "job": "service"},
        ],
        families,
    )
    assert set(inventory.series) == {"http_requests_total", "up"}
    assert inventory.declared == {
        "http_errors_total"
    }  # latency_seconds has samples, so it comes from the series


# -- ALR-010: SLO coverage ---------------------------------------------------------


def test_alr010_direct_indirect_and_missing() -> None:
    parsed = RuleSet(
        (
            record(
                "job:latency:p95", "histogram_quantile(0.95, sum by (le) (rate(latency_seconds_bucket[5m])))"
            ),
            alert(name="SlowP95", expr="job:latency:p95 > 2"),
            alert(name="Errors", expr="rate(http_errors_total[5m]) > 0"),
        )
    )
    slos = [
        Slo("latency", metric="latency_seconds"),
        Slo("errors", expression="sum(rate(http_errors_total[5m])) / sum(rate(http_requests_total[5m]))"),
        Slo("auth", metric="slo_auth_success_rate_compliance_ratio"),
    ]
    assert alerts.slo_coverage(slos, parsed) == {"latency": ["SlowP95"], "errors": ["Errors"], "auth": []}
    (finding,) = alerts.check_slo_coverage(slos, parsed)
    assert finding.message == "SLO auth (slo_auth_success_rate_compliance_ratio) is watched by no alert"


# -- ALR-011: loaded into real Prometheus ----------------------------------------


def loaded(**overrides: Any) -> dict[str, Any]:
    return {"group": "g", "name": "A", "type": "alerting", "health": "ok", "lastError": "", **overrides}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "not loaded in Prometheus"),
        ([loaded(group="other")], "not loaded in Prometheus"),
        ([loaded(type="recording")], "not loaded in Prometheus"),
        (
            [loaded(health="err", lastError="found duplicate series for the match group")],
            "evaluation fails in Prometheus: found duplicate series for the match group",
        ),
        ([loaded(health="unknown")], "health 'unknown', never evaluated"),
        ([loaded()], ""),
    ],
)
def test_alr011(entries: list[dict[str, Any]], message: str) -> None:
    findings = alerts.check_rules_loaded(RuleSet((alert(),)), entries)
    assert [message in f.message for f in findings] == ([True] if message else [])


def test_alr011_names_a_file_the_stack_did_not_load() -> None:
    rejected = {"/rules/broken.yml": '3:11: group "g", rule 1, "A": could not parse expression'}
    (finding,) = alerts.check_rules_loaded(RuleSet((alert(),)), [loaded()], rejected)
    assert finding.message.startswith("/rules/broken.yml: not loaded into Prometheus, which cannot parse it")
    assert "could not parse expression" in finding.message and "see ALR-001" in finding.message


# -- ALR-012 / ALR-013: live-fire ---------------------------------------------------


def outcome(**overrides: Any) -> LiveFireOutcome:
    fields: dict[str, Any] = {
        "alert": "HighErrorRate",
        "expect": "firing",
        "request": "GET /error",
        "reached": "firing",
        "duration_seconds": 12.0,
        "timeout": 30.0,
        "requests_sent": 60,
        "statuses": {"500": 60},
        "expect_status": (500,),
    }
    fields.update(overrides)
    return LiveFireOutcome(**fields)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, ""),
        ({"expect": "pending", "reached": "firing"}, ""),
        ({"expect": "pending", "reached": "pending"}, ""),
        (
            {"reached": "pending"},
            "HighErrorRate did not become firing within 30s "
            "(reached pending; 60 requests GET /error: 500: 60)",
        ),
        (
            {"reached": "inactive", "statuses": {"200": 150}, "requests_sent": 150},
            "reached inactive; 150 requests GET /error: 200: 150); "
            "the traffic never got the expected status 500",
        ),
        (
            {"rule_loaded": False, "reached": "inactive"},
            "HighErrorRate: no alerting rule of that name is loaded",
        ),
    ],
)
def test_alr012(overrides: dict[str, Any], message: str) -> None:
    findings = alerts.check_live_fire([outcome(**overrides)])
    assert [message in f.message for f in findings] == ([True] if message else []), findings


def test_alr013() -> None:
    quiet = QuietOutcome(("HighErrorRate",), 3.0, 15, {"200": 15})
    assert alerts.check_quiet(quiet) == []
    noisy = QuietOutcome(
        ("HighErrorRate",), 3.0, 15, {"200": 15}, active={"HighErrorRate": ("pending", 1.5, "0.5")}
    )
    (finding,) = alerts.check_quiet(noisy)
    assert (
        finding.message
        == "HighErrorRate became pending 1.5s into normal traffic (15 requests: 200: 15); value 0.5"
    )
