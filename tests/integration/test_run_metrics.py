"""The MET suite end to end, beyond the broken variants in variants.yaml (embedded stack, --mode local)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import CliRun, variant_profile

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliRun]


def test_internal_metrics_served_on_the_public_port_fail_met_011(run_cli: RunCli, tmp_path: Path) -> None:
    """The reference service serves /metrics on its public port; a profile that
    says metrics are internal must fail MET-011 there, and only MET-011."""
    profile = variant_profile(tmp_path, lambda d: d["metrics"].update(internal=True))
    run = run_cli("--mode", "local", "-k", "test_metrics", profile=profile)
    met = {i: s for i, s in run.statuses().items() if i.startswith("MET-") and i != "MET-001"}
    assert met.pop("MET-011") == "failed", run.stdout[-3000:]
    assert set(met.values()) == {"passed"}, run.stdout[-3000:]
    result = next(r for r in run.report["results"] if r["id"] == "MET-011")
    finding = next(e for e in result["evidence"] if e.get("requirement") == "MET-011")
    assert finding["status_code"] == 200 and finding["serves_metrics"] is True
    assert run.returncode == 1


def test_probe_evidence_names_both_vantage_points(run_cli: RunCli) -> None:
    run = run_cli("--mode", "local", "-k", "test_metrics")
    result = next(r for r in run.report["results"] if r["id"] == "MET-008")
    assert result["status"] == "passed", run.stdout[-3000:]
    notes = result["evidence"][0]
    assert notes["probe_requests"] == 200
    assert sum(half["throttled"] for half in notes["halves"]) == 0  # spread over client identities
    assert all(n > 0 for n in notes["series_in_prometheus"].values())
    assert {row["source"] for row in result["evidence"][1]["top_growth"]} <= {"/metrics", "Prometheus"}
    met_002 = next(r for r in run.report["results"] if r["id"] == "MET-002")
    assert met_002["evidence"][0]["promtool"].startswith("local promtool 2.")
