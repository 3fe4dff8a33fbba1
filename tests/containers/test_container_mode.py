"""Container mode on a real engine: the reference service, Prometheus and the
harness's receiver as containers on a user-defined network give the same
verdicts as local mode; failures are reported like local ones; nothing is left
after a run, after SIGTERM, and (after reaping) after SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance._wait import wait_until
from conformance.stack._docker import LABEL_HARNESS, reap_container_leftovers

from .conftest import CONTAINER_ARGS, IMAGES, REFERENCE_PROFILE, CliRun, variant_profile

pytestmark = pytest.mark.containers

RunCli = Callable[..., CliRun]


def test_container_mode_gives_the_verdicts_of_local_mode(
    run_cli: RunCli, tmp_path: Path, record_property: Callable[[str, Any], None]
) -> None:
    """Local mode's verdicts on the reference profile are pinned by
    tests/integration/test_run_reference.py::test_reference_service_conforms (every
    requirement passes but TRC-013, MET-011 and SEM-004, not applicable) and stable over 20 runs
    (README, Guarantees); container mode must give exactly those, without a second full run here."""
    containers = run_cli(report_dir=tmp_path / "containers")
    assert containers.report["stack"]["mode"] == "containers", containers.stderr[-2000:]
    statuses = containers.statuses()
    not_applicable = {"TRC-013", "MET-011", "SEM-004"}
    assert {i for i, s in statuses.items() if s != "passed"} == not_applicable, containers.stdout[-3000:]
    assert {statuses[i] for i in not_applicable} == {"skipped"}
    assert containers.returncode == 0
    assert "(containers mode; requested)" in containers.stderr.splitlines()[0]

    stack = containers.report["stack"]
    components = {c["name"]: c for c in stack["components"]}
    assert components["service"]["image"] == IMAGES["service"]
    # The service exports to the collector, which feeds Jaeger (the trace store) and the receiver.
    assert components["service"]["otlp_endpoint"] == "http://otel-collector:4318"
    assert components["prometheus"]["image"] == IMAGES["prometheus"]
    assert components["prometheus"]["version"].startswith("2.")
    assert components["otlp-receiver"]["stats"]["spans"]["received"] > 0
    for name in ("service", "prometheus", "otlp-receiver", "otel-collector", "jaeger"):
        assert components[name]["kind"] == "container"
        assert components[name]["status"] == "running"  # described before the stack stops
        assert all(addr.startswith("127.0.0.1:") for addr in components[name]["published"].values())
    collector, jaeger = components["otel-collector"], components["jaeger"]
    assert (collector["image"], jaeger["image"]) == (IMAGES["collector"], IMAGES["jaeger"])
    assert (collector["version"], jaeger["version"]) == ("v0.161.0", "v1.75.0")
    assert jaeger["url"].startswith("http://127.0.0.1:")
    assert stack["trace_store"].startswith("Jaeger"), stack["trace_store"]
    # The collector's own metrics, read at the end of the run: everything accepted was sent on.
    pipeline = collector["pipeline"]
    assert pipeline["accepted"]["spans"] > 0 and pipeline["lost"] == 0, pipeline
    assert pipeline["problems"] == []
    record_property("container_stack_startup_seconds", stack["startup_seconds"])
    assert stack["startup_seconds"] > 0
    # The service's stdout (the log suites' input) was captured from the container.
    stdout = (containers.report_dir / "work" / "service" / "stdout.log").read_text()
    assert '"message": "request_completed"' in stdout


def test_a_broken_variant_fails_the_same_requirement_in_a_container(run_cli: RunCli, tmp_path: Path) -> None:
    profile = variant_profile(
        tmp_path,
        lambda d: d["containers"]["service"].update(env={"REFSVC_BREAK": "plain-text-log"}),
    )
    run = run_cli("-k", "test_logs or test_exports", profile=profile)
    decided = {
        r["id"]: r["status"] for r in run.report["results"] if not r["message"].startswith("not evaluated")
    }
    # The lines answering the malformed probes are plain text too: LOG-009 fails with LOG-001.
    failing = {i for i, s in decided.items() if s not in ("passed", "skipped")}
    assert failing == {"LOG-001", "LOG-009"}, run.stdout[-3000:]
    assert run.returncode == 1


def test_a_service_container_crashing_at_start_is_one_line_and_exit_3(
    run_cli: RunCli, tmp_path: Path
) -> None:
    profile = variant_profile(
        tmp_path,
        lambda d: d["containers"]["service"].update(env={"REFSVC_BREAK": "crash-at-start"}),
    )
    run = run_cli(profile=profile)
    assert run.returncode == 3, run.stderr[-2000:]
    assert "the service container exited with code 3 during start-up" in run.last_stderr_line
    assert "startup_failed" in run.last_stderr_line
    assert run.report["stack"]["mode"] == "containers"
    assert run.ids_with("passed") == set()


def test_a_missing_image_is_a_harness_error_naming_it(run_cli: RunCli) -> None:
    run = run_cli("--prometheus-image", "obsconform/no-such-image:0")
    assert run.returncode == 3
    assert "prometheus: image obsconform/no-such-image:0 is not present locally" in run.last_stderr_line


def test_a_collector_that_exits_at_start_is_an_error_naming_it_its_status_and_its_log(
    run_cli: RunCli,
) -> None:
    """Jaeger's image in the collector's place: a real binary that refuses the collector's config
    (it carries no ``health_check`` extension). run_cli checks that nothing is left behind."""
    run = run_cli("--collector-image", IMAGES["jaeger"])
    assert run.returncode == 3, run.stderr[-2000:]
    line = run.last_stderr_line
    assert "the otel-collector container is exited (exit code 1) during start-up; last log lines: " in line
    assert "health_check" in line, line
    assert run.ids_with("passed") == set()


def _containers_of(docker: Any, pid: int) -> list[Any]:
    return [
        c
        for c in docker.containers.list(all=True, filters={"label": LABEL_HARNESS})
        if c.labels.get(LABEL_HARNESS, "").startswith(f"{pid}:")
    ]


def _networks_of(docker: Any, pid: int) -> list[Any]:
    return [
        n
        for n in docker.networks.list(filters={"label": LABEL_HARNESS})
        if (n.attrs.get("Labels") or {}).get(LABEL_HARNESS, "").startswith(f"{pid}:")
    ]


def _start_run(tmp_path: Path) -> subprocess.Popen[str]:
    from ..integration.conftest import cli_env

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "run",
            "--profile",
            str(REFERENCE_PROFILE),
            "--report-dir",
            str(tmp_path / "report"),
            *CONTAINER_ARGS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
    )


def _wait_for_service_container(docker: Any, proc: subprocess.Popen[str]) -> None:
    def probe() -> tuple[bool | None, str]:
        names = [c.labels.get("obsconform.component") for c in _containers_of(docker, proc.pid)]
        return (True if "service" in names else None), f"containers: {names}"

    wait_until(probe, awaited="the run's service container", timeout=90)


def test_sigterm_mid_run_removes_every_container_and_the_network(docker: Any, tmp_path: Path) -> None:
    proc = _start_run(tmp_path)
    try:
        _wait_for_service_container(docker, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert _containers_of(docker, proc.pid) == []
    assert _networks_of(docker, proc.pid) == []


def test_containers_of_a_sigkilled_run_are_reaped(docker: Any, tmp_path: Path) -> None:
    proc = _start_run(tmp_path)
    try:
        _wait_for_service_container(docker, proc)
        proc.kill()  # no handler sees SIGKILL: the containers stay behind
        proc.communicate(timeout=30)
        left = {c.name for c in _containers_of(docker, proc.pid)}
        assert left, "expected the killed run's containers to remain until reaped"
        # (A container-mode run starting in parallel may reap some of them first: it reaps dead runs too.)
        reap_container_leftovers()
        assert _containers_of(docker, proc.pid) == []
        assert _networks_of(docker, proc.pid) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        reap_container_leftovers()


def test_auto_mode_picks_containers_when_the_engine_answers(run_cli: RunCli) -> None:
    run = run_cli("-k", "test_exports", mode_args=("--mode", "auto", *CONTAINER_ARGS[2:]))
    assert run.report["stack"]["mode"] == "containers"
    assert "(containers mode; auto: Docker engine" in run.stderr.splitlines()[0]
    assert run.statuses()["TRC-001"] == "passed", run.stdout[-2000:]


def test_external_mode_runs_the_suites_against_a_running_deployment(
    run_cli: RunCli, tmp_path: Path, docker: Any
) -> None:
    """The deployment is a container stack started here; the CLI only gets its URLs."""
    from conformance._profile import load_profile
    from conformance._sections.containers import with_image_overrides
    from conformance.stack._containers import ContainerStack

    profile = with_image_overrides(
        load_profile(REFERENCE_PROFILE),
        prometheus=IMAGES["prometheus"],
        receiver=IMAGES["receiver"],
        pull="never",
    )
    with ContainerStack(profile, tmp_path / "deployment") as stack:
        api = stack.trace_store.base_url
        external = {
            "service_url": stack.service_url,
            "prometheus_url": stack.prometheus_client(httpx_client()).base_url,
            "trace_store": {"kind": "receiver", "url": api},
            "log_file": str(stack.log_path("stdout")),
        }
        profile_path = variant_profile(tmp_path, lambda d: d["containers"].update(external=external))
        run = run_cli(
            "-k", "test_exports or test_metrics", profile=profile_path, mode_args=("--mode", "external")
        )
    assert run.report["stack"]["mode"] == "external", run.stderr[-2000:]
    statuses = {k: v for k, v in run.statuses().items() if k.startswith(("TRC-001", "MET-"))}
    assert statuses.pop("MET-011") == "skipped"  # the profile does not say /metrics is internal
    assert statuses and set(statuses.values()) == {"passed"}, run.stdout[-3000:]
    components = {c["name"]: c for c in run.report["stack"]["components"]}
    assert components["service"]["url"] == external["service_url"]


def httpx_client() -> Any:
    import httpx

    return httpx.Client(timeout=5.0)


def test_a_seed_profile_passes_in_containers(run_cli: RunCli) -> None:
    """baliblissed, the flavour furthest from the reference: /metrics only on an internal port
    (containers.service.metrics_port), health probes excluded from tracing, and HLT's second
    instance as a second container of the service image."""
    profile = REFERENCE_PROFILE.parents[1] / "profiles/baliblissed/conformance.yaml"
    run = run_cli(profile=profile)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    declared = set(yaml.safe_load(profile.read_text())["requirements"]["not_applicable"])
    assert run.ids_with("skipped") == declared
    assert run.ids_with("passed") == set(run.statuses()) - declared
    components = {c["name"]: c for c in run.report["stack"]["components"]}
    assert components["service"]["kind"] == "container"
    assert (run.report_dir / "work" / "service-dependency-failure" / "output.log").is_file()


def test_the_team_collector_pipeline_runs_in_containers_as_in_local_mode(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """tests/integration/test_run_team_pipeline.py's redaction case, in containers: the team's
    pipeline runs in a collector container of its own (the collector image) fed by ours, and the
    email the service puts in a span attribute is "removed by the team's collector pipeline"."""
    from ..integration.test_run_team_pipeline import TEAM_COLLECTOR

    (tmp_path / "team-collector.yaml").write_text(TEAM_COLLECTOR)

    def with_team_collector(data: dict[str, Any]) -> None:
        data["containers"]["service"].update(env={"REFSVC_BREAK": "email-span-attribute"})
        data.setdefault("telemetry", {})["collector_config"] = str(tmp_path / "team-collector.yaml")

    run = run_cli(
        "-k",
        "test_no_canary_in_spans or test_server_spans_have_stable_attributes",
        profile=variant_profile(tmp_path, with_team_collector),
    )
    result = next(r for r in run.report["results"] if r["id"] == "PII-002")
    assert result["status"] == "failed", (result, run.stderr[-2000:])
    views = {e["view"] for e in result["evidence"] if "view" in e}
    assert views == {"at the service; removed by the team's collector pipeline"}, result
    components = {c["name"]: c for c in run.report["stack"]["components"]}
    team = components["otel-collector-team"]
    assert (team["kind"], team["image"]) == ("container", IMAGES["collector"])
    assert team["processors"] == {"traces": ["memory_limiter", "redaction", "batch"]}
    assert team["pipeline"]["accepted"]["spans"] > 0, team
    after = components["otlp-receiver-after-pipeline"]
    assert after["stats"]["spans"]["received"] > 0, after
    # SEM-001 pairs each span after the pipeline with the receiver container's raw copy; redacting
    # emails breaks no HTTP attribute.
    sem = next(r for r in run.report["results"] if r["id"] == "SEM-001")
    assert sem["status"] == "passed", sem
    (note,) = [e for e in sem["evidence"] if "after_pipeline" in e]
    assert note["after_pipeline"]["paired_spans"] > 0 and note["after_pipeline"]["broken_by_pipeline"] == 0


def test_the_service_containers_log_is_capped_at_logs_max_bytes(run_cli: RunCli, tmp_path: Path) -> None:
    """As local mode caps its pipes (tests/hostile): the container's log past logs.max_bytes is
    read and counted, never kept, and the log requirements say which limit was hit."""

    def tiny_log_cap(data: dict[str, Any]) -> None:
        data.setdefault("logs", {})["max_bytes"] = 4096

    run = run_cli("-k", "test_logs", profile=variant_profile(tmp_path, tiny_log_cap))
    log_001 = next(r for r in run.report["results"] if r["id"] == "LOG-001")
    assert log_001["status"] == "error", log_001
    assert "logs.max_bytes" in log_001["message"], log_001["message"]
    service = next(c for c in run.report["stack"]["components"] if c["name"] == "service")
    dropped = service["output_dropped"]["stdout"]
    assert dropped["kept_bytes"] == 4096 and dropped["dropped_bytes"] > 0, dropped
    assert (run.report_dir / "work" / "service" / "stdout.log").stat().st_size == 4096
