"""Metrics a service pushes over OTLP, read as the collector's ``prometheus`` exporter serves them.

With ``metrics.source: otlp`` the MET requirements (and PII-004, RL-008) examine the
exposition the collector's ``prometheus`` exporter makes of the service's OTLP metrics,
instead of the service's own ``/metrics``. The exporter translates as the Prometheus
compatibility spec says (the collector's ``otlptranslator``):

* ``http.server.duration`` → ``http_server_duration``: characters outside
  ``[a-zA-Z0-9_:]`` become ``_``;
* the unit becomes a suffix (``ms`` → ``_milliseconds``, ``By`` → ``_bytes``,
  ``1`` on a gauge → ``_ratio``); a monotonic sum gets ``_total``;
* the resource becomes one ``target_info`` series, and ``service.name`` /
  ``service.instance.id`` the ``job`` / ``instance`` labels of every sample.

``target_info`` and the ``job``/``instance`` labels are the exporter's, not what the
service's data points carried: :func:`strip_exporter_families` takes them out of the
exposition before any check sees them. The suffixes are the exporter's
rendering of what the service did send (its unit, its instrument), so findings about them
stay, naming the OTLP metric they came from (:func:`conformance.checks.otlp_metrics.otlp_origins`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from prometheus_client.metrics_core import Metric

from conformance.collect._scrape import Exposition

__all__ = [
    "EXPORTER_FAMILIES",
    "EXPORTER_LABELS",
    "OtlpMetricsSource",
    "received_metric_points",
    "service_families",
    "strip_exporter_families",
    "strip_exporter_series",
]

#: Families the exporter adds on its own: the resource, rendered as a metric.
EXPORTER_FAMILIES = frozenset({"target_info"})
#: Labels the exporter puts on every sample from the resource (``service.name``,
#: ``service.instance.id``), not attributes of the service's data points.
EXPORTER_LABELS = frozenset({"job", "instance"})

#: One ``name="value"`` pair of a sample's label block (values escape ``\\``, ``\"``, ``\n``).
_LABEL_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


@dataclass(frozen=True, slots=True)
class OtlpMetricsSource:
    """Where the metrics a service pushes over OTLP can be scraped, or why nowhere.

    ``url`` is the collector's ``prometheus`` exporter (``/metrics``) and ``job`` the
    Prometheus job scraping it; ``url`` is empty when the collector does not run, and
    ``unavailable`` then says why and ``fix`` how to change that."""

    url: str
    job: str
    unavailable: str = ""
    fix: str = ""
    #: Metric points the harness's receiver got so far: the collector hands each push to the
    #: exporter, then to the receiver, so a rise means the exporter holds a newer push.
    pushes: Callable[[], int] | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        """The evidence's words for where the metrics were read."""
        return f"the collector's prometheus exporter at {self.url}, metrics the service pushed over OTLP"


def received_metric_points(stats: Mapping[str, Mapping[str, int]]) -> int:
    """Metric points received, from a harness receiver's ``stats()`` (embedded or its read API)."""
    return int(stats.get("metric_points", {}).get("received", 0))


def service_families(names: Iterable[str]) -> list[str]:
    """``names`` without the families the exporter adds on its own."""
    return [n for n in names if n not in EXPORTER_FAMILIES]


def _exporter_line(line: str) -> bool:
    """True for a ``# HELP``/``# TYPE``/``# UNIT`` line or a sample of an exporter family."""
    if line.startswith("#"):
        parts = line.split(None, 3)
        return len(parts) >= 3 and parts[1] in {"HELP", "TYPE", "UNIT"} and parts[2] in EXPORTER_FAMILIES
    name = re.split(r"[{\s]", line, maxsplit=1)[0]
    return name in EXPORTER_FAMILIES


def _strip_labels(line: str) -> str:
    """A sample line without the exporter's resource labels (its label block rebuilt)."""
    if line.startswith("#") or "{" not in line:
        return line
    start = line.index("{")
    pos, kept = start + 1, []
    while True:
        match = _LABEL_PAIR.match(line, pos)
        if match is None:
            break
        if match.group(1) not in EXPORTER_LABELS:
            kept.append(f'{match.group(1)}="{match.group(2)}"')
        pos = match.end()
    if not line.startswith("}", pos):
        return line  # not a label block this reading understands: left as served
    return f"{line[:start]}{{{','.join(kept)}}}{line[pos + 1 :]}" if kept else line[:start] + line[pos + 1 :]


def strip_exporter_families(exposition: Exposition) -> Exposition:
    """``exposition`` without what the exporter adds on its own, in both its parsed families
    and its text, so lint, promtool and the series counts see only what the service sent:
    the ``target_info`` family, and the ``job``/``instance`` labels it copies from the
    resource onto every sample."""
    lines = exposition.text.splitlines(keepends=True)
    text = "".join(_strip_labels(line) for line in lines if not _exporter_line(line))
    families = []
    for family in exposition.families:
        if family.name in EXPORTER_FAMILIES:
            continue
        clean = Metric(family.name, family.documentation, family.type, family.unit)
        clean.samples = [
            s._replace(labels={k: v for k, v in s.labels.items() if k not in EXPORTER_LABELS})
            for s in family.samples
        ]
        families.append(clean)
    return replace(exposition, text=text, families=tuple(families))


#: The exporter's ``job``/``instance`` as Prometheus stores them: its own target labels win, so
#: the scraped ones are renamed (``honor_labels: false``).
_STORED_EXPORTER_LABELS = frozenset({"exported_job", "exported_instance"})


def strip_exporter_series(series: Iterable[Mapping[str, str]]) -> tuple[dict[str, str], ...]:
    """Prometheus's series of the exporter's job without what the exporter added: no
    ``target_info`` series, no ``exported_job``/``exported_instance`` labels."""
    return tuple(
        {k: v for k, v in labels.items() if k not in _STORED_EXPORTER_LABELS}
        for labels in series
        if labels.get("__name__") not in EXPORTER_FAMILIES
    )
