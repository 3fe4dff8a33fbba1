"""PII suite end to end: leaks into metric labels fail the metric channels' ids, a
report never contains the canaries it found, throttled canary requests are noted.

The ``REFSVC_BREAK`` rows of tests/integration/variants.yaml cover the log and
span variants; ``user-id-label`` belongs to the metric family's rows, so the
PII view of it is here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance import load_profile
from conformance._sections.pii import KEY, PiiSection
from conformance.collect._canaries import CanaryGenerator, plan_injection

from .conftest import REFERENCE_PROFILE, CliRun, variant_profile

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliRun]
EVERY_LEAK = "log-raw-email,log-authorization,log-card-in-prompt,email-span-attribute,user-id-label"


def _results(run: CliRun) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in run.report["results"] if r["id"].startswith("PII-")}


def _canary_texts(run: CliRun) -> set[str]:
    """Every form of every canary of the run, regenerated from the seed in its report."""
    (seed,) = {note["seed"] for note in _results(run)["PII-001"]["evidence"] if "seed" in note}
    profile = load_profile(REFERENCE_PROFILE)
    section: PiiSection = profile.section(KEY)
    plan = plan_injection(profile.endpoints, section.injection, CanaryGenerator(seed))
    return {form.text for canary in plan.canaries for form in canary.forms()}


def test_leak_into_metric_labels_fails_the_metric_channels(run_cli: RunCli) -> None:
    run = run_cli("-k", "test_pii", env={"REFSVC_BREAK": "user-id-label"})
    results = _results(run)
    failed = {i for i, r in results.items() if r["status"] == "failed"}
    assert failed == {"PII-003", "PII-004"}, run.stdout[-3000:]
    assert results["PII-003"]["message"].split("first: ")[1].startswith("metrics (/metrics exposition): ")
    assert "user_requests_total{user_id} label value" in results["PII-003"]["message"]
    assert (
        results["PII-004"]["message"]
        .split("first: ")[1]
        .startswith("Prometheus (series, label values API): ")
    )


def test_the_report_never_contains_the_pii_it_found(run_cli: RunCli) -> None:
    run = run_cli("-k", "test_pii", env={"REFSVC_BREAK": EVERY_LEAK})
    failed = {i for i, r in _results(run).items() if r["status"] == "failed"}
    assert failed == {"PII-001", "PII-002", "PII-003", "PII-004", "PII-007"}, run.stdout[-3000:]
    canaries = _canary_texts(run)
    service_output = (run.report_dir / "work" / "service" / "stdout.log").read_text()
    assert any(text in service_output for text in canaries), (
        "the variants leaked nothing: the test proves nothing"
    )
    reports = [
        p
        for p in run.report_dir.rglob("*")
        if p.is_file() and "work" not in p.relative_to(run.report_dir).parts
    ]
    assert any(p.name == "conformance-report.json" for p in reports)
    for path in [*reports, Path("stdout"), Path("stderr")]:
        text = {"stdout": run.stdout, "stderr": run.stderr}.get(str(path)) or path.read_text(errors="replace")
        leaked = sorted(c for c in canaries if c in text)
        assert not leaked, f"{path} contains {len(leaked)} canary form(s)"


def test_throttled_canary_requests_are_searched_and_noted(run_cli: RunCli, tmp_path: Path) -> None:
    """Twelve logins on one client key in one 5 s window: the auth limit (10) answers two with 429."""

    def only_logins(data: dict[str, Any]) -> None:
        login_rules = [r for r in data["pii"]["redacted_fields"] if r["endpoint"] == "login"]
        data["pii"].update(rounds=12, clients=1, endpoints=["login"], redacted_fields=login_rules)

    profile = variant_profile(tmp_path, only_logins)
    run = run_cli("-k", "test_pii", profile=profile)
    results = _results(run)
    assert {r["status"] for r in results.values()} == {"passed"}, run.stdout[-3000:]
    (note,) = [n for n in results["PII-001"]["evidence"] if "statuses" in n]
    assert note["statuses"] == {"200": 10, "429": 2}
    assert "2 canary request(s) were answered 429" in note["caveat"]
