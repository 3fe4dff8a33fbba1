"""Nothing a run starts survives it: signals at each phase of a run, and
SIGKILL (which no handler sees) followed by ``conformance clean``.

The collector and Jaeger carry the run id like every process the harness
starts, so ``processes_with_run_id`` finds them too; the two phases of their
start-up need the binaries of ``scripts/build-telemetry`` (as local mode does)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance._wait import wait_until

from .conftest import cli_env, processes_with_run_id, start_cli_run

pytestmark = pytest.mark.integration


def _phase_markers(report_dir: Path) -> dict[str, Callable[[], bool]]:
    """Observable points of a run, from the files it writes as it goes."""
    work = report_dir / "work"
    return {
        # Jaeger is launched first, the collector once Jaeger answers (when their binaries are built).
        "jaeger-starting": lambda: (work / "telemetry" / "jaeger.yaml").exists(),
        "collector-starting": lambda: (work / "telemetry" / "otel-collector.yaml").exists(),
        "prometheus-starting": lambda: (work / "prometheus" / "prometheus.yml").exists(),
        "service-up": lambda: (
            (work / "service" / "stdout.log").exists()
            and (work / "service" / "stdout.log").stat().st_size > 0
        ),
        "suites-running": lambda: (report_dir / "allure-results").exists(),
    }


def _read_run_id(proc: subprocess.Popen[str]) -> str:
    """The CLI's first stderr line is ``conformance: run <id>: starting …``."""
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith("conformance: run "), first
    return first.split()[2].rstrip(":")


def _wait_for_phase(proc: subprocess.Popen[str], marker: Callable[[], bool], phase: str) -> None:
    def probe() -> tuple[bool | None, str]:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before phase {phase}: {proc.communicate()}")
        return (True if marker() else None), f"phase {phase} not reached"

    wait_until(probe, awaited=f"phase {phase}", timeout=60, interval=0.01, max_interval=0.05)


@pytest.mark.parametrize(
    "phase", ["jaeger-starting", "collector-starting", "prometheus-starting", "service-up", "suites-running"]
)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_signal_at_each_phase_leaves_nothing(tmp_path: Path, phase: str, sig: signal.Signals) -> None:
    proc, report_dir = start_cli_run(tmp_path)
    try:
        run_id = _read_run_id(proc)
        _wait_for_phase(proc, _phase_markers(report_dir)[phase], phase)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:  # a failed step must not leave the run behind for the next test to trip over
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    if sig == signal.SIGKILL:
        # No handler sees SIGKILL: whatever survived is reaped by `conformance clean` (and by the next run).
        clean = subprocess.run(
            [sys.executable, "-m", "conformance.cli", "clean"],
            capture_output=True,
            text=True,
            timeout=60,
            env=cli_env(),
        )
        assert clean.returncode == 0, clean.stderr
    else:
        assert proc.returncode in (130, 3), out + err
    assert processes_with_run_id(run_id) == [], (phase, sig)
