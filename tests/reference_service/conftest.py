"""Fixtures for the reference service's own tests.

``make_service`` builds the app in-process with an ``InMemorySpanExporter``, a
fresh ``CollectorRegistry``, a fake clock for the rate limiter and a JSON log
handler on a ``StringIO``; requests go through ``httpx.ASGITransport``.
(Starlette's ``TestClient`` is avoided: with plain httpx it raises a
deprecation warning at import.) ``tests/conftest.py`` keeps ``OTEL_*``,
``REFSVC_*`` and proxy variables out of the environment.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

# The service is a package under fixtures/, not an installed distribution.
_FIXTURES_DIR = str(Path(__file__).resolve().parents[2] / "fixtures")
if _FIXTURES_DIR not in sys.path:
    sys.path.insert(0, _FIXTURES_DIR)

import pytest  # noqa: E402
from _refsvc_support import FakeClock, InProcessService, ServiceFactory  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402
from reference_service import Settings, create_app  # noqa: E402
from reference_service.logging_setup import JsonFormatter  # noqa: E402


@pytest.fixture
def make_service() -> Iterator[ServiceFactory]:
    package_logger = logging.getLogger("reference_service")
    previous_level = package_logger.level
    package_logger.setLevel(logging.DEBUG)
    handlers: list[logging.Handler] = []

    def factory(*, breaks: Iterable[str] = (), env: Mapping[str, str] | None = None) -> InProcessService:
        environ = {"REFSVC_BREAK": ",".join(breaks), **(env or {})}
        settings = Settings.from_env(environ)
        spans = InMemorySpanExporter()
        registry = CollectorRegistry()
        clock = FakeClock()
        app = create_app(settings, span_exporter=spans, metrics_registry=registry, clock=clock)
        service = InProcessService(app, settings, spans, registry, clock)
        handler = logging.StreamHandler(service.log_stream)
        style = settings.flavour.log_style(settings.version, settings.environment)
        handler.setFormatter(JsonFormatter(settings.breakage, style))
        package_logger.addHandler(handler)
        handlers.append(handler)
        return service

    yield factory
    for handler in handlers:
        package_logger.removeHandler(handler)
    package_logger.setLevel(previous_level)


@pytest.fixture
def service(make_service: ServiceFactory) -> InProcessService:
    return make_service()
