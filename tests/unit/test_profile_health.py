"""The ``health`` profile section (conformance._sections.health); one-line
malformed cases are in tests/data/bad_profiles.yaml, the ones that need a
schema file next to the profile are here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import ProfileError, load_profile
from conformance._profile import schema_path
from conformance._sections.health import (
    DEFAULT_MAX_SECONDS,
    KEY,
    DependencyFailure,
    HealthProbe,
    HealthSection,
)

REPO = Path(__file__).resolve().parents[2]
HEAD = (
    "version: 1\nservice: {name: x, command: [x]}\n"
    "endpoints: [{name: live, path: /health/live}, {name: ready, path: /health/ready}]\n"
)
LIVE_SCHEMA = {"type": "object", "required": ["status"]}


def write(tmp_path: Path, health: str, schemas: dict[str, str] | None = None) -> Path:
    for name, text in (schemas or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    path = tmp_path / "conformance.yaml"
    path.write_text(HEAD + health)
    return path


def test_defaults_when_the_section_is_absent(tmp_path: Path) -> None:
    section = load_profile(write(tmp_path, "")).section(KEY)
    assert section == HealthSection()
    assert section.probes == () and section.dependency_failure is None
    assert section.max_seconds == DEFAULT_MAX_SECONDS == 3.0


def test_every_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "health:\n"
        "  max_seconds: 1.5\n"
        "  probes:\n"
        "    - {endpoint: live, status: 204, schema: schemas/live.json}\n"
        "    - {endpoint: ready, schema: r.json}\n"
        "  dependency_failure:\n"
        "    env: {FAIL: db, RETRIES: 0, STRICT: true, URL: 'http://127.0.0.1:{port}/x'}\n"
        "    ready: {endpoint: ready, schema: r.json}\n"
        "    live: {endpoint: live, status: 200}\n"
        "    timeout: 12\n",
        {"schemas/live.json": json.dumps(LIVE_SCHEMA), "r.json": "{}"},
    )
    profile = load_profile(path)
    live, ready = profile.endpoints
    assert profile.section(KEY) == HealthSection(
        probes=(
            HealthProbe(live, 204, LIVE_SCHEMA, tmp_path / "schemas/live.json"),
            HealthProbe(ready, 200, {}, tmp_path / "r.json"),
        ),
        dependency_failure=DependencyFailure(
            # Values are strings as the environment has them; placeholders are filled when it starts.
            env={"FAIL": "db", "RETRIES": "0", "STRICT": "true", "URL": "http://127.0.0.1:{port}/x"},
            ready=HealthProbe(ready, 503, {}, tmp_path / "r.json"),
            live=HealthProbe(live, 200),
            timeout=12.0,
        ),
        max_seconds=1.5,
    )


def test_only_one_of_ready_and_live_is_enough(tmp_path: Path) -> None:
    profile = load_profile(
        write(tmp_path, "health: {dependency_failure: {env: {}, live: {endpoint: live}}}\n")
    )
    live, _ = profile.endpoints
    assert profile.section(KEY).dependency_failure == DependencyFailure(live=HealthProbe(live))


def test_harness_schemas_resolve_wherever_the_profile_is(tmp_path: Path) -> None:
    section = load_profile(
        write(
            tmp_path,
            "health: {probes: [{endpoint: live, "
            "schema: '{harness_schemas}/profiles/reference/health-live.schema.json'}]}\n",
        )
    ).section(KEY)
    (live,) = section.probes
    assert live.schema_file == schema_path("profiles/reference/health-live.schema.json").resolve()
    assert live.schema is not None and live.schema["required"] == ["status", "timestamp"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "health.probes[0].schema: s.json is not JSON: Expecting property name"),
        ("[1, 2]", "health.probes[0].schema: s.json is not a JSON Schema: the top level is not an object"),
        (
            '{"type": 12}',
            "health.probes[0].schema: s.json is not a valid JSON Schema at /type: 12 is not valid",
        ),
        (
            '{"properties": {"status": {"enum": "live"}}}',
            "health.probes[0].schema: s.json is not a valid JSON Schema at /properties/status/enum: "
            "'live' is not of type 'array'",
        ),
    ],
    ids=["not-json", "not-an-object", "bad-type", "bad-nested-keyword"],
)
def test_a_broken_schema_file_is_one_line_naming_file_path_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, "health: {probes: [{endpoint: live, schema: s.json}]}\n", {"s.json": text})
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {problem}"), message


def test_the_failure_schema_is_checked_too(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "health: {dependency_failure: {env: {}, ready: {endpoint: ready, schema: f.json}}}\n",
        {"f.json": '{"required": "status"}'},
    )
    with pytest.raises(
        ProfileError, match=r"health\.dependency_failure\.ready\.schema: f\.json is not a valid"
    ):
        load_profile(path)


def test_the_reference_profile_probes_every_health_endpoint() -> None:
    section = load_profile(REPO / "fixtures/reference_service/conformance.yaml").section(KEY)
    assert {p.endpoint.path: p.schema_file.name for p in section.probes if p.schema_file} == {
        "/health": "health-root.schema.json",
        "/health/live": "health-live.schema.json",
        "/health/ready": "health-ready.schema.json",
        "/health/detailed": "health-detailed.schema.json",
    }
    failure = section.dependency_failure
    assert failure is not None and failure.env == {"REFSVC_FAIL_DEPENDENCY": "database"}
    assert failure.ready is not None and failure.ready.status == 503
    assert (
        failure.ready.schema_file is not None
        and failure.ready.schema_file.name == "health-ready-failure.schema.json"
    )
    assert failure.live is not None and failure.live.status == 200 and failure.live.schema is None
