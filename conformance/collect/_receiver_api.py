"""Reading spans from the OTLP receiver container through its read API.

In container mode the receiver runs as a container on the stack's network
(:mod:`conformance.stack._receiver_server`); the harness reaches its read API
through a port published on 127.0.0.1. :class:`ReceiverApiTraceStore`
implements the :class:`~conformance.collect._traces.TraceStore` protocol, so the
suites read spans exactly as they do from the embedded receiver, and reads its
OTLP log records and metric points the same way.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from conformance._exceptions import StackError
from conformance.stack._receiver_server import record_from_json, span_from_json
from conformance.telemetry import OtlpLogRecord, OtlpMetricPoints, Span

__all__ = ["ReceiverApiTraceStore"]


class ReceiverApiTraceStore:
    """Spans held by an ``otlp-receiver`` container, read over HTTP.

    ``base_url`` is the read API's published address (``http://127.0.0.1:PORT``);
    ``client`` is injected (tests pass an ``httpx.MockTransport``).
    """

    def __init__(self, base_url: str, *, client: httpx.Client | None = None, where: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.Client(timeout=5.0, trust_env=False)
        self._where = where

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise StackError(
                f"the OTLP receiver container's API at {url} did not answer: {type(exc).__name__}: {exc}",
                hint="the receiver container may have stopped; see its log in the report's work/ directory",
            ) from None
        if response.status_code != 200:
            raise StackError(f"GET {url} answered {response.status_code}: {response.text[:200]}")
        try:
            return response.json()
        except json.JSONDecodeError as exc:
            raise StackError(f"GET {url} did not return JSON: {exc}") from None

    def spans(self, trace_id: str | None = None) -> list[Span]:
        document = self._get("/spans", {"trace_id": trace_id.lower()} if trace_id else None)
        if not isinstance(document, list):
            raise StackError(f"GET {self.base_url}/spans returned {type(document).__name__}, not a list")
        try:
            return [span_from_json(item) for item in document]
        except ValueError as exc:
            raise StackError(f"GET {self.base_url}/spans returned a malformed span: {exc}") from None

    def _list(self, path: str) -> list[Any]:
        document = self._get(path)
        if not isinstance(document, list):
            raise StackError(f"GET {self.base_url}{path} returned {type(document).__name__}, not a list")
        return document

    def log_records(self) -> list[OtlpLogRecord]:
        """The OTLP log records the receiver holds, as the embedded receiver keeps them."""
        try:
            return [record_from_json(OtlpLogRecord, item) for item in self._list("/log_records")]
        except ValueError as exc:
            raise StackError(f"GET {self.base_url}/log_records returned a malformed record: {exc}") from None

    def metric_points(self) -> list[OtlpMetricPoints]:
        """The distinct metric points the receiver holds (name, attributes, resource, count)."""
        try:
            return [record_from_json(OtlpMetricPoints, item) for item in self._list("/metric_points")]
        except ValueError as exc:
            raise StackError(f"GET {self.base_url}/metric_points returned malformed points: {exc}") from None

    def stats(self) -> dict[str, Any]:
        document = self._get("/stats")
        return dict(document) if isinstance(document, dict) else {}

    def describe(self) -> str:
        where = f" ({self._where})" if self._where else ""
        return f"OTLP receiver container{where}, read API at {self.base_url}"

    def close(self) -> None:
        self._client.close()
