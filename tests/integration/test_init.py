"""``conformance init`` on the real reference service: the profile it writes validates, and a
conformance run with it passes everything it configures (what init cannot configure is skipped
with a reason; families whose suite does not exist yet are the only "not evaluated")."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from conformance import load_profile
from conformance._ports import free_port
from conformance._process import ManagedProcess
from conformance._profile import NOT_INTERNAL_REASON
from conformance._wait import wait_until

from .conftest import REPO, CliRun, cli_env

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliRun]


def start_reference_service(tmp_path: Path) -> tuple[ManagedProcess, int]:
    port = free_port()
    service = ManagedProcess(
        "reference-service",
        [sys.executable, "-m", "reference_service", "--host", "127.0.0.1", "--port", str(port)],
        stdout_path=tmp_path / "service.stdout",
        stderr_path=tmp_path / "service.stderr",
        env=cli_env(),
        cwd=REPO / "fixtures",
    )
    service.start()

    def ready() -> tuple[bool | None, str]:
        if service.poll() is not None:
            raise AssertionError(f"the reference service exited: {service.stderr_tail()}")
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code
        except httpx.HTTPError as exc:
            return None, type(exc).__name__
        return (True if status == 200 else None), f"HTTP {status}"

    try:
        wait_until(ready, awaited="the reference service to be ready", timeout=30)
    except BaseException:
        service.stop()
        raise
    return service, port


def test_init_on_the_reference_service_writes_a_profile_that_passes(run_cli: RunCli, tmp_path: Path) -> None:
    service, port = start_reference_service(tmp_path)
    out = tmp_path / "profile" / "conformance.yaml"
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "conformance.cli",
                "init",
                "--url",
                f"http://127.0.0.1:{port}",
                "--log-file",
                str(tmp_path / "service.stdout"),
                "--command",
                f"{{python}} -m reference_service --host 127.0.0.1 --port {port}",
                "--cwd",
                str(REPO / "fixtures"),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=cli_env(),
        )
    finally:
        service.stop()
    assert done.returncode == 0, done.stderr
    assert f"conformance: {out} validates" in done.stdout

    profile = load_profile(out)
    assert profile.service.command[-1] == "{port}" and profile.service.port is None
    assert profile.service.ready.path == "/health/ready"
    assert {"health", "health_live", "health_ready"} <= {e.name for e in profile.endpoints}
    assert profile.logs.stream == "stdout" and profile.logs.request_completed_message == "request_completed"
    assert profile.correlation_header == "X-Correlation-ID"
    assert profile.client_header == "X-API-Key"  # found by comparing X-RateLimit-Remaining per key
    assert profile.section("traces").probe_endpoint.name == "health_live"  # the one without a rate limit
    required = {m["name"] for m in yaml.safe_load(out.read_text())["metrics"]["required"]}
    assert {"http_requests_total", "http_request_duration_seconds", "service_health_status"} <= required
    text = out.read_text()
    assert "# a new X-API-Key value got a fresh quota on /health" in text

    run = run_cli("--mode", "local", profile=out)
    statuses = run.statuses()
    failed = {i for i, s in statuses.items() if s == "failed"}
    errors = {r["id"]: r["message"] for r in run.report["results"] if r["status"] == "error"}
    assert failed == set(), run.stdout[-4000:]
    # Only requirements no suite decides yet may be "not evaluated"; none may be a harness error.
    assert all(m == "not evaluated: no suite test decided it in this run" for m in errors.values()), errors
    skipped = {r["id"]: r["message"] for r in run.report["results"] if r["status"] == "skipped"}
    assert {"RL", "ALR"} <= {i.partition("-")[0] for i in skipped}
    implied = {"MET-011": f"not applicable: {NOT_INTERNAL_REASON}"}  # metrics.internal is false
    assert all(
        m.startswith("not applicable: not configured yet: conformance init") or implied.get(i) == m
        for i, m in skipped.items()
    ), skipped
    assert {"LOG", "TRC", "MET"} <= {i.partition("-")[0] for i, s in statuses.items() if s == "passed"}
    assert run.returncode == (3 if errors else 0)


def test_init_command_starts_the_service_and_check_finds_a_renamed_field(tmp_path: Path) -> None:
    """``--command``: init starts the service itself and stops it; ``--check`` re-probes the
    written profile (no difference), then names a field the profile got wrong."""
    out = tmp_path / "conformance.yaml"

    def conformance(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conformance.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=cli_env(),
            check=False,
        )

    done = conformance(
        "init",
        "--command",
        "{python} -m reference_service --host 127.0.0.1 --port {port}",
        "--cwd",
        str(REPO / "fixtures"),
        "--out",
        str(out),
        "--otlp-wait",
        "3",
    )
    assert done.returncode == 0, done.stderr
    profile = load_profile(out)
    assert profile.service.command[-1] == "{port}" and profile.service.ready.path == "/health/ready"
    assert profile.correlation_header == "X-Correlation-ID"
    data = yaml.safe_load(out.read_text())
    assert data["telemetry"]["otlp_protocol"] == "http/protobuf" and "spans" not in data["telemetry"]
    assert "# over OTLP while probing: " in out.read_text()

    same = conformance("init", "--check", str(out), "--otlp-wait", "3")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "still matches the service" in same.stdout

    out.write_text(out.read_text().replace("logs:\n", "logs:\n  fields: {correlation_id: request_id}\n", 1))
    moved = conformance("init", "--check", str(out), "--otlp-wait", "3")
    assert moved.returncode == 1, moved.stdout + moved.stderr
    assert (
        "logs.fields.correlation_id: the profile says 'request_id', the service now logs 'correlation_id'"
        in moved.stdout
    )


def test_ctrl_c_during_init_stops_the_service(tmp_path: Path) -> None:
    """The service init started is stopped when init is interrupted (here while it waits for OTLP)."""
    import os
    import signal

    pidfile = tmp_path / "service.pid"
    command = (
        f"sh -c 'echo $$ > {pidfile}; exec {sys.executable} -m http.server --bind 127.0.0.1 {{port}}'"
    )
    init = subprocess.Popen(
        [sys.executable, "-m", "conformance.cli", "init", "--command", command,
         "--out", str(tmp_path / "p.yaml"), "--otlp-wait", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )  # fmt: skip
    try:
        def started() -> tuple[int | None, str]:
            text = pidfile.read_text().strip() if pidfile.exists() else ""
            return (int(text) if text else None), "no pid file yet"

        pid = wait_until(started, awaited="the service to start", timeout=30)
        # The traffic is quick; init then waits up to 60 s for spans that never come.
        wait_until(lambda: (True if init.poll() is None else None, ""), awaited="init to run", timeout=5)
        os.kill(init.pid, signal.SIGINT)
        init.wait(timeout=30)
    finally:
        if init.poll() is None:
            init.kill()
    assert not (tmp_path / "p.yaml").exists()

    def gone() -> tuple[bool | None, str]:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True, ""
        return None, f"pid {pid} still runs"

    wait_until(gone, awaited="the service to be stopped", timeout=15)
