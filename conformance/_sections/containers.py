"""The ``containers`` section: images, ports and readiness for container mode,
and the URLs of an already-running deployment for external mode.

Image defaults are the official images, so a user's CI pulls what everyone
pulls; a private registry mirror is one profile key (or CLI flag) per image.
The receiver image is the harness's own (``scripts/build-images`` builds it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from conformance._exceptions import ProfileError
from conformance._profile import Profile

__all__ = [
    "COLLECTOR_IMAGE_ENV",
    "DEFAULT_COLLECTOR_IMAGE",
    "DEFAULT_JAEGER_IMAGE",
    "DEFAULT_PROMETHEUS_IMAGE",
    "DEFAULT_RECEIVER_IMAGE",
    "DEFAULT_SERVICE_PORT",
    "JAEGER_IMAGE_ENV",
    "KEY",
    "ContainersSection",
    "ExternalSection",
    "OptionalBackend",
    "ServiceContainer",
    "containers_section",
    "parse",
    "with_image_overrides",
]

KEY = "containers"

DEFAULT_PROMETHEUS_IMAGE = "prom/prometheus:v2.53.2"
DEFAULT_COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib:0.161.0"
DEFAULT_JAEGER_IMAGE = "jaegertracing/jaeger:2.12.0"
#: Environment variables that replace the collector's and Jaeger's default images (a
#: profile key or a flag still wins): scripts/build-images' obsconform/otel-collector:local
#: and obsconform/jaeger:local, or a registry's mirror, for every profile at once.
COLLECTOR_IMAGE_ENV = "OBSCONFORM_COLLECTOR_IMAGE"
JAEGER_IMAGE_ENV = "OBSCONFORM_JAEGER_IMAGE"
DEFAULT_RECEIVER_IMAGE = "obsconform/otlp-receiver:local"
DEFAULT_SERVICE_PORT = 8000


@dataclass(frozen=True, slots=True)
class ServiceContainer:
    #: ``None`` when neither ``containers.service.image`` nor ``service.image`` is set.
    image: str | None = None
    port: int = DEFAULT_SERVICE_PORT
    metrics_port: int | None = None
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    ready_path: str = "/health"

    @property
    def scrape_port(self) -> int:
        return self.metrics_port or self.port


@dataclass(frozen=True, slots=True)
class OptionalBackend:
    image: str
    #: ``None`` = auto: run when the image is available, else report "not available".
    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class ExternalSection:
    service_url: str | None = None
    metrics_url: str | None = None
    prometheus_url: str | None = None
    trace_store_kind: str | None = None
    trace_store_url: str | None = None
    log_file: Path | None = None
    #: The team's Jaeger UI, which the report links trace ids to (default: a Jaeger trace store's URL).
    jaeger_ui_url: str | None = None


@dataclass(frozen=True, slots=True)
class ContainersSection:
    service: ServiceContainer = field(default_factory=ServiceContainer)
    prometheus_image: str = DEFAULT_PROMETHEUS_IMAGE
    receiver_image: str = DEFAULT_RECEIVER_IMAGE
    collector: OptionalBackend = field(default_factory=lambda: OptionalBackend(DEFAULT_COLLECTOR_IMAGE))
    jaeger: OptionalBackend = field(default_factory=lambda: OptionalBackend(DEFAULT_JAEGER_IMAGE))
    pull: str = "missing"
    pull_timeout: float = 300.0
    startup_timeout: float = 60.0
    external: ExternalSection = field(default_factory=ExternalSection)

    def images(self) -> dict[str, str]:
        """Component name → image, for the report and the start line."""
        return {
            "service": self.service.image or "",
            "prometheus": self.prometheus_image,
            "otlp-receiver": self.receiver_image,
            "otel-collector": self.collector.image,
            "jaeger": self.jaeger.image,
        }


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _optional(value: Mapping[str, Any] | None, default_image: str) -> OptionalBackend:
    value = value or {}
    enabled = value.get("enabled", "auto")
    return OptionalBackend(
        image=str(value.get("image", default_image)),
        enabled=None if enabled == "auto" else bool(enabled),
    )


def parse(profile: Profile, value: Mapping[str, Any] | None, display: str) -> ContainersSection:
    value = value or {}
    svc = value.get("service", {})
    port = int(svc.get("port", DEFAULT_SERVICE_PORT))
    metrics_port = int(svc["metrics_port"]) if "metrics_port" in svc else None
    if metrics_port == port:
        metrics_port = None
    service = ServiceContainer(
        image=svc.get("image", profile.service.image),
        port=port,
        metrics_port=metrics_port,
        command=tuple(svc.get("command", ())),
        env={k: _env_str(v) for k, v in svc.get("env", {}).items()},
        ready_path=str(svc.get("ready_path", profile.service.ready.path)),
    )
    ext = value.get("external", {})
    log_file = None
    if "log_file" in ext:
        log_file = (profile.directory / ext["log_file"]).resolve()
        if log_file.exists() and not log_file.is_file():
            raise ProfileError(display, f"{KEY}.external.log_file", f"not a regular file: {ext['log_file']}")
    store = ext.get("trace_store", {})
    external = ExternalSection(
        service_url=ext.get("service_url"),
        metrics_url=ext.get("metrics_url"),
        prometheus_url=ext.get("prometheus_url"),
        trace_store_kind=store.get("kind"),
        trace_store_url=store.get("url"),
        log_file=log_file,
        jaeger_ui_url=ext.get("jaeger_ui_url"),
    )
    return ContainersSection(
        service=service,
        prometheus_image=str(value.get("prometheus", {}).get("image", DEFAULT_PROMETHEUS_IMAGE)),
        receiver_image=str(value.get("receiver", {}).get("image", DEFAULT_RECEIVER_IMAGE)),
        collector=_optional(
            value.get("collector"), os.environ.get(COLLECTOR_IMAGE_ENV, "").strip() or DEFAULT_COLLECTOR_IMAGE
        ),
        jaeger=_optional(
            value.get("jaeger"), os.environ.get(JAEGER_IMAGE_ENV, "").strip() or DEFAULT_JAEGER_IMAGE
        ),
        pull=str(value.get("pull", "missing")),
        pull_timeout=float(value.get("pull_timeout", 300.0)),
        startup_timeout=float(value.get("startup_timeout", 60.0)),
        external=external,
    )


def containers_section(profile: Profile) -> ContainersSection:
    """The parsed section; its defaults for a profile built without ``load_profile``."""
    section = profile.sections.get(KEY)
    if isinstance(section, ContainersSection):
        return section
    return parse(profile, None, str(profile.path))


def with_image_overrides(
    profile: Profile,
    *,
    service: str | None = None,
    prometheus: str | None = None,
    receiver: str | None = None,
    collector: str | None = None,
    jaeger: str | None = None,
    pull: str | None = None,
) -> Profile:
    """The profile with CLI image overrides (and ``--pull``) applied; ``None`` means "not given"."""
    section = containers_section(profile)
    if pull is not None:
        if pull not in ("missing", "never"):
            raise ProfileError("--pull", "", f"must be missing or never, got {pull!r}")
        section = replace(section, pull=pull)
    if service is not None:
        section = replace(section, service=replace(section.service, image=service))
    if prometheus is not None:
        section = replace(section, prometheus_image=prometheus)
    if receiver is not None:
        section = replace(section, receiver_image=receiver)
    if collector is not None:
        section = replace(section, collector=replace(section.collector, image=collector))
    if jaeger is not None:
        section = replace(section, jaeger=replace(section.jaeger, image=jaeger))
    for flag, image in (
        ("--service-image", service),
        ("--prometheus-image", prometheus),
        ("--receiver-image", receiver),
        ("--collector-image", collector),
        ("--jaeger-image", jaeger),
    ):
        if image is not None and (not image.strip() or any(c.isspace() for c in image)):
            raise ProfileError(flag, "", f"must be an image reference like registry/name:tag, got {image!r}")
    return replace(profile, sections={**profile.sections, KEY: section})
