"""Test doubles and helpers for the reference service's tests (imported by conftest and tests).

(The name is unusual on purpose: test directories have no ``__init__.py``, so
module names must be unique across the repository.)
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from reference_service import Settings

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures"

#: The address the in-process client appears to come from (TEST-NET-3).
CLIENT_IP = "203.0.113.7"


class FakeClock:
    """Epoch seconds that move only when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class InProcessService:
    """The app plus everything a test inspects: spans, metrics, log lines, the rate-limit clock."""

    app: Any
    settings: Settings
    spans: InMemorySpanExporter
    registry: CollectorRegistry
    clock: FakeClock
    log_stream: io.StringIO = field(default_factory=io.StringIO)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(CLIENT_IP, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, path, **kwargs)

        return anyio.run(send)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def log_lines(self) -> list[str]:
        return self.log_stream.getvalue().splitlines()

    def log_records(self) -> list[dict[str, Any]]:
        """Every line parsed as JSON (a non-JSON line fails the test here)."""
        return [json.loads(line) for line in self.log_lines()]

    def records(self, message: str, correlation_id: str | None = None) -> list[dict[str, Any]]:
        return [
            record
            for record in self.log_records()
            if record.get("message") == message
            and (correlation_id is None or record.get("correlation_id") == correlation_id)
        ]

    def sample(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value(name, dict(labels or {}))

    def finished_spans(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def server_spans(self) -> list[ReadableSpan]:
        return [span for span in self.finished_spans() if span.kind.name == "SERVER"]


ServiceFactory = Callable[..., InProcessService]
