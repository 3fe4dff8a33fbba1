"""The team's own collector pipeline (``telemetry.collector_config``) end to end, in local mode.

The reference service's ``email-span-attribute`` variant puts the login's email (the
canaries' too) in the span attribute ``user.email``; the team's collector config masks
emails with the redaction processor. PII-002 must still fail, with the finding "the
service leaks it, the collector removes it", never pass: the service emits the email,
and only this one pipeline hides it. Like the other collector tests these fail, not
skip, when ``scripts/build-telemetry`` has not built the collector.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import CliRun, variant_profile
from .test_run_telemetry import built_paths, components

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliRun]

#: As the redaction processor's README configures it: every key allowed, emails masked.
TEAM_COLLECTOR = textwrap.dedent(
    """\
    receivers:
      otlp:
        protocols:
          grpc: {endpoint: 0.0.0.0:4317}
    processors:
      memory_limiter: {check_interval: 1s, limit_mib: 512}
      redaction:
        allow_all_keys: true
        blocked_values:
          - "[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\\\.[a-zA-Z]{2,}"
        summary: info
      batch: {timeout: 5s}
    exporters:
      otlphttp/vendor: {endpoint: "https://otlp.vendor.example"}
    extensions:
      zpages: {}
    service:
      extensions: [zpages]
      pipelines:
        traces:
          receivers: [otlp]
          processors: [memory_limiter, redaction, batch]
          exporters: [otlphttp/vendor]
    """
)


def team_profile(tmp_path: Path, config: str = TEAM_COLLECTOR) -> Path:
    """The reference profile with ``config`` as the team's collector config (team-collector.yaml)."""
    (tmp_path / "team-collector.yaml").write_text(config)

    def with_team_collector(data: dict[str, Any]) -> None:
        data.setdefault("telemetry", {})["collector_config"] = str(tmp_path / "team-collector.yaml")

    return variant_profile(tmp_path, with_team_collector)


def run_with_team_pipeline(run_cli: RunCli, tmp_path: Path, config: str, keyword: str) -> CliRun:
    """A local-mode run of the suites matching ``keyword`` with the collector and ``config``."""
    built_paths()
    return run_cli(
        "-k", keyword, "--mode", "local", profile=team_profile(tmp_path, config),
        env={"OBSCONFORM_TELEMETRY": "auto"},
    )  # fmt: skip


def test_a_span_leak_the_team_redaction_processor_removes_is_reported_as_such(
    run_cli: RunCli, tmp_path: Path
) -> None:
    built_paths()
    run = run_cli(
        "-k",
        "test_no_canary_in_spans",
        "--mode",
        "local",
        profile=team_profile(tmp_path),
        env={"OBSCONFORM_TELEMETRY": "auto", "REFSVC_BREAK": "email-span-attribute"},
    )
    result = next(r for r in run.report["results"] if r["id"] == "PII-002")
    assert result["status"] == "failed", (result, run.stderr[-2000:])
    findings = [e for e in result["evidence"] if "view" in e]
    assert findings, result
    # Every email the service put in user.email is gone after the team's pipeline.
    assert {f["view"] for f in findings} == {"at the service; removed by the team's collector pipeline"}
    removed = findings[0]
    assert removed["field"] == 'attributes["user.email"]'
    assert removed["after_pipeline"]["found"] is None
    assert removed["after_pipeline"]["processors"] == ["memory_limiter", "redaction", "batch"]
    assert removed["after_pipeline"]["searched"].endswith("spans after the team's pipeline")
    assert int(removed["after_pipeline"]["searched"].split()[0]) > 0
    assert (
        "the team's collector pipeline (team-collector.yaml; processors: memory_limiter, redaction, batch) "
        in (result["message"])
    )
    assert "removes it: the service leaks it, the collector hides it" in result["message"]
    # The report says what ran: the team's collector with its processors, fed by ours.
    stack = components(run)
    team = stack["otel-collector-team"]
    assert team["team_config_file"] == str(tmp_path / "team-collector.yaml")
    assert team["processors"] == {"traces": ["memory_limiter", "redaction", "batch"]}
    assert team["pipeline"]["accepted"]["spans"] > 0
    assert stack["otlp-receiver-after-pipeline"]["stats"]["spans"]["received"] > 0
    # The spans after the pipeline still carry the attribute, masked: the processor ran.
    (note,) = [n for n in result["evidence"] if "after_pipeline" in n and "view" not in n]
    assert note["after_pipeline"]["config"] == str(tmp_path / "team-collector.yaml")


#: A team that drops the spans of /models before they reach its backend (filter processor, OTTL).
DROPS_MODELS = textwrap.dedent(
    """\
    receivers:
      otlp:
        protocols:
          http: {}
    processors:
      filter/models:
        error_mode: ignore
        traces:
          span:
            - 'attributes["http.route"] == "/models"'
    exporters:
      otlp: {endpoint: "tempo:4317"}
    service:
      pipelines:
        traces:
          receivers: [otlp]
          processors: [filter/models]
          exporters: [otlp]
    """
)


def test_server_spans_the_team_pipeline_drops_fail_trc_001_blaming_the_pipeline(
    run_cli: RunCli, tmp_path: Path
) -> None:
    run = run_with_team_pipeline(run_cli, tmp_path, DROPS_MODELS, "test_server_spans_are_exported")
    result = next(r for r in run.report["results"] if r["id"] == "TRC-001")
    assert result["status"] == "failed", (result, run.stderr[-2000:])
    findings = [e for e in result["evidence"] if "view" in e]
    assert [(f["method"], f["route"], f["dropped_by_pipeline"]) for f in findings] == [("GET", "/models", 2)]
    assert result["message"].endswith(
        "GET /models: the service exported the SERVER span of 2 answered request(s) that the team's "
        "collector pipeline (team-collector.yaml; processors: filter/models) drops; they have none after it"
    )
    (note,) = [e for e in result["evidence"] if "after_pipeline" in e]
    assert note["after_pipeline"]["server_spans"] > 0


#: A team that strips the request method from every span (an attributes processor).
STRIPS_METHOD = textwrap.dedent(
    """\
    receivers:
      otlp:
        protocols:
          grpc: {}
    processors:
      attributes/strip:
        actions:
          - {key: http.request.method, action: delete}
    exporters:
      otlp: {endpoint: "tempo:4317"}
    service:
      pipelines:
        traces:
          receivers: [otlp]
          processors: [attributes/strip]
          exporters: [otlp]
    """
)


def test_a_stable_attribute_the_team_pipeline_deletes_fails_sem_001_blaming_the_pipeline(
    run_cli: RunCli, tmp_path: Path
) -> None:
    run = run_with_team_pipeline(run_cli, tmp_path, STRIPS_METHOD, "test_server_spans_have_stable_attributes")
    result = next(r for r in run.report["results"] if r["id"] == "SEM-001")
    assert result["status"] == "failed", (result, run.stderr[-2000:])
    # The reference service sends the stable attributes: every finding is the pipeline's.
    findings = [e for e in result["evidence"] if "requirement" in e]
    assert findings and {f["view"] for f in findings} == {"after the team's collector pipeline"}, result
    assert result["message"].count(
        "the team's collector pipeline (team-collector.yaml; processors: attributes/strip) breaks what the "
        "service sends conforming: "
    ), result["message"]
    assert "http.request.method" in result["message"]
    (note,) = [e for e in result["evidence"] if "after_pipeline" in e and "requirement" not in e]
    assert note["after_pipeline"]["broken_by_pipeline"] > 0
    assert note["after_pipeline"]["broken_by_pipeline"] == note["after_pipeline"]["changed_by_pipeline"]
