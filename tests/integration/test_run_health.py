"""HLT-* end to end on the real reference service (local mode, health suite only):
the reference profile passes, with a second instance whose database check fails
started, probed and stopped; a schema demanding a field the service lacks fails
HLT-001 naming the field; a second instance without the failing dependency
fails HLT-002 naming the endpoint and the status."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance._profile import schema_path

from .conftest import CliRun, variant_profile

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliRun]
HEALTH_ONLY = ("--mode", "local", "-k", "test_health")


def _results(run: CliRun) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in run.report["results"] if r["id"].startswith("HLT-")}


def _statuses(run: CliRun) -> dict[str, str]:
    return {i: r["status"] for i, r in _results(run).items()}


def test_reference_passes_with_a_second_instance_whose_database_fails(run_cli: RunCli) -> None:
    run = run_cli(*HEALTH_ONLY)
    assert _statuses(run) == dict.fromkeys(["HLT-001", "HLT-002", "HLT-003", "HLT-004"], "passed"), (
        run.stdout[-3000:]
    )
    results = _results(run)
    (second, answers) = results["HLT-002"]["evidence"]
    assert second["env_keys"] == ["REFSVC_FAIL_DEPENDENCY"]
    assert answers["answers"] == [
        {
            "endpoint": "health_ready",
            "status": 503,
            "expected_status": 503,
            "schema": "health-ready-failure.schema.json",
            "seconds": answers["answers"][0]["seconds"],
            "dependency_failing": True,
        }
    ]
    # Its own logs, and it said why it was not ready (the run's leftover check covers the process).
    logs = run.report_dir / "work" / "service-dependency-failure" / "stdout.log"
    assert Path(second["logs"]) == logs.parent
    assert "service_stopped" in logs.read_text()
    probed = {a["endpoint"] for a in results["HLT-001"]["evidence"][0]["answers"]}
    assert probed == {"health", "health_live", "health_ready", "health_detailed"}


def test_a_schema_field_the_service_lacks_fails_hlt_001_naming_it(run_cli: RunCli, tmp_path: Path) -> None:
    strict = json.loads(schema_path("profiles/reference/health-ready.schema.json").read_text())
    strict["required"] = [*strict["required"], "dependencies_checked_at"]
    strict_file = tmp_path / "health-ready-strict.schema.json"
    strict_file.write_text(json.dumps(strict))

    def change(data: dict[str, Any]) -> None:
        for probe in data["health"]["probes"]:
            if probe["endpoint"] == "health_ready":
                probe["schema"] = str(strict_file)

    run = run_cli(*HEALTH_ONLY, profile=variant_profile(tmp_path, change))
    assert _statuses(run) == {
        "HLT-001": "failed",
        "HLT-002": "passed",
        "HLT-003": "passed",
        "HLT-004": "passed",
    }
    message = _results(run)["HLT-001"]["message"]
    assert message == (
        "1 finding(s); first: GET /health/ready (health_ready) answered 200; body at $ is not valid against "
        "health-ready-strict.schema.json: 'dependencies_checked_at' is a required property"
    ), run.stdout[-3000:]
    assert run.returncode == 1


def test_a_second_instance_that_stays_ready_fails_hlt_002(run_cli: RunCli, tmp_path: Path) -> None:
    profile = variant_profile(tmp_path, lambda d: d["health"]["dependency_failure"].update(env={}))
    run = run_cli(*HEALTH_ONLY, profile=profile)
    assert _statuses(run) == {
        "HLT-001": "passed",
        "HLT-002": "failed",
        "HLT-003": "passed",
        "HLT-004": "passed",
    }
    result = _results(run)["HLT-002"]
    assert result["message"] == (
        "1 finding(s); first: with a dependency failing, GET /health/ready (health_ready) answered 200, "
        "expected 503"
    ), run.stdout[-3000:]
    finding = result["evidence"][-1]
    assert finding["endpoint"] == "health_ready" and finding["status"] == 200
    assert finding["body"].startswith('{"status":"ready"')
