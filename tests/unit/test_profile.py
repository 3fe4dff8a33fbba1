"""Profiles: the shipped ones load; every malformed one ends in one clear line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance import ProfileError, load_profile

REPO = Path(__file__).resolve().parents[2]
BAD = yaml.safe_load((REPO / "tests/data/bad_profiles.yaml").read_text())


def write(tmp_path: Path, text: str | bytes, name: str = "conformance.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_reference_profile_loads() -> None:
    profile = load_profile(REPO / "fixtures/reference_service/conformance.yaml")
    assert profile.service.name == "reference-service"
    assert profile.service.cwd == REPO / "fixtures"
    assert profile.service.env["REFSVC_RATE_LIMIT_WINDOW_SECONDS"] == "5"
    assert [e.name for e in profile.endpoints][:2] == ["health", "health_live"]
    assert all(p.is_absolute() and p.is_file() for p in profile.prometheus.rule_files)


@pytest.mark.parametrize("case", BAD, ids=[c["id"] for c in BAD])
def test_malformed_profile_is_one_clear_line(tmp_path: Path, case: dict[str, Any]) -> None:
    path = write(tmp_path, case["text"])
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert case["expect"] in message, message


def test_corpus_is_large_enough() -> None:
    assert len(BAD) >= 30


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"nope\.yaml: file not found"):
        load_profile(tmp_path / "nope.yaml")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="not a regular file"):
        load_profile(tmp_path)


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\n" + "#" * (2 * 1024 * 1024))
    with pytest.raises(ProfileError, match="profiles are limited to"):
        load_profile(path)


def test_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"not UTF-8 text \(byte 11\)"):
        load_profile(write(tmp_path, b"version: 1\n\xff\xfe"))


def test_deeply_nested_yaml(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="invalid YAML"):
        load_profile(write(tmp_path, "a: " + "[" * 100_000))


def test_invalid_custom_log_schema(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"type": 12}')
    path = write(tmp_path, "version: 1\nservice: {name: x, command: [x]}\nlogs: {schema: s.json}\n")
    with pytest.raises(ProfileError, match=r"logs\.schema: s\.json is not a valid JSON Schema"):
        load_profile(path)


def test_more_problems_are_counted(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nservice: {name: x, command: [x], port: x, shutdown_timeout: -1}\n")
    with pytest.raises(ProfileError, match=r"and 1 more problem"):
        load_profile(path)


class TestOverrides:
    def test_command_and_port(self, tmp_path: Path) -> None:
        profile = load_profile(write(tmp_path, "version: 1\nservice: {name: x, command: [a, b]}\n"))
        assert profile.service.port is None
        changed = profile.with_overrides(service_command="python -m app --port '{port}'", service_port=8123)
        assert changed.service.command == ("python", "-m", "app", "--port", "{port}")
        assert changed.service.port == 8123
        assert profile.with_overrides() == profile

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"service_command": ""}, "--service-command: must not be empty"),
            ({"service_port": 0}, "--service-port: must be a port"),
        ],
    )
    def test_bad_overrides(self, tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
        profile = load_profile(write(tmp_path, "version: 1\nservice: {name: x, command: [a]}\n"))
        with pytest.raises(ProfileError, match=match):
            profile.with_overrides(**kwargs)


def test_defaults(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, "version: 1\nservice: {name: x, command: [a]}\n"))
    assert profile.correlation_header == "X-Correlation-ID"
    assert profile.logs.stream == "stdout"
    assert profile.telemetry.otlp_protocol == "http/protobuf"
    assert profile.telemetry.service_name == "x"
    assert profile.metrics.path == "/metrics" and not profile.metrics.separate_port
    assert profile.endpoints == ()


MINIMAL = "version: 1\nservice: {name: demo, command: [x]}\n"


def test_a_service_without_spans_makes_the_span_only_requirements_not_applicable(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, MINIMAL + "telemetry: {spans: false}\n"))
    assert not profile.telemetry.spans
    assert sorted(profile.not_applicable) == [
        "MET-011",
        "PII-002",
        "SEM-001",
        "SEM-002",
        "SEM-003",
        "SEM-005",
        "TRC-001",
        "TRC-003",
        "TRC-012",
        "TRC-013",
    ]
    assert "telemetry.spans: false" in profile.not_applicable["TRC-001"]


def test_a_service_without_metrics_makes_the_exposition_requirements_not_applicable(tmp_path: Path) -> None:
    text = MINIMAL + "metrics: {exposed: false}\nrequirements: {not_applicable: {MET-004: our own reason}}\n"
    profile = load_profile(write(tmp_path, text))
    assert not profile.metrics.exposed
    # PII-003 stays: it searches the metric points a service pushes over OTLP too.
    assert {f"MET-{n:03d}" for n in range(1, 12)} | {"PII-004", "RL-008"} == set(profile.not_applicable)
    assert profile.not_applicable["MET-004"] == "our own reason"  # the profile's own words win
    assert "metrics.exposed: false" in profile.not_applicable["MET-001"]


def test_no_trace_placeholders_add_to_the_defaults(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, MINIMAL + 'logs: {no_trace_values: ["none", ""]}\n'))
    assert profile.logs.no_trace_values == {"0", "0" * 32, "0" * 16, "none", ""}


def test_met_011_applies_only_to_internal_metrics(tmp_path: Path) -> None:
    assert "metrics.internal: false" in load_profile(write(tmp_path, MINIMAL)).not_applicable["MET-011"]
    internal = load_profile(write(tmp_path, MINIMAL + "metrics: {internal: true, port: auto}\n"))
    assert "MET-011" not in internal.not_applicable


def test_metrics_pushed_over_otlp_keep_the_exposition_requirements(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, MINIMAL + "metrics: {source: otlp, push_timeout: 70}\n"))
    assert profile.metrics.source == "otlp"
    assert profile.metrics.push_timeout == 70
    assert not profile.metrics.scraped_from_service  # Prometheus scrapes the collector's exporter instead
    assert not {f"MET-{n:03d}" for n in range(1, 11)} & set(profile.not_applicable)
    assert "PII-004" not in profile.not_applicable and "RL-008" not in profile.not_applicable
    default = load_profile(write(tmp_path, MINIMAL))
    assert default.metrics.source == "exposition" and default.metrics.scraped_from_service


def test_otlp_metrics_and_no_metrics_contradict(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"metrics\.source.*metrics\.exposed: false"):
        load_profile(write(tmp_path, MINIMAL + "metrics: {source: otlp, exposed: false}\n"))
    with pytest.raises(ProfileError, match=r"metrics\.source"):
        load_profile(write(tmp_path, MINIMAL + "metrics: {source: statsd}\n"))
