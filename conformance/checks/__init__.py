"""Pure checks: telemetry in, findings out; no I/O, no pytest, no stack."""

from conformance.checks import exports, logs

__all__ = ["exports", "logs"]
