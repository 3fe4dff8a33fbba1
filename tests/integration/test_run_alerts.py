"""ALR end to end: the real CLI, the real reference service, the real Prometheus and promtool.

The reference rules pass and HighErrorRate is live-fired; each broken rule
file of tests/data/rules fails its own id in a real run; live-fire fails
both ways (an alert that does not fire, an alert that fires on normal traffic).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, CliRun, variant_profile

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliRun]
RULES = REPO / "tests/data/rules"
CASES = yaml.safe_load((RULES / "cases.yaml").read_text())
LIVE_FIRE_IDS = {"ALR-012", "ALR-013"}


def alr_results(run: CliRun) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in run.report["results"] if r["id"].startswith("ALR-")}


def notes(result: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for item in result["evidence"]:
        merged.update(item)
    return merged


def test_reference_rules_pass_and_an_alert_fires_in_real_prometheus(run_cli: RunCli) -> None:
    run = run_cli("-k", "test_alerts")
    results = alr_results(run)
    assert {i: r["status"] for i, r in results.items()} == {i: "passed" for i in results}, run.stdout[-3000:]
    assert len(results) == 13

    promtool = notes(results["ALR-001"])["promtool"]
    assert promtool["kind"] == "local" and promtool["version"].startswith("2.")
    assert notes(results["ALR-002"])["passed"] == notes(results["ALR-002"])["test_groups"] > 0

    fired = notes(results["ALR-012"])
    (high_error_rate,) = fired["alerts"]
    assert high_error_rate["alert"] == "HighErrorRate" and high_error_rate["reached"] == "firing"
    assert set(high_error_rate["statuses"]) == {"500"}
    assert fired["live_fire_seconds"] < 30, fired  # baseline + firing, bounded

    quiet = notes(results["ALR-013"])
    assert quiet["requests"] > 0 and set(quiet["statuses"]) == {"200"}
    assert quiet["evaluated_seconds_after_traffic"] is not None


def rule_file_profile(tmp_path: Path, rules: str, tests: str) -> Path:
    """The reference profile judging one of the data rule files (live-fire off: it has its own tests)."""

    def change(data: dict[str, Any]) -> None:
        data["prometheus"]["rule_files"] = [str(RULES / rules)]
        data["prometheus"]["rule_tests"] = [str(RULES / tests)]
        data["slos"] = CASES["slos"]
        data["alerts"].pop("live_fire")
        reason = "tests/data/rules cases are judged without live-fire"
        data["requirements"] = {"not_applicable": {i: reason for i in LIVE_FIRE_IDS}}

    return variant_profile(tmp_path, change)


# The cases the issue names, judged in a real run (all cases run through the real promtool in
# tests/unit/test_checks_alerts.py); unknown_label.yml is here because only the real service's
# labels make that verdict.
REAL_RUN_CASES = [
    ("missing_severity.yml", "good_test.yml", "ALR-005"),
    ("missing_annotations.yml", "good_test.yml", "ALR-006"),
    ("unknown_metric.yml", "good_test.yml", "ALR-009"),
    ("unknown_label.yml", "good_test.yml", "ALR-009"),
    ("good.yml", "failing_test.yml", "ALR-002"),
]


@pytest.mark.parametrize(
    ("rules", "tests", "fails"), REAL_RUN_CASES, ids=[c[0] + "-" + c[1] for c in REAL_RUN_CASES]
)
def test_broken_rule_file_fails_its_id(
    run_cli: RunCli, tmp_path: Path, rules: str, tests: str, fails: str
) -> None:
    run = run_cli("-k", "test_alerts", profile=rule_file_profile(tmp_path, rules, tests))
    results = alr_results(run)
    failed = {i for i, r in results.items() if r["status"] == "failed"}
    errors = {i: r["message"] for i, r in results.items() if r["status"] == "error"}
    assert failed == {fails} and errors == {}, run.stdout[-3000:]
    assert {i for i, r in results.items() if r["status"] == "skipped"} == LIVE_FIRE_IDS
    assert run.returncode == 1


def test_rule_file_prometheus_cannot_parse_fails_alr001_and_alr011(run_cli: RunCli, tmp_path: Path) -> None:
    """Prometheus would refuse to start on a rule file that does not parse; the stack loads only
    the files promtool accepts, so the run goes on and the report names the file."""
    run = run_cli(
        "-k", "test_alerts", profile=rule_file_profile(tmp_path, "syntax_error.yml", "good_test.yml")
    )
    results = alr_results(run)
    failed = {i for i, r in results.items() if r["status"] == "failed"}
    assert {"ALR-001", "ALR-011"} <= failed, run.stdout[-3000:]
    assert (
        "syntax_error.yml: not loaded into Prometheus, which cannot parse it" in results["ALR-011"]["message"]
    )
    assert "unclosed left parenthesis" in results["ALR-011"]["message"]
    assert run.returncode == 1


def test_alert_that_does_not_fire_fails_alr012(run_cli: RunCli, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        (recipe,) = data["alerts"]["live_fire"]
        recipe.update(request={"method": "GET", "path": "/health", "expect_status": 500}, timeout=4)

    run = run_cli("-k", "test_alerts", profile=variant_profile(tmp_path, change))
    results = alr_results(run)
    assert {i for i, r in results.items() if r["status"] != "passed"} == {"ALR-012"}, run.stdout[-3000:]
    assert results["ALR-012"]["message"].startswith(
        "1 finding(s); first: HighErrorRate did not become firing within 4s (reached inactive;"
    )
    assert "the traffic never got the expected status 500" in results["ALR-012"]["message"]


def test_alert_firing_under_normal_traffic_fails_alr013(run_cli: RunCli, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["endpoints"].append({"name": "error", "path": "/error", "expect_status": 500})
        data["alerts"]["baseline"].update(endpoints=["health", "error"], duration=5)

    run = run_cli("-k", "test_alerts", profile=variant_profile(tmp_path, change))
    results = alr_results(run)
    assert {i for i, r in results.items() if r["status"] != "passed"} == {"ALR-013"}, run.stdout[-3000:]
    assert "HighErrorRate became pending" in results["ALR-013"]["message"]
