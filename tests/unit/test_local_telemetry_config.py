"""Local mode's collector and Jaeger, without running them: the generated configs
and the decision whether they run (``OBSCONFORM_TELEMETRY``, ``scripts/build-telemetry``)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from conformance._exceptions import UsageError
from conformance.stack._collector import CollectorListen, collector_config
from conformance.stack._telemetry import (
    TELEMETRY_ENV,
    LocalTelemetry,
    TelemetryBinaries,
    jaeger_config,
    plan_local_telemetry,
)

from .test_containers_config import collector_structure_problems

LISTEN = CollectorListen(
    host="127.0.0.1", otlp_grpc=4001, otlp_http=4002, health=4003, prometheus_exporter=4004, telemetry=None
)


def local_config(*, receiver_http_port: int | None = None) -> dict[str, Any]:
    return collector_config(
        receiver_host="127.0.0.1",
        receiver_grpc_port=5001,
        receiver_http_port=receiver_http_port,
        jaeger_host="127.0.0.1",
        jaeger_grpc_port=6001,
        listen=LISTEN,
        renamed_exporters=True,
        metrics_to_receiver=True,
        debug=False,
    )


def test_local_collector_config_follows_the_documented_structure() -> None:
    assert collector_structure_problems(local_config()) == []
    assert collector_structure_problems(local_config(receiver_http_port=5002)) == []


def test_local_collector_listens_on_loopback_only_and_serves_no_metrics_of_its_own() -> None:
    config = local_config()
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols == {"grpc": {"endpoint": "127.0.0.1:4001"}, "http": {"endpoint": "127.0.0.1:4002"}}
    assert config["extensions"] == {"health_check": {"endpoint": "127.0.0.1:4003"}}
    assert config["exporters"]["prometheus"] == {"endpoint": "127.0.0.1:4004"}
    # No internal metrics endpoint: it would bind the fixed port 8888.
    assert config["service"]["telemetry"] == {"metrics": {"level": "none"}}


def test_local_collector_sends_traces_to_jaeger_and_every_signal_raw_to_the_receiver() -> None:
    pipelines = local_config()["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["otlp_grpc/receiver", "otlp_grpc/jaeger"]
    assert pipelines["metrics"]["exporters"] == ["prometheus", "otlp_grpc/receiver"]
    assert pipelines["logs"]["exporters"] == ["otlp_grpc/receiver"]
    assert {p["processors"][0] for p in pipelines.values()} == {"batch"}
    exporters = local_config()["exporters"]
    assert exporters["otlp_grpc/jaeger"] == {"endpoint": "127.0.0.1:6001", "tls": {"insecure": True}}
    assert "debug" not in exporters


def test_local_collector_forwards_over_http_when_the_service_does() -> None:
    config = local_config(receiver_http_port=5002)
    assert config["exporters"]["otlp_http/receiver"] == {"endpoint": "http://127.0.0.1:5002"}
    assert config["service"]["pipelines"]["logs"]["exporters"] == ["otlp_http/receiver"]


def test_jaeger_config_is_loopback_only_and_keeps_to_itself() -> None:
    config = jaeger_config(otlp_grpc=7001, query_http=7002, query_grpc=7003)
    query = config["extensions"]["jaeger_query"]
    assert query["enable_tracing"] is False
    assert (query["http"], query["grpc"]) == ({"endpoint": "127.0.0.1:7002"}, {"endpoint": "127.0.0.1:7003"})
    assert config["receivers"] == {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:7001"}}}}
    assert config["service"]["telemetry"]["metrics"] == {"level": "none"}


def test_local_collector_serves_its_own_metrics_on_a_free_loopback_port(tmp_path: Path) -> None:
    """Its counts (accepted, refused, sent, failed) go into the report; 8888 is never bound."""
    telemetry = LocalTelemetry(
        TelemetryBinaries(otelcol=tmp_path / "otelcol", jaeger=tmp_path / "jaeger"),
        tmp_path,
        receiver_grpc_port=5001,
        receiver_http_port=None,
    )
    metrics = telemetry.collector_config()["service"]["telemetry"]["metrics"]
    reader = metrics["readers"][0]["pull"]["exporter"]["prometheus"]
    assert reader == {"host": "127.0.0.1", "port": telemetry.listen.telemetry}
    assert telemetry.listen.telemetry not in (None, 8888)
    assert telemetry.own_metrics_url == f"http://127.0.0.1:{telemetry.listen.telemetry}/metrics"
    # Not started: the report says the counts were never read, not that nothing was lost.
    assert telemetry.pipeline_counts().keys() == {"error"}


def test_container_jaeger_config_listens_on_the_container_interfaces() -> None:
    config = jaeger_config(otlp_grpc=4317, query_http=16686, query_grpc=16685, host="0.0.0.0")
    query = config["extensions"]["jaeger_query"]
    assert (query["http"], query["grpc"]) == ({"endpoint": "0.0.0.0:16686"}, {"endpoint": "0.0.0.0:16685"})
    assert config["receivers"] == {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}}}}


# -- whether they run ----------------------------------------------------------------------------


def fake_build_script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "build-telemetry"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_embedded_in_the_environment_keeps_the_embedded_stack(tmp_path: Path) -> None:
    script = fake_build_script(tmp_path, "echo otelcol=/x; echo jaeger=/y")
    plan = plan_local_telemetry({TELEMETRY_ENV: "embedded"}, build_script=script)
    assert plan.binaries is None
    assert plan.reason.startswith("OBSCONFORM_TELEMETRY=embedded")
    assert plan.summary().startswith("collector and Jaeger not running: OBSCONFORM_TELEMETRY=embedded")


def test_an_unknown_choice_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="OBSCONFORM_TELEMETRY='jaeger' is not one of auto, embedded"):
        plan_local_telemetry({TELEMETRY_ENV: "jaeger"}, build_script=tmp_path / "none")


def test_unbuilt_binaries_keep_the_embedded_stack_and_say_how_to_build_them(tmp_path: Path) -> None:
    script = fake_build_script(
        tmp_path, "echo 'build-telemetry: otelcol: not built for the current tools/otelcol' >&2; exit 1"
    )
    plan = plan_local_telemetry({}, build_script=script)
    assert plan.binaries is None
    assert "not built (run scripts/build-telemetry, which needs a Go toolchain" in plan.reason
    assert "otelcol: not built for the current tools/otelcol" in plan.reason


def test_without_a_checkout_and_without_a_build_the_reason_says_how_to_build(tmp_path: Path) -> None:
    env = {"OBSCONFORM_BIN_CACHE": str(tmp_path)}
    plan = plan_local_telemetry(env, build_script=tmp_path / "build-telemetry")
    assert plan.binaries is None
    assert plan.reason.startswith(f"their binaries are not built: no {tmp_path}/current")


def test_without_a_checkout_the_last_build_is_read_from_the_cache(tmp_path: Path) -> None:
    """A harness installed as a wheel (tox) has no scripts/ beside it."""
    otelcol = fake_build_script(tmp_path, "exit 0").rename(tmp_path / "otelcol-obsconform")
    jaeger = fake_build_script(tmp_path, "exit 0").rename(tmp_path / "jaeger")
    (tmp_path / "current").write_text(f"otelcol={otelcol}\njaeger={jaeger}\n")
    plan = plan_local_telemetry({"OBSCONFORM_BIN_CACHE": str(tmp_path)}, build_script=tmp_path / "none")
    assert plan.binaries is not None and plan.binaries.otelcol == otelcol and plan.binaries.jaeger == jaeger


def test_built_binaries_run_with_the_releases_of_their_cache_directories(tmp_path: Path) -> None:
    script = fake_build_script(
        tmp_path,
        "echo otelcol=/c/otelcol-obsconform-v0.161.0-5ccbca505a/otelcol-obsconform; "
        "echo jaeger=/c/jaeger-v1.75.0-9d840485ce/jaeger",
    )
    plan = plan_local_telemetry({TELEMETRY_ENV: "auto"}, build_script=script)
    assert plan.binaries == TelemetryBinaries(
        otelcol=Path("/c/otelcol-obsconform-v0.161.0-5ccbca505a/otelcol-obsconform"),
        jaeger=Path("/c/jaeger-v1.75.0-9d840485ce/jaeger"),
    )
    assert (plan.binaries.otelcol_version, plan.binaries.jaeger_version) == ("v0.161.0", "v1.75.0")
    assert plan.summary() == "collector v0.161.0 and Jaeger v1.75.0 in the telemetry path"
