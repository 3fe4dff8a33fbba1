"""The whole path, profile → stack → traffic → suites → report, on the real
reference service: it passes; each broken variant fails exactly its
requirement; bad starts end in one line with nothing left running."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from conformance._profile import schema_path
from conformance._wait import wait_until

from .conftest import CliRun, processes_with_run_id, start_cli_run, variant_profile

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliRun]
NOT_APPLICABLE = {"TRC-013", "MET-011", "SEM-004"}


def test_reference_service_conforms(run_cli: RunCli) -> None:
    run = run_cli()
    report = run.report
    assert run.returncode == 0, run.stdout + run.stderr
    # Everything passes but what is not applicable: TRC-013 (nothing excluded from tracing, declared),
    # MET-011 (implied: the profile does not say /metrics is internal) and SEM-004 (declared: the
    # service pushes no OTLP metrics).
    assert run.ids_with("passed") == set(run.statuses()) - NOT_APPLICABLE, run.stdout
    assert run.ids_with("skipped") == NOT_APPLICABLE
    jsonschema.Draft202012Validator(
        json.loads(schema_path("conformance-report.schema.json").read_text())
    ).validate(report)
    components = {c["name"]: c for c in report["stack"]["components"]}
    assert report["stack"]["mode"] == "local"
    assert components["prometheus"]["kind"] == "process"
    assert components["prometheus"]["version"].startswith("2.")
    assert components["otlp-receiver"]["stats"]["spans"]["received"] > 0
    assert (run.report_dir / "junit.xml").exists() and (run.report_dir / "summary.md").exists()
    assert any((run.report_dir / "allure-results").glob("*-result.json"))
    assert "conformance: PASSED" in run.stdout


VARIANTS = yaml.safe_load((Path(__file__).with_name("variants.yaml")).read_text())


@pytest.mark.parametrize("case", VARIANTS, ids=[v["variant"] for v in VARIANTS])
def test_broken_variant_fails_its_requirement(run_cli: RunCli, case: dict[str, Any]) -> None:
    keyword = " or ".join(f"test_{suite}" for suite in case["suites"])
    run = run_cli("-k", keyword, env={"REFSVC_BREAK": case["variant"]})
    decided = {r["id"]: r for r in run.report["results"] if not r["message"].startswith("not evaluated")}
    failed = {i for i, r in decided.items() if r["status"] == "failed"}
    errors = {i: r["message"] for i, r in decided.items() if r["status"] == "error"}
    # A run that could not start its stack prints nothing to stdout: its one stderr line says why.
    assert failed == set(case["fails"]), run.stdout[-3000:] + run.stderr[-1500:]
    # What the variant leaves nothing to examine for is error, never passed (rows' errors:).
    assert set(errors) == set(case.get("errors", [])), errors
    # A failed MUST exits 1; else requirements that -k left out are "not evaluated" errors: exit 3.
    must_failed = any(decided[i]["level"] == "MUST" for i in failed)
    left_out = len(decided) < len(run.report["results"])
    assert run.returncode == (1 if must_failed else 3 if left_out else 0)


def test_grpc_export_is_received(run_cli: RunCli, tmp_path: Path) -> None:
    profile = variant_profile(tmp_path, lambda d: d["telemetry"].update(otlp_protocol="grpc"))
    run = run_cli("-k", "test_exports or test_traces", profile=profile)
    traces = {i: s for i, s in run.statuses().items() if i.startswith("TRC-") and s != "skipped"}
    assert set(traces.values()) == {"passed"}, run.stdout[-3000:]
    stats = {c["name"]: c for c in run.report["stack"]["components"]}["otlp-receiver"]["stats"]
    assert stats["requests"]["grpc"] > 0 and stats["spans"]["received"] > 0


def test_service_crashing_at_start_is_one_line_and_exit_3(run_cli: RunCli) -> None:
    run = run_cli(env={"REFSVC_BREAK": "crash-at-start"})
    assert run.returncode == 3
    assert run.last_stderr_line.startswith(
        "conformance: error: the service exited with code 3 during start-up"
    )
    assert run.ids_with("error") == set(run.statuses()) - NOT_APPLICABLE  # skipped, not error
    assert run.report["stack"]["error"].startswith("the service exited with code 3")


def test_service_never_ready_is_one_line_and_exit_3(run_cli: RunCli, tmp_path: Path) -> None:
    profile = variant_profile(tmp_path, lambda d: d["service"]["ready"].update(timeout=3))
    run = run_cli(env={"REFSVC_BREAK": "never-ready"}, profile=profile)
    assert run.returncode == 3
    assert run.last_stderr_line.startswith("conformance: error: the service never became ready: GET ")
    assert "answered 503 after 3s" in run.last_stderr_line


def test_command_that_does_not_exist(run_cli: RunCli) -> None:
    run = run_cli("--service-command", "/nonexistent/bin/service --port {port}")
    assert run.returncode == 3
    assert run.last_stderr_line.startswith(
        "conformance: error: cannot start the service (/nonexistent/bin/service)"
    )


def test_broken_profile_is_one_line_and_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    profile = variant_profile(tmp_path, lambda d: d["endpoints"][0].update(method="FETCH"))
    run = run_cli(profile=profile)
    assert run.returncode == 2
    assert run.stderr.strip() == (
        f"conformance: error: {profile}: endpoints[0].method: must be one of GET, POST, PUT, PATCH, DELETE, "
        "HEAD, OPTIONS; got 'FETCH'"
    )


def test_service_port_override(run_cli: RunCli) -> None:
    from conformance._ports import free_port

    port = free_port()
    run = run_cli("--service-port", str(port), "-k", "test_exports")
    service = {c["name"]: c for c in run.report["stack"]["components"]}["service"]
    assert service["url"] == f"http://127.0.0.1:{port}"
    assert run.statuses()["MET-001"] == "passed"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_stops_everything(tmp_path: Path, sig: signal.Signals) -> None:
    proc, report_dir = start_cli_run(tmp_path)
    assert proc.stderr is not None
    run_id = proc.stderr.readline().split()[2].rstrip(":")
    stdout_log = report_dir / "work" / "service" / "stdout.log"

    def service_logging() -> tuple[Any, str]:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the signal: {proc.communicate()}")
        size = stdout_log.stat().st_size if stdout_log.exists() else 0
        return (True if size > 0 else None), f"{size} bytes of service output"

    wait_until(service_logging, awaited="the service to start logging", timeout=60)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err
    assert processes_with_run_id(run_id) == []
