"""Property tests: parsers and checks take any input and answer with findings
or ProfileError, never with a crash. (A longer fuzz run: see README.)"""

from __future__ import annotations

import json
import os
import string
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import ProfileError, load_profile
from conformance._mask import excerpt, mask_text
from conformance._profile import LogContract, schema_path
from conformance.checks import logs
from conformance.telemetry import LogLine

# OBSCONFORM_FUZZ_EXAMPLES raises the example count for a longer fuzz run (README).
FAST = settings(
    max_examples=int(os.environ.get("OBSCONFORM_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)
record_like = st.dictionaries(
    st.sampled_from(
        [
            "timestamp",
            "level",
            "logger",
            "message",
            "trace_id",
            "span_id",
            "correlation_id",
            "method",
            "path",
            "status_code",
            "duration_ms",
            "other",
        ]
    ),
    json_values,
)
line_bytes = st.one_of(st.binary(max_size=200), record_like.map(lambda r: json.dumps(r).encode()))

SCHEMAS = {
    n: json.loads(schema_path(n).read_text())
    for n in ("log-record.schema.json", "log-request-completed.schema.json")
}


@FAST
@given(st.lists(line_bytes, max_size=20))
def test_every_log_check_accepts_any_lines(raws: list[bytes]) -> None:
    contract = LogContract()
    parsed = logs.parse_log_lines([LogLine(i, raw) for i, raw in enumerate(raws, 1)], contract)
    findings: list[Any] = []
    findings += logs.check_json_lines(parsed)
    findings += logs.check_record_schema(parsed, contract, SCHEMAS["log-record.schema.json"])
    findings += logs.check_request_completed(parsed, contract, SCHEMAS["log-request-completed.schema.json"])
    findings += logs.check_timestamps(parsed)
    findings += logs.check_levels(parsed, contract)
    findings += logs.check_trace_ids(parsed, contract)
    findings += logs.check_route_templates(parsed, contract, {"/users/1": "/users/{id}"})
    findings += logs.check_request_coverage(parsed, [], contract, "X-Correlation-ID")
    assert all(f.requirement_id.startswith("LOG-") for f in findings)
    json.dumps([f.to_dict() for f in findings])  # evidence is always serialisable


yaml_ish = st.text(alphabet=string.printable + "äé€{}[]:&*!|>-#", max_size=300)


@FAST
@given(yaml_ish)
def test_profile_loader_only_ever_raises_profile_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_profile(path)
        except ProfileError as exc:
            assert "\n" not in str(exc)


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["version", "service", "endpoints", "logs", "traffic", "metrics"]),
        json_values,
        max_size=6,
    )
)
def test_profile_loader_on_structured_garbage(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
        try:
            load_profile(path)
        except ProfileError as exc:
            assert str(exc).startswith(str(path))


@FAST
@given(st.text(max_size=300), st.emails())
def test_masking_never_leaks_an_email(prefix: str, email: str) -> None:
    assert email not in mask_text(f"{prefix} {email} ")
    assert len(excerpt(prefix + email)) < 400
