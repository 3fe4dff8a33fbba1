"""Findings on an exposition the collector's ``prometheus`` exporter made of OTLP metrics
name the OTLP metric each Prometheus family came from (``metrics.source: otlp``).

The exporter's translation (the Prometheus compatibility spec, the collector's
``otlptranslator``): characters outside ``[a-zA-Z0-9_:]`` become ``_``; the unit is
appended (``ms`` → ``_milliseconds``, ``By`` → ``_bytes``, ``1`` on a gauge → ``_ratio``);
a monotonic sum gets ``_total``. A finding about such a suffix is about what the service
sent (its unit, its instrument), so it stays, but says which OTLP metric and which part
the exporter appended. ``target_info`` (the resource as a metric) is the exporter's own and
never reaches the checks (``conformance.collect._otlp_metrics.strip_exporter_families``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from conformance._model import Finding

__all__ = ["OtlpOrigin", "attribute_to_otlp", "exporter_name_base", "finding_metric_names", "otlp_origins"]

_INVALID = re.compile(r"[^a-zA-Z0-9_:]+")
#: Suffixes a name in a finding may carry beyond its family's (sample names).
_SAMPLE_SUFFIXES = ("_bucket", "_count", "_sum", "_created", "_total")


@dataclass(frozen=True, slots=True)
class OtlpOrigin:
    """The OTLP metric a Prometheus family was made of, and what the exporter appended."""

    otlp_name: str
    added: str

    def to_dict(self, prometheus_name: str) -> dict[str, str]:
        return {
            "otlp_metric": self.otlp_name,
            "exported_as": prometheus_name,
            **({"added_by_exporter": self.added} if self.added else {}),
        }


def exporter_name_base(otlp_name: str) -> str:
    """The Prometheus name the exporter makes of ``otlp_name`` before unit and ``_total``
    suffixes: invalid characters (runs of them) become one ``_``, a leading digit gets ``_``."""
    name = _INVALID.sub("_", otlp_name).strip("_") or "_"
    return f"_{name}" if name[0].isdigit() else name


def otlp_origins(prometheus_names: Iterable[str], otlp_names: Iterable[str]) -> dict[str, OtlpOrigin]:
    """Each Prometheus family name → the OTLP metric it came from, by the exporter's name
    translation: the family name is the OTLP name's base (:func:`exporter_name_base`) plus
    the suffixes the exporter appends (unit, ``_ratio``, ``_total``). The longest matching
    base wins (``http.server.request.duration`` over ``http.server``); a family no OTLP
    name explains is left out."""
    bases = sorted({exporter_name_base(n): n for n in otlp_names}.items(), key=lambda kv: -len(kv[0]))
    found: dict[str, OtlpOrigin] = {}
    for prom in prometheus_names:
        for base, otlp in bases:
            if prom == base or prom.startswith(base + "_"):
                found[prom] = OtlpOrigin(otlp, prom[len(base) :].lstrip("_"))
                break
    return found


def finding_metric_names(findings: Iterable[Finding]) -> list[str]:
    """The family names the findings' ``metric`` evidence may stand for: the name itself and
    the name without a sample suffix (``_bucket``, ``_total``...)."""
    names: set[str] = set()
    for finding in findings:
        name = str(finding.evidence.get("metric", ""))
        if name:
            names.add(name)
            names.update(name[: -len(s)] for s in _SAMPLE_SUFFIXES if name.endswith(s))
    return sorted(names)


def attribute_to_otlp(findings: Sequence[Finding], origins: Mapping[str, OtlpOrigin]) -> list[Finding]:
    """``findings`` with the OTLP metric behind each one's ``metric`` added to its evidence and
    message; findings naming no exported family are returned unchanged."""
    out: list[Finding] = []
    for finding in findings:
        name = str(finding.evidence.get("metric", ""))
        origin, family = _origin(name, origins)
        if origin is None:
            out.append(finding)
            continue
        added = f", the exporter appending {origin.added!r}" if origin.added else ""
        message = (
            f"{finding.message} (OTLP metric {origin.otlp_name}, exposed by the collector's prometheus "
            f"exporter as {family}{added})"
        )
        out.append(Finding(finding.requirement_id, message, {**finding.evidence, **origin.to_dict(family)}))
    return out


def _origin(name: str, origins: Mapping[str, OtlpOrigin]) -> tuple[OtlpOrigin | None, str]:
    if name in origins:
        return origins[name], name
    for suffix in _SAMPLE_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in origins:
            return origins[name[: -len(suffix)]], name[: -len(suffix)]
    return None, ""
