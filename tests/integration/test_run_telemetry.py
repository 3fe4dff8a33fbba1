"""Local mode with the collector and Jaeger in the telemetry path, and without them.

With the binaries of ``scripts/build-telemetry`` built (these tests fail, not
skip, when they are not) a local run exports through the collector and reads
traces back from Jaeger's query API; ``OBSCONFORM_TELEMETRY=embedded`` and
unbuilt binaries keep the embedded stack, and the report and the start line
say why. A collector that exits at start-up is one line and exit 3.
"""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, CliRun

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliRun]
#: TRC-001 (SERVER spans exported) and the metrics-endpoint requirements: a short run.
EXPORTS = ("-k", "test_exports")


#: The checkout's script (the package's own path points into site-packages when tox installs a wheel).
BUILD_SCRIPT = REPO / "scripts" / "build-telemetry"


def built_paths() -> dict[str, Path]:
    proc = subprocess.run(
        [str(BUILD_SCRIPT), "--print-paths"], capture_output=True, text=True, timeout=60, check=False
    )
    paths = {k: Path(v) for k, v in (line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)}
    if proc.returncode != 0 or not {"otelcol", "jaeger"} <= paths.keys():
        pytest.fail(f"run scripts/build-telemetry first: {proc.stderr.strip()}", pytrace=False)
    return paths


def components(run: CliRun) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in run.report["stack"]["components"]}


def trc_001(run: CliRun) -> dict[str, Any]:
    return next(r for r in run.report["results"] if r["id"] == "TRC-001")


def test_a_local_run_goes_through_the_collector_and_jaeger(run_cli: RunCli) -> None:
    paths = built_paths()
    run = run_cli(*EXPORTS, "--mode", "local", env={"OBSCONFORM_TELEMETRY": "auto"})
    stack = components(run)
    collector, jaeger = stack["otel-collector"], stack["jaeger"]
    assert (collector["binary"], jaeger["binary"]) == (str(paths["otelcol"]), str(paths["jaeger"]))
    assert collector["version"] == "v0.161.0" and jaeger["version"] == "v1.75.0"
    assert set(collector["ports"]) == {"otlp_grpc", "otlp_http", "health", "prometheus_exporter"}
    # The service exported to the collector (the reference profile's protocol is http/protobuf) ...
    assert stack["service"]["otlp_endpoint"] == f"http://127.0.0.1:{collector['ports']['otlp_http']}"
    # ... which forwarded everything to the harness's receiver ...
    assert stack["otlp-receiver"]["stats"]["spans"]["received"] > 0
    assert stack["otlp-receiver"]["fed_by"].startswith("otel-collector")
    # ... and TRC-001 read the spans back from Jaeger's query API.
    query = f"Jaeger query API at http://127.0.0.1:{jaeger['ports']['query_http']}/api/v3/traces"
    assert run.report["stack"]["trace_store"] == query
    result = trc_001(run)
    assert result["status"] == "passed", result
    assert result["evidence"][0]["store"] == query and result["examined"]["spans"] > 0
    prometheus_config = (run.report_dir / "work" / "prometheus" / "prometheus.yml").read_text()
    assert f"127.0.0.1:{collector['ports']['prometheus_exporter']}" in prometheus_config
    assert "collector v0.161.0 and Jaeger v1.75.0 in the telemetry path" in run.stderr.splitlines()[0]


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"OBSCONFORM_TELEMETRY": "embedded"}, "OBSCONFORM_TELEMETRY=embedded"),
        ({"OBSCONFORM_BIN_CACHE": "/nonexistent/obsconform-bin"}, "their binaries are not built"),
    ],
    ids=["embedded", "not-built"],
)
def test_without_the_collector_the_embedded_stack_runs_and_says_why(
    run_cli: RunCli, env: dict[str, str], reason: str
) -> None:
    run = run_cli(*EXPORTS, "--mode", "local", env=env)
    stack = components(run)
    for name in ("otel-collector", "jaeger"):
        assert stack[name]["status"] == "not running", stack[name]
        assert stack[name]["reason"].startswith(reason), stack[name]
    receiver = stack["otlp-receiver"]
    assert stack["service"]["otlp_endpoint"] == receiver["description"].split(" at ", 1)[1].split(" ")[0]
    assert receiver["trace_store"] is True and receiver["stats"]["spans"]["received"] > 0
    assert run.report["stack"]["trace_store"].startswith("embedded OTLP receiver at http://127.0.0.1:")
    assert trc_001(run)["status"] == "passed"
    assert trc_001(run)["evidence"][0]["store"].startswith("embedded OTLP receiver")
    assert f"collector and Jaeger not running: {reason}" in run.stderr.splitlines()[0]


def test_a_collector_that_exits_at_start_up_is_one_line_and_exit_3(run_cli: RunCli, tmp_path: Path) -> None:
    """A bin cache where the collector is a script that fails like a bad config does."""
    paths = built_paths()
    cache = tmp_path / "bin-cache"
    for name, path in paths.items():
        copy = cache / path.parent.name / path.name
        copy.parent.mkdir(parents=True)
        if name == "otelcol":
            copy.write_text(
                "#!/bin/sh\necho 'info starting' >&2\n"
                'echo "error: failed to get config: cannot unmarshal the configuration" >&2\nexit 1\n'
            )
            copy.chmod(copy.stat().st_mode | stat.S_IXUSR)
        else:
            copy.symlink_to(path)
    # What scripts/build-telemetry writes for a harness installed without this checkout (tox's wheel).
    (cache / "current").write_text(
        "".join(f"{name}={cache / path.parent.name / path.name}\n" for name, path in paths.items())
    )
    run = run_cli(*EXPORTS, "--mode", "local", env={"OBSCONFORM_BIN_CACHE": str(cache)})
    assert run.returncode == 3, run.stderr
    assert run.last_stderr_line.startswith(
        "conformance: error: the OpenTelemetry Collector (otelcol-obsconform) exited with code 1 during "
        "start-up; last log lines: info starting | error: failed to get config"
    ), run.stderr
    assert run.report["stack"]["error"].startswith("the OpenTelemetry Collector")
