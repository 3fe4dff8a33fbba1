"""Settings.from_env: defaults, parsing and clear errors for bad values."""

from __future__ import annotations

import pytest
from reference_service.breakage import ALL_VARIANTS, FAMILIES, parse_breakage
from reference_service.settings import Settings, SettingsError


def test_defaults_from_an_empty_environment() -> None:
    settings = Settings.from_env({})

    assert settings == Settings()
    assert settings.service_name == "reference-service"
    assert settings.version == "1.0.0"
    assert settings.environment == "test"
    assert settings.otlp_endpoint is None
    assert settings.otlp_protocol == "http/protobuf"
    assert settings.rate_limit_window_seconds == 60
    assert settings.rate_limit_enabled is True
    assert settings.fail_dependency is None
    assert settings.breakage == frozenset()


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_SERVICE_NAME": "svc",
            "REFSVC_ENVIRONMENT": "ci",
            "REFSVC_VERSION": "2.3.4",
            "REFSVC_RATE_LIMIT_WINDOW_SECONDS": "5",
            "REFSVC_RATE_LIMIT_ENABLED": "false",
            "REFSVC_FAIL_DEPENDENCY": "cache",
            "REFSVC_BREAK": " plain-429 , slow-health ",
        }
    )

    assert settings == Settings(
        service_name="svc",
        version="2.3.4",
        environment="ci",
        otlp_endpoint="http://127.0.0.1:4318",
        otlp_protocol="grpc",
        rate_limit_window_seconds=5,
        rate_limit_enabled=False,
        fail_dependency="cache",
        breakage=frozenset({"plain-429", "slow-health"}),
    )


def test_per_signal_endpoint_alone_enables_export() -> None:
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})

    assert settings.otlp_endpoint == "http://127.0.0.1:4318/v1/traces"


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"REFSVC_BREAK": "no-such-variant"}, ["REFSVC_BREAK", "'no-such-variant'", "plain-429"]),
        ({"REFSVC_RATE_LIMIT_WINDOW_SECONDS": "soon"}, ["REFSVC_RATE_LIMIT_WINDOW_SECONDS", "integer"]),
        ({"REFSVC_RATE_LIMIT_WINDOW_SECONDS": "0"}, ["REFSVC_RATE_LIMIT_WINDOW_SECONDS", "at least 1"]),
        ({"REFSVC_RATE_LIMIT_ENABLED": "maybe"}, ["REFSVC_RATE_LIMIT_ENABLED", "boolean"]),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, ["OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"]),
        ({"REFSVC_FAIL_DEPENDENCY": "kafka"}, ["REFSVC_FAIL_DEPENDENCY", "database"]),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], names: list[str]) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)

    for name in names:
        assert name in str(caught.value)


def test_variant_names_are_unique_across_families() -> None:
    names = [name for family in FAMILIES.values() for name in family]

    assert len(names) == len(set(names)) == len(ALL_VARIANTS)
    assert parse_breakage(",".join(names)) == ALL_VARIANTS
    assert parse_breakage("") == parse_breakage(None) == frozenset()
