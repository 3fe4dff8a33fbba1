"""TRC-* end to end on the real reference service: the W3C cases are in the
report by name, the probes stay bounded, and the correlation header's name
really comes from the profile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CliRun, variant_profile

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliRun]
REPO = Path(__file__).resolve().parents[2]
VECTOR_NAMES = {
    v["name"] for v in yaml.safe_load((REPO / "suites/w3c_trace_context_vectors.yaml").read_text())
}


def _results(run: CliRun) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in run.report["results"] if r["id"].startswith("TRC-")}


def test_reference_passes_and_lists_every_w3c_case_by_name(run_cli: RunCli) -> None:
    run = run_cli("-k", "test_traces")
    results = _results(run)
    decided = {i: r["status"] for i, r in results.items() if i not in ("TRC-001", "TRC-013")}  # 013: n/a
    assert decided == dict.fromkeys(decided, "passed") and len(decided) == 11, run.stdout[-3000:]
    assert results["TRC-013"]["status"] == "skipped"
    listed = {
        case["case"]
        for r in results.values()
        for note in r["evidence"]
        for case in note.get("cases", [])
        if "w3c" in case
    }
    assert listed == VECTOR_NAMES
    (unique,) = results["TRC-009"]["evidence"]
    assert unique["answered"] == unique["ids"] == unique["distinct"] == 1000
    assert unique["seconds"] < 20


def test_correlation_header_name_comes_from_the_profile(run_cli: RunCli, tmp_path: Path) -> None:
    """A profile naming X-Request-ID (common in practice) against a service that
    answers X-Correlation-ID: the header join and the echo fail; the rules that
    can read the id from the logs instead (generated, replaced, unique) still pass."""
    profile = variant_profile(tmp_path, lambda d: d["correlation"].update(header="X-Request-ID"))
    run = run_cli("-k", "test_traces", profile=profile)
    results = _results(run)
    failed = {i for i, r in results.items() if r["status"] == "failed"}
    assert failed == {"TRC-005", "TRC-007"}, run.stdout[-3000:]
    assert "has no X-Request-ID header" in results["TRC-005"]["message"]
    assert results["TRC-009"]["status"] == "passed"
    (unique,) = results["TRC-009"]["evidence"]
    assert unique["read_from"].startswith("request_completed log lines")
