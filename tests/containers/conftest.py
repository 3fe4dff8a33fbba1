"""Container tier: real Docker engine, real images (scripts/build-images), real CLI runs.

Skipped when no engine answers or the images are missing, unless
``OBSCONFORM_REQUIRE_CONTAINERS=1`` (CI sets it after starting the engine and
building the images): then a missing engine or image fails the tier instead.
Every run is checked for leftovers: no container or network labelled with its
run id may survive it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from conformance.stack._docker import LABEL_RUN_ID, docker_client, image_present, probe_engine

from ..integration.conftest import REFERENCE_PROFILE, CliRun, cli_env, processes_with_run_id, variant_profile

__all__ = ["CONTAINER_ARGS", "IMAGES", "REFERENCE_PROFILE", "CliRun", "docker_leftovers", "variant_profile"]

RUN_TIMEOUT = 300
BUILD_IMAGES = Path(__file__).resolve().parents[2] / "scripts" / "build-images"

#: The images CI builds (scripts/build-images); the profile names the service's.
IMAGES = {
    "prometheus": os.environ.get("OBSCONFORM_PROMETHEUS_IMAGE", "obsconform/prometheus:local"),
    "receiver": os.environ.get("OBSCONFORM_RECEIVER_IMAGE", "obsconform/otlp-receiver:local"),
    "service": os.environ.get("OBSCONFORM_SERVICE_IMAGE", "obsconform/reference-service:local"),
    # FROM scratch images of the binaries local mode runs (scripts/build-telemetry).
    "collector": os.environ.get("OBSCONFORM_COLLECTOR_IMAGE", "obsconform/otel-collector:local"),
    "jaeger": os.environ.get("OBSCONFORM_JAEGER_IMAGE", "obsconform/jaeger:local"),
}

#: What CI passes: the local images, and no pull attempts (no registry can be reached).
CONTAINER_ARGS = (
    "--mode",
    "containers",
    "--prometheus-image",
    IMAGES["prometheus"],
    "--receiver-image",
    IMAGES["receiver"],
    "--service-image",
    IMAGES["service"],
    "--collector-image",
    IMAGES["collector"],
    "--jaeger-image",
    IMAGES["jaeger"],
    "--pull",
    "never",
)


def _unavailable(reason: str) -> None:
    if os.environ.get("OBSCONFORM_REQUIRE_CONTAINERS") == "1":
        pytest.fail(f"container tier required but {reason}")
    pytest.skip(reason)


def _engine_env() -> dict[str, str]:
    """``DOCKER_HOST`` for this tier only: CI may run the engine on a private socket
    (``OBSCONFORM_DOCKER_HOST=unix:///...``) so that ``--mode auto`` in the other tiers,
    which run in the same worker processes, still finds no engine and picks local mode."""
    host = os.environ.get("OBSCONFORM_DOCKER_HOST", "")
    return {"DOCKER_HOST": host} if host else {}


@pytest.fixture(autouse=True)
def _engine(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _engine_env().items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="session")
def docker() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in _engine_env().items():
            patch.setenv(key, value)
        client = _engine_client()
    yield client
    client.close()


def _engine_client() -> Any:
    status = probe_engine(5.0)
    if not status.available:
        _unavailable(f"no Docker engine: {status.reason} (scripts/docker-engine start)")
    client = docker_client()
    missing = [image for image in IMAGES.values() if not image_present(client, image)]
    if missing:
        client.close()
        _unavailable(f"images missing: {', '.join(missing)} (scripts/build-images)")
    # The CI images are built from this checkout: one built before a change to the service or
    # the harness would test old code, so a stale image counts as missing.
    listing = subprocess.run(
        [sys.executable, str(BUILD_IMAGES), "--list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    stale = [line.split("\t")[0] for line in listing.stdout.splitlines() if line.endswith("stale or missing")]
    if listing.returncode != 0 or stale:
        client.close()
        _unavailable(
            f"images out of date with the checkout: {stale or listing.stderr[-300:]} (scripts/build-images)"
        )
    return client


def docker_leftovers(client: Any, run_id: str) -> list[str]:
    """Containers and networks still labelled with ``run_id``."""
    selector = {"label": f"{LABEL_RUN_ID}={run_id}"}
    found = [f"container {c.name} ({c.status})" for c in client.containers.list(all=True, filters=selector)]
    found += [f"network {n.name}" for n in client.networks.list(filters=selector)]
    return found


@pytest.fixture
def run_cli(tmp_path: Path, docker: Any) -> Callable[..., CliRun]:
    """``conformance run`` in container mode (CONTAINER_ARGS); asserts nothing of the run is left."""

    def run(
        *args: str,
        env: Mapping[str, str] | None = None,
        profile: Path = REFERENCE_PROFILE,
        mode_args: tuple[str, ...] = CONTAINER_ARGS,
        report_dir: Path | None = None,
    ) -> CliRun:
        report_dir = report_dir or tmp_path / "report"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "conformance.cli",
                "run",
                "--profile",
                str(profile),
                "--report-dir",
                str(report_dir),
                *mode_args,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            env=cli_env(env),
            cwd=tmp_path,
        )
        result = CliRun(proc.returncode, proc.stdout, proc.stderr, report_dir)
        if (report_dir / "conformance-report.json").exists():
            run_id = result.report["run_id"]
            assert docker_leftovers(docker, run_id) == [], "the run left containers or networks behind"
            assert processes_with_run_id(run_id) == [], "the run left processes behind"
        return result

    return run
