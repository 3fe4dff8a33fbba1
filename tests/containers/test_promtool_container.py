"""promtool in the Prometheus container gives exactly what the local promtool gives,
on the reference rules and on broken ones (so the ALR checks decide the same)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from conformance.collect._promtool import LocalPromtool
from conformance.collect._promtool_container import ContainerPromtool

from .conftest import IMAGES, REFERENCE_PROFILE, docker_leftovers

pytestmark = pytest.mark.containers

RULES = REFERENCE_PROFILE.parent / "rules"


def _without_runs(value: Any) -> Any:
    """A result with its PromtoolRun records (argv, timing) dropped: what the checks read."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _without_runs(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in ("run", "runs")
        }
    if isinstance(value, tuple | list):
        return [_without_runs(v) for v in value]
    return value


@pytest.fixture(scope="module")
def runners(docker: Any) -> tuple[LocalPromtool, ContainerPromtool]:
    return LocalPromtool.discover(), ContainerPromtool(IMAGES["prometheus"], client=docker)


@pytest.fixture
def broken_rules(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules" / "broken.yml"
    rules.parent.mkdir()
    rules.write_text(
        "groups:\n- name: g\n  rules:\n  - alert: NoFor\n    expr: up == 0 and\n"
        "  - alert: Fine\n    expr: up == 0\n    for: 1m\n    labels: {severity: page}\n"
    )
    test = tmp_path / "tests" / "broken_test.yml"
    test.parent.mkdir()
    fine = tmp_path / "rules" / "fine.yml"
    fine.write_text("groups:\n- name: g\n  rules:\n  - alert: Fine\n    expr: up == 0\n    for: 1m\n")
    test.write_text(
        "rule_files: [../rules/fine.yml]\nevaluation_interval: 1m\ntests:\n- name: never-fires\n"
        "  interval: 1m\n  input_series:\n  - {series: 'up{job=\"a\"}', values: '1x5'}\n"
        "  alert_rule_test:\n  - {eval_time: 5m, alertname: Fine, exp_alerts: [{exp_labels: {job: a}}]}\n"
    )
    for path in (rules, test, fine, rules.parent, test.parent, tmp_path):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return rules, test


def test_versions_and_descriptions(runners: tuple[LocalPromtool, ContainerPromtool]) -> None:
    local, container = runners
    described = container.describe()
    assert described["kind"] == "container" and described["image"] == IMAGES["prometheus"]
    assert described["version"] == local.version  # both are Debian's 2.42 here
    assert described["junit"] == local.supports_junit()


def test_reference_rules_same_results(runners: tuple[LocalPromtool, ContainerPromtool]) -> None:
    local, container = runners
    files = [RULES / "alerts.yml"]
    assert _without_runs(container.check_rules(files)) == _without_runs(local.check_rules(files))
    tests = [RULES / "alerts_test.yml"]
    result = container.test_rules(tests)
    assert _without_runs(result) == _without_runs(local.test_rules(tests))
    assert result.cases and not result.failed


def test_broken_rules_same_failures(
    runners: tuple[LocalPromtool, ContainerPromtool], broken_rules: tuple[Path, Path], docker: Any
) -> None:
    local, container = runners
    rules, test = broken_rules
    checked = container.check_rules([rules])
    assert not checked.ok and checked.files[0].errors
    assert str(rules) in checked.files[0].errors[0]  # host paths, not the container's mount
    assert _without_runs(checked) == _without_runs(local.check_rules([rules]))
    tested = container.test_rules([test])
    assert [c.name for c in tested.failed] == ["never-fires"]
    assert _without_runs(tested) == _without_runs(local.test_rules([test]))
    from conformance._process import RUN_ID

    assert docker_leftovers(docker, RUN_ID) == []


@pytest.mark.parametrize(
    "exposition",
    [
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n",
        "# TYPE http_request_count counter\nhttp_request_count 3\n",
        "this is { not an exposition\n",
    ],
)
def test_check_metrics_same_results(
    runners: tuple[LocalPromtool, ContainerPromtool], exposition: str
) -> None:
    local, container = runners
    assert _without_runs(container.check_metrics(exposition, extended=True)) == _without_runs(
        local.check_metrics(exposition, extended=True)
    )
