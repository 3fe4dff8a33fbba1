"""JsonFormatter and Redactor, without the app: shape, timestamps, PII redaction."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from reference_service.context import RequestContext, request_context
from reference_service.logging_setup import JsonFormatter, Redactor, rfc3339_utc

PII = json.loads((Path(__file__).parent / "data" / "pii_cases.json").read_text())
RFC3339_MILLIS_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


class CapturedLog:
    def __init__(self, formatter: JsonFormatter) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter)
        self.logger = logging.getLogger("refsvc_formatter_test")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self.handler)

    def last(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(self.stream.getvalue().splitlines()[-1])
        return record


@pytest.fixture
def captured() -> Iterator[CapturedLog]:
    log = CapturedLog(JsonFormatter())
    yield log
    log.logger.removeHandler(log.handler)


def test_outside_a_request_only_the_four_base_fields(captured: CapturedLog) -> None:
    captured.logger.warning("service %s", "starting")

    record = captured.last()
    assert record.keys() == {"timestamp", "level", "logger", "message"}
    assert RFC3339_MILLIS_Z.fullmatch(record["timestamp"])
    assert record["level"] == "WARNING"
    assert record["logger"] == "refsvc_formatter_test"
    assert record["message"] == "service starting"


def test_inside_a_request_correlation_and_trace_context(captured: CapturedLog) -> None:
    tracer = TracerProvider().get_tracer("test")

    with (
        request_context(RequestContext("corr-1", "/health", "/health")),
        tracer.start_as_current_span("s") as span,
    ):
        captured.logger.info("inside", extra={"fields": {"status_code": 200, "duration_ms": 1.5}})

    record = captured.last()
    context = span.get_span_context()
    assert record["correlation_id"] == "corr-1"
    assert record["trace_id"] == format(context.trace_id, "032x")
    assert record["span_id"] == format(context.span_id, "016x")
    assert record["status_code"] == 200
    assert record["duration_ms"] == 1.5


def test_fields_cannot_overwrite_base_fields(captured: CapturedLog) -> None:
    captured.logger.info("real", extra={"fields": {"message": "forged", "level": "DEBUG", "extra": 1}})

    record = captured.last()
    assert (record["message"], record["level"], record["extra"]) == ("real", "INFO", 1)


def test_traceback_is_a_string_field_on_one_line(captured: CapturedLog) -> None:
    try:
        raise ValueError("bad value for bob@example.com")
    except ValueError:
        captured.logger.exception("failed")

    lines = captured.stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "ERROR"
    assert record["exc_info"].startswith("Traceback (most recent call last):")
    assert "ValueError: bad value for [REDACTED_EMAIL]" in record["exc_info"]


def test_non_ascii_is_kept_verbatim(captured: CapturedLog) -> None:
    captured.logger.info("café ✓")

    assert "café ✓" in captured.stream.getvalue()


@pytest.mark.parametrize(
    ("epoch", "expected"), [(0.0, "1970-01-01T00:00:00.000Z"), (1733481045.1239, "2024-12-06T10:30:45.123Z")]
)
def test_rfc3339_utc(epoch: float, expected: str) -> None:
    assert rfc3339_utc(epoch) == expected


@pytest.mark.parametrize("case", PII["cases"], ids=[case["id"] for case in PII["cases"]])
def test_each_pii_kind_is_redacted_in_message_and_fields(captured: CapturedLog, case: dict[str, Any]) -> None:
    captured.logger.info(
        case["text"], extra={"fields": {"note": case["text"], "nested": {"list": [case["text"]]}}}
    )

    record = captured.last()
    for value in (record["message"], record["note"], record["nested"]["list"][0]):
        assert case["marker"] in value
        for secret in case["secrets"]:
            assert secret not in value


@pytest.mark.parametrize("text", PII["untouched"])
def test_ordinary_text_is_not_redacted(text: str) -> None:
    assert Redactor().text(text) == text


@pytest.mark.parametrize(
    "key", ["password", "Authorization", "cookie", "api_key", "X-API-Key", "token", "access_token", "secret"]
)
def test_sensitive_field_names_are_masked_whatever_the_value(captured: CapturedLog, key: str) -> None:
    captured.logger.info("login", extra={"fields": {key: "hunter2", "headers": {key: ["hunter2"]}}})

    record = captured.last()
    assert record[key] == "[REDACTED]"
    assert record["headers"][key] == "[REDACTED]"
    assert "hunter2" not in captured.stream.getvalue()


def test_disabled_rules_are_skipped() -> None:
    text = "jane@example.com 4111 1111 1111 1111"

    assert Redactor(disabled=frozenset({"email"})).text(text) == "jane@example.com [REDACTED_CC]"
    assert Redactor(disabled=frozenset({"credit_card"})).text(text) == "[REDACTED_EMAIL] 4111 1111 1111 1111"
    assert Redactor(disabled=frozenset({"credentials"})).field("password", "x") == "x"
