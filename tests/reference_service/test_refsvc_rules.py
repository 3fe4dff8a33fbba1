"""Alert rules: structure (every alert has for/severity/summary/description/runbook_url) and promtool."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml
from _refsvc_support import FIXTURES_DIR

RULES_DIR = FIXTURES_DIR / "reference_service" / "rules"
ALERTS = RULES_DIR / "alerts.yml"
ALERTS_TEST = RULES_DIR / "alerts_test.yml"
EXPECTED = {
    "reference_service_slos": [
        "ChatResponseTimeSLOViolation",
        "AuthSuccessRateSLOViolation",
        "APIAvailabilitySLOViolation",
    ],
    "reference_service_http": ["HighErrorRate", "HighLatencyP95", "RateLimitSurge"],
}


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_groups_and_alert_names() -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]

    assert {group["name"]: [rule["alert"] for rule in group["rules"]] for group in groups} == EXPECTED


@pytest.mark.parametrize("rule", _alerts(), ids=lambda rule: rule["alert"])
def test_every_alert_is_complete(rule: dict[str, Any]) -> None:
    assert rule["for"]
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    for key in ("summary", "description", "runbook_url"):
        assert rule["annotations"][key].strip()
    assert rule["annotations"]["runbook_url"].startswith("https://")


def test_high_error_rate_can_fire_within_30_seconds() -> None:
    (rule,) = [rule for rule in _alerts() if rule["alert"] == "HighErrorRate"]

    assert rule["for"] == "10s"


def test_every_alert_has_firing_and_quiet_promtool_cases() -> None:
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])

    names = {rule["alert"] for rule in _alerts()}
    assert fired == names
    assert quiet == names


@pytest.mark.parametrize("command", [["check", "rules", ALERTS.name], ["test", "rules", ALERTS_TEST.name]])
def test_promtool_accepts_the_rules(command: list[str]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH")

    result = subprocess.run([promtool, *command], cwd=RULES_DIR, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
