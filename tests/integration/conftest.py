"""Integration tier: run the real CLI against the real reference service.

Each run is a separate ``conformance run`` process with its own stack
(service process, Prometheus, OTLP receiver). After every run we check that
nothing carrying the run's id (``OBSCONFORM_RUN_ID``) is still alive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
REFERENCE_PROFILE = REPO / "fixtures/reference_service/conformance.yaml"
RUN_TIMEOUT = 180


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    report_dir: Path

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.report_dir / "conformance-report.json").read_text())
        return data

    def statuses(self) -> dict[str, str]:
        return {r["id"]: r["status"] for r in self.report["results"]}

    def ids_with(self, status: str) -> set[str]:
        return {i for i, s in self.statuses().items() if s == status}

    @property
    def last_stderr_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def processes_with_run_id(run_id: str) -> list[str]:
    """Live (non-zombie) processes whose environment carries ``run_id``."""
    found = []
    needle = f"OBSCONFORM_RUN_ID={run_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {cmdline[:120]}")
        except OSError:
            continue
    return found


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "REFSVC_"))}
    env.update(extra or {})
    return env


def variant_profile(
    tmp_path: Path, changes: Callable[[dict[str, Any]], None], source: Path = REFERENCE_PROFILE
) -> Path:
    """A copy of ``source`` (the reference profile) in tmp_path with ``changes`` applied; its
    relative paths (service.cwd, rule files) are made absolute so the copy still finds them."""
    data = yaml.safe_load(source.read_text())
    data["service"]["cwd"] = str(REPO / "fixtures")
    prom = data.get("prometheus", {})
    for key in ("rule_files", "rule_tests"):
        prom[key] = [str(source.parent / f) for f in prom.get(key, [])]
    changes(data)
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cli_run(
    tmp_path: Path, *args: str, env: Mapping[str, str] | None = None, profile: Path = REFERENCE_PROFILE
) -> CliRun:
    """``conformance run`` in ``tmp_path`` (report in ``tmp_path/report``); asserts nothing of
    the run is left alive."""
    report_dir = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--profile", str(profile),
         "--report-dir", str(report_dir), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=cli_env(env),
        cwd=tmp_path,
    )  # fmt: skip
    result = CliRun(proc.returncode, proc.stdout, proc.stderr, report_dir)
    report_file = report_dir / "conformance-report.json"
    if report_file.exists():
        leftovers = processes_with_run_id(result.report["run_id"])
        assert not leftovers, f"the run left processes behind: {leftovers}"
    return result


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., CliRun]:
    def run(*args: str, env: Mapping[str, str] | None = None, profile: Path = REFERENCE_PROFILE) -> CliRun:
        return cli_run(tmp_path, *args, env=env, profile=profile)

    return run


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli_run(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """``conformance run`` on the reference profile as a background process (local
    mode, pipes open), for tests that signal or kill it mid-run.

    SIGINT gets its default disposition in the child: a test runner started in the
    background of a non-interactive shell (``cmd &``, nohup) inherits SIGINT as
    ignored, and a process that inherits it ignored keeps ignoring Ctrl-C, as it
    should; the tests want to see what an interactive Ctrl-C does.
    """
    report_dir = tmp_path / "report"
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance.cli", "run", "--profile", str(REFERENCE_PROFILE),
         "--report-dir", str(report_dir), "--mode", "local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        cwd=tmp_path,
        text=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    return proc, report_dir
