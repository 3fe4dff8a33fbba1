"""``telemetry.collector_config``: the collector config a team runs in production.

The rest of ``telemetry`` (protocol, service name, spans) is core profile
(``Profile.telemetry``); this module reads the named collector config (YAML,
no aliases, the profile's size cap) and checks it is one the harness can run:
:func:`conformance.stack._collector.team_pipeline_config` is tried on it at
load time, so a pipeline naming a processor our collector build lacks is a
:class:`ProfileError` naming the collector file and the path inside it before
anything starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance._exceptions import ProfileError
from conformance._profile import Profile, _existing_file, _read_yaml
from conformance.stack._collector import (
    CollectorListen,
    TeamConfigError,
    team_pipeline_config,
    team_pipeline_processors,
)

__all__ = ["KEY", "TeamCollectorConfig", "TelemetrySection", "parse"]

KEY = "telemetry"


@dataclass(frozen=True, slots=True)
class TeamCollectorConfig:
    """The team's collector config: its file, its content, and each pipeline's processors in order."""

    path: Path
    config: Mapping[str, Any] = field(repr=False)
    processors: Mapping[str, tuple[str, ...]]

    @property
    def signals(self) -> frozenset[str]:
        """The signals its pipelines carry (``traces``, ``metrics``, ``logs``)."""
        return frozenset(pipeline.partition("/")[0] for pipeline in self.processors)


@dataclass(frozen=True, slots=True)
class TelemetrySection:
    #: ``None`` when the profile names no collector config.
    collector_config: TeamCollectorConfig | None = None


def parse(profile: Profile, value: Mapping[str, Any] | None, display: str) -> TelemetrySection:
    value = value or {}
    if "collector_config" not in value:
        return TelemetrySection()
    where = f"{KEY}.collector_config"
    path = _existing_file(profile.directory, str(value["collector_config"]), display, where)
    shown = str(path)
    team = _read_yaml(path, shown)
    if team is None:
        raise ProfileError(
            shown, "", f"file is empty; {where} names a collector config (receivers, processors, exporters, "
            "service.pipelines)",
        )  # fmt: skip
    try:
        # Any ports do: this only proves the config can be made runnable.
        team_pipeline_config(
            team, listen=CollectorListen(), to_receiver="127.0.0.1:4317", jaeger=None, prometheus=True
        )
        processors = team_pipeline_processors(team)
    except TeamConfigError as exc:
        raise ProfileError(shown, exc.path, f"{exc.problem} (named by {display}: {where})") from None
    return TelemetrySection(TeamCollectorConfig(path, team, {k: tuple(v) for k, v in processors.items()}))
