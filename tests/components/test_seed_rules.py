"""The seed flavours' alert rules (fixtures/profiles/<flavour>/rules): real promtool and the ALR lints.

Per flavour (issue 11's contract, one row of FLAVOURS): ``promtool check rules
--lint=all`` accepts the rule file without a lint finding, ``promtool test
rules`` passes, every alert fires in some unit test (ALR-003) and is expected
quiet in another, the pure ALR-004..008 checks find nothing with the flavour's
severities and required annotations, and ``up`` selectors name the flavour's
Prometheus job. A missing promtool fails these tests with the bootstrap hint
(``LocalPromtool.discover`` raises it), never skips them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conformance._promql import selectors
from conformance.checks import alerts
from conformance.collect._promtool import LocalPromtool

PROFILES = Path(__file__).resolve().parents[2] / "fixtures" / "profiles"


@dataclass(frozen=True, slots=True)
class SeedRules:
    flavour: str
    #: ``prometheus.job`` of the flavour's profile.
    job: str
    severities: tuple[str, ...]
    annotations: tuple[str, ...]
    #: group → alert names, in file order.
    groups: dict[str, list[str]]

    @property
    def rules_file(self) -> Path:
        return PROFILES / self.flavour / "rules" / "alerts.yml"

    @property
    def tests_file(self) -> Path:
        return PROFILES / self.flavour / "rules" / "alerts_test.yml"

    @property
    def alert_names(self) -> set[str]:
        return {name for names in self.groups.values() for name in names}


FLAVOURS = [
    SeedRules(
        "goblin-assistant",
        job="goblin-assistant",
        severities=("critical", "warning"),
        annotations=("summary", "description"),
        groups={
            "goblin_assistant_slos": [
                "ChatResponseTimeSLOViolation",
                "AuthSuccessRateSLOViolation",
                "LLMProviderAvailabilitySLOViolation",
                "APIAvailabilitySLOViolation",
            ]
        },
    ),
    SeedRules(
        "baliblissed",
        job="baliblissed-backend",
        severities=("critical", "warning"),
        annotations=("summary", "description"),
        groups={"baliblissed_alerts": ["HighErrorRate", "HighP99Latency", "AICircuitBreakerOpen"]},
    ),
    SeedRules(
        "generation-backend",
        job="generation-backend",
        severities=("critical", "warning", "info"),
        annotations=("summary", "description", "runbook_url"),
        groups={
            "api_alerts": ["HighErrorRate", "HighResponseTimeP95", "ServiceDown"],
            "business_alerts": ["GenerationSuccessRateLow", "QueueDepthHigh", "PaymentFailureRateHigh"],
            "infrastructure_alerts": ["HighCPUUsage", "HighMemoryUsage", "HighDiskUsage"],
            "sla_alerts": ["SLAAvailabilityViolation", "SLAErrorRateViolation"],
        },
    ),
    SeedRules(
        "promptforge",
        job="promptforge",
        severities=("critical", "warning"),
        annotations=("summary",),
        groups={
            "promptforge_alerts": [
                "HighErrorRate",
                "SlowRequests",
                "DatabaseDown",
                "ServiceDown",
                "HighMemoryUsage",
            ]
        },
    ),
]

by_flavour = pytest.mark.parametrize("seed", FLAVOURS, ids=[f.flavour for f in FLAVOURS])


@pytest.fixture(scope="module")
def promtool() -> LocalPromtool:
    return LocalPromtool.discover()


def rule_set(seed: SeedRules) -> alerts.RuleSet:
    parsed = alerts.parse_rule_files({seed.rules_file.name: seed.rules_file.read_text()})
    assert parsed.problems == ()
    return parsed


@by_flavour
def test_groups_and_alert_names(seed: SeedRules) -> None:
    groups = yaml.safe_load(seed.rules_file.read_text())["groups"]

    assert {g["name"]: [r["alert"] for r in g["rules"]] for g in groups} == seed.groups


@by_flavour
def test_promtool_check_rules_finds_nothing(promtool: LocalPromtool, seed: SeedRules) -> None:
    result = promtool.check_rules([seed.rules_file], lint="all")

    assert alerts.check_rule_files(result) == []
    (checked,) = result.files
    assert checked.lint == ()
    assert checked.rules_found == len(seed.alert_names)


@by_flavour
def test_promtool_unit_tests_pass(promtool: LocalPromtool, seed: SeedRules) -> None:
    result = promtool.test_rules([seed.tests_file])

    assert alerts.check_rule_tests(result) == []
    assert result.exit_code == 0 and result.cases


@by_flavour
def test_every_alert_fires_and_stays_quiet_in_a_unit_test(seed: SeedRules) -> None:
    tests = yaml.safe_load(seed.tests_file.read_text())["tests"]
    quiet = {
        check["alertname"]
        for case in tests
        for check in case["alert_rule_test"]
        if not check.get("exp_alerts")
    }
    fired = alerts.fired_in_tests({seed.tests_file.name: seed.tests_file.read_text()})

    assert alerts.check_alerts_tested(rule_set(seed), fired) == []
    assert quiet == seed.alert_names


@by_flavour
def test_pure_rule_lints_find_nothing(seed: SeedRules) -> None:
    rules = rule_set(seed)

    findings = [
        *alerts.check_for_durations(rules),
        *alerts.check_severities(rules, seed.severities),
        *alerts.check_annotations(rules, seed.annotations),
        *alerts.check_unique_alert_names(rules),
        *alerts.check_recording_rule_names(rules),
    ]

    assert [f.message for f in findings] == []


@by_flavour
def test_up_selectors_name_the_flavour_job(seed: SeedRules) -> None:
    """An ``up`` without the job's matcher would also fire for Prometheus's other targets."""
    ups = [
        (rule.name, sorted(str(m) for m in selector.matchers))
        for rule in rule_set(seed).alerts
        for selector in selectors(rule.expr)
        if selector.name == "up"
    ]

    assert ups == [(name, [f'job="{seed.job}"']) for name, _ in ups]
