"""The precompiled schema test never passes what jsonschema rejects, and passes the usual records."""

from __future__ import annotations

import json
import math
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance._profile import schema_path
from conformance.checks._schemafast import compile_passes

_LOG_SCHEMAS = ["log-record.schema.json", "log-request-completed.schema.json"]
_MADE_UP = [
    {"type": "object", "properties": {"a": {"type": ["string", "null"], "pattern": "^x"}}},
    {
        "type": "object",
        "required": ["n"],
        "properties": {"n": {"exclusiveMinimum": 0, "exclusiveMaximum": 10}},
    },
    {"properties": {"o": {"type": "object", "required": ["k"], "properties": {"k": {"maxLength": 2}}}}},
    {
        "type": "object",
        "properties": {"b": {"type": "boolean"}, "l": {"type": "array"}, "i": {"type": "integer"}},
    },
    {"type": "object", "properties": {"s": {"enum": ["a", "b"]}, "t": True, "f": False}},
]
_KEYS = st.sampled_from(
    ["timestamp", "level", "logger", "message", "correlation_id", "trace_id", "span_id", "method", "path",
     "status_code", "duration_ms", "a", "n", "o", "k", "b", "l", "i", "s", "t", "f", "extra"]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 700),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 200.0, -0.5, 599.0, 600.0, 10.0]),
    st.sampled_from(["", "x", "xy", "xyz", "GET", "get", "POST", "a", "b", "INFO", "2025-12-06T10:00:00Z"]),
    st.text(max_size=3),
)
_VALUES = st.recursive(
    _SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(_KEYS, inner, max_size=3))
)
_INSTANCES = st.one_of(st.dictionaries(_KEYS, _VALUES, max_size=12), _VALUES)


def _schemas() -> list[dict[str, Any]]:
    loaded = [json.loads(schema_path(name).read_text(encoding="utf-8")) for name in _LOG_SCHEMAS]
    return [*loaded, *_MADE_UP]


@pytest.mark.parametrize("schema", _schemas())
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=_INSTANCES)
def test_what_the_fast_test_passes_jsonschema_accepts(schema: dict[str, Any], instance: Any) -> None:
    passes = compile_passes(schema)
    assert passes is not None
    if passes(instance):
        assert not list(jsonschema.Draft202012Validator(schema).iter_errors(instance)), instance


def test_a_reference_service_record_passes_both_log_schemas() -> None:
    record = {
        "timestamp": "2025-12-06T10:00:00.000Z", "level": "INFO", "logger": "reference_service.middleware",
        "correlation_id": "5f0c", "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331", "message": "request_completed", "method": "GET",
        "path": "/users/{user_id}", "status_code": 200, "duration_ms": 1.25,
    }  # fmt: skip
    for schema in _schemas()[:2]:
        passes = compile_passes(schema)
        assert passes is not None and passes(record)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}},
        {"anyOf": [{"type": "string"}]},
        {"properties": {"a": {"enum": [1, True]}}},
        {"additionalProperties": False},
        {"properties": {"a": {"minimum": math.inf}}},
    ],
)
def test_a_schema_outside_the_subset_gets_no_fast_test(schema: dict[str, Any]) -> None:
    assert compile_passes(schema) is None


_TRICKY = [
    {"i": True}, {"i": 1.0}, {"i": 2**70}, {"n": math.nan}, {"n": True}, {"n": 10}, {"n": math.inf},
    {"s": 1}, {"a": None}, {"a": "y"}, {"o": {"k": "abc"}}, {"o": {}}, {"o": []}, {"b": 0}, {"l": {}},
    {"t": 1}, {"f": 1}, {"status_code": True, "duration_ms": False, "method": "GET"}, {"duration_ms": -0.0},
    {"correlation_id": "é" * 256},
]  # fmt: skip


@pytest.mark.parametrize("schema", _schemas())
@pytest.mark.parametrize("instance", _TRICKY)
def test_tricky_values_are_never_passed_wrongly(schema: dict[str, Any], instance: dict[str, Any]) -> None:
    passes = compile_passes(schema)
    assert passes is not None
    if passes(instance):
        assert not list(jsonschema.Draft202012Validator(schema).iter_errors(instance)), instance
