"""HLT-*: Kubernetes-style health probes answer what they document, also while a dependency fails.

Pure: the answers the collectors recorded (``conformance.collect._health``)
and the profile's ``health`` section in, findings out. A body is validated
with jsonschema against the probe's schema (the draft its ``$schema`` names,
else 2020-12); each validation error is one finding naming the JSON path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import jsonschema
from jsonschema.validators import validator_for

from conformance._mask import excerpt
from conformance._model import Finding, Level, Requirement
from conformance._requirements import requirement
from conformance.telemetry import ProbeAnswer

__all__ = [
    "HLT_001",
    "HLT_002",
    "HLT_003",
    "HLT_004",
    "check_live_under_failure",
    "check_probe_answers",
    "check_ready_under_failure",
    "check_response_times",
    "schema_errors",
]

HLT_001 = requirement(
    "HLT-001",
    Level.MUST,
    "Every health probe answers its expected status with a JSON body valid against its schema",
    source="seed 002 §Health Check Endpoints (Liveness Probe, Readiness Probe: response bodies); "
    "seed 004 §Health Checks (Basic, Detailed)",
)
HLT_002 = requirement(
    "HLT-002",
    Level.MUST,
    "With a dependency failing, the readiness probe answers its failure status (503) with a valid body",
    source="seed 002 §Health Check Endpoints, Readiness Probe: 'Checks all external dependencies. "
    "Returns HTTP 503 if any check fails', Response (Failure)",
)
HLT_003 = requirement(
    "HLT-003",
    Level.MUST,
    "With a dependency failing, the liveness probe still answers 200",
    source="seed 002 §Health Check Endpoints, Liveness Probe: 'Returns immediately with HTTP 200 "
    "if the application is responsive. No external dependencies are checked.'",
)
HLT_004 = requirement(
    "HLT-004",
    Level.SHOULD,
    "Every health probe answers within max_seconds, also with a dependency failing",
    source="seed 002 §Health Check Endpoints, Timeout Configuration (database 2 s, Redis 1 s) and "
    "§Production Deployment Checklist 'Health check timeouts configured'",
)

#: Findings per answer for schema errors; the rest are counted in the last one.
MAX_SCHEMA_ERRORS = 10

_FAILING = "with a dependency failing, "


def check_probe_answers(answers: Iterable[ProbeAnswer]) -> list[Finding]:
    """HLT-001: each probe answered its status, and its body is valid against its schema."""
    findings: list[Finding] = []
    for answer in answers:
        findings += _answer_findings(HLT_001, answer)
    return findings


def check_ready_under_failure(answer: ProbeAnswer) -> list[Finding]:
    """HLT-002: the readiness probe of the instance whose dependency fails answers its
    failure status (and, when the profile gives a failure schema, a body valid against it)."""
    return _answer_findings(HLT_002, answer)


def check_live_under_failure(answer: ProbeAnswer) -> list[Finding]:
    """HLT-003: the liveness probe of the instance whose dependency fails still answers 200:
    a liveness probe that checks dependencies gets healthy pods restarted for an outage elsewhere."""
    return _answer_findings(HLT_003, answer)


def check_response_times(answers: Iterable[ProbeAnswer], max_seconds: float) -> list[Finding]:
    """HLT-004: every answer (or give-up) came within ``max_seconds``."""
    findings = []
    for answer in answers:
        x = answer.exchange
        if x.elapsed_seconds <= max_seconds:
            continue
        outcome = f"answered {x.status_code}" if x.status_code is not None else f"got no answer ({x.error})"
        findings.append(
            Finding(
                HLT_004.id,
                f"{_prefix(answer)}{answer.probe.describe()} took {x.elapsed_seconds:.2f} s, over "
                f"max_seconds {max_seconds:g} ({excerpt(outcome, 120)})",
                {
                    **_where(answer),
                    "elapsed_seconds": round(x.elapsed_seconds, 3),
                    "max_seconds": max_seconds,
                },
            )
        )
    return findings


def schema_errors(body: Any, schema: Any) -> list[jsonschema.ValidationError]:
    """Every way ``body`` misses ``schema``, in document order (JSON path, then keyword)."""
    cls = validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return sorted(
        validator.iter_errors(body),
        key=lambda e: ([str(p) for p in e.absolute_path], str(e.validator), e.message),
    )


def _answer_findings(req: Requirement, answer: ProbeAnswer) -> list[Finding]:
    probe, x = answer.probe, answer.exchange
    what = f"{_prefix(answer)}{probe.describe()}"
    where = _where(answer)
    if x.status_code is None:
        return [Finding(req.id, f"{what} got no answer: {excerpt(x.error, 200)}", where)]
    if x.status_code != probe.status:
        return [
            Finding(
                req.id,
                f"{what} answered {x.status_code}, expected {probe.status}",
                {**where, "body": excerpt(x.body.decode("utf-8", errors="replace"))},
            )
        ]
    if probe.schema is None:
        return []
    schema_name = probe.schema_file.name if probe.schema_file else "its schema"
    try:
        body = json.loads(x.body)
    except (UnicodeDecodeError, ValueError) as exc:
        return [
            Finding(
                req.id,
                f"{what} answered {x.status_code} with a body that is not JSON ({type(exc).__name__}): "
                f"{excerpt(x.body.decode('utf-8', errors='replace'), 120) or '(empty)'}",
                {**where, "schema": schema_name},
            )
        ]
    errors = schema_errors(body, probe.schema)
    findings = []
    for error in errors[:MAX_SCHEMA_ERRORS]:
        findings.append(
            Finding(
                req.id,
                f"{what} answered {x.status_code}; body at {error.json_path} is not valid against "
                f"{schema_name}: {excerpt(error.message, 200)}",
                {
                    **where,
                    "json_path": error.json_path,
                    "validator": str(error.validator),
                    "schema_path": "/".join(str(p) for p in error.absolute_schema_path),
                    "schema": schema_name,
                },
            )
        )
    if len(errors) > MAX_SCHEMA_ERRORS:
        findings.append(
            Finding(
                req.id,
                f"{what}: {len(errors) - MAX_SCHEMA_ERRORS} more schema error(s) not listed",
                {**where, "schema": schema_name, "omitted": len(errors) - MAX_SCHEMA_ERRORS},
            )
        )
    return findings


def _prefix(answer: ProbeAnswer) -> str:
    return _FAILING if answer.dependency_failing else ""


def _where(answer: ProbeAnswer) -> dict[str, Any]:
    x = answer.exchange
    return {
        "endpoint": answer.probe.endpoint.name,
        "method": x.method,
        "path": x.path,
        "status": x.status_code,
        "expected_status": answer.probe.status,
        "dependency_failing": answer.dependency_failing,
    }
