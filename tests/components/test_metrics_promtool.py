"""Our promlint port against the real ``promtool check metrics`` (conformance.checks._promlint).

Every case of tests/data/metrics_lint_cases.yaml, and the reference service's
exposition in each metric variant, goes through both; a difference is a bug in
the port. A missing promtool fails these tests with the bootstrap hint.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from conformance.checks.metrics import compare_with_promtool, lint_exposition
from conformance.collect._promtool import LocalPromtool

REPO = Path(__file__).resolve().parents[2]
CASES = yaml.safe_load((REPO / "tests/data/metrics_lint_cases.yaml").read_text())
if str(REPO / "fixtures") not in sys.path:
    sys.path.insert(0, str(REPO / "fixtures"))

from reference_service.breakage import FAMILIES  # noqa: E402
from reference_service.metrics import ChatCompletion, ServiceMetrics  # noqa: E402


@pytest.fixture(scope="module")
def promtool() -> LocalPromtool:
    return LocalPromtool.discover()


def version(runner: LocalPromtool) -> tuple[int, ...]:
    return tuple(int(p) for p in runner.version.split("+")[0].split(".")[:3])


def differences(runner: LocalPromtool, text: str) -> list[str]:
    ours = lint_exposition("text", list(text_string_to_metric_families(text)), text, "prometheus-text")
    result = runner.check_metrics(text)
    problems = [(p.metric, p.message) for p in result.problems]
    return compare_with_promtool(ours.problems, problems, result.parse_error, version(runner))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_lint_case_agrees_with_promtool(promtool: LocalPromtool, case: dict[str, Any]) -> None:
    assert differences(promtool, case["text"]) == []


@pytest.mark.parametrize("variant", ["", *FAMILIES["metric"]])
def test_reference_exposition_agrees_with_promtool(promtool: LocalPromtool, variant: str) -> None:
    service = ServiceMetrics(CollectorRegistry(), frozenset({variant} - {""}))
    service.record_request("GET", "/users/{user_id}", 200, 0.01, None)
    service.record_request("GET", "/error", 500, 0.02, "DeliberateFailure")
    service.record_user_request("4242")
    service.business.record_chat_completion(ChatCompletion("fake", "fake-small", 3, 5, 0.001, 0.01))
    body, _ = service.exposition("text/plain")
    assert differences(promtool, body.decode()) == []


def test_runner_says_which_promtool_ran(promtool: LocalPromtool) -> None:
    described = promtool.describe()
    assert described["kind"] == "local" and described["version"].startswith("2.")
    assert f"{described['kind']} promtool {described['version']}".startswith("local promtool 2.")
