"""An exposition as Prometheus sees it: families under the names it stores.

prometheus-client's parsers do the parsing; this module only undoes what
they normalise away and the MET checks need back:

* the text parser renames a counter family ``x_total`` to ``x``, and a
  counter declared *without* ``_total`` gets ``_total`` appended to its
  samples, so ``x`` and ``x_total`` become indistinguishable. The ``# TYPE``
  lines say which was written, and the family gets its written name back
  (``http_request_count`` stays a counter without ``_total``).
* in OpenMetrics a counter family is named without ``_total`` and an info
  family without ``_info``; Prometheus stores ``x_total`` / ``x_info``, so
  those are the names used here, whatever the format.
* the text parser yields a sample it cannot attach to the family above it as
  a one-sample untyped family; Prometheus's own parser (expfmt) attaches it
  to the family of that name wherever it was declared. Such samples are
  merged the way expfmt merges them, and a family declared twice (a second
  ``# HELP``/``# TYPE`` line, or a ``# TYPE`` after its samples: expfmt's
  "second TYPE line") is recorded in :attr:`MetricsView.duplicate_declarations`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

__all__ = ["ExposedFamily", "MetricsView", "family_sample_names", "series_key", "view_exposition"]

#: prometheus-client family types → the names expfmt/promlint use.
_TYPES = {
    "unknown": "untyped",
    "untyped": "untyped",
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "gauge_histogram",
}
_DECLARATION = re.compile(r"^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(\S+))?", re.MULTILINE)
_NAME = itemgetter(0)  # Sample.name
_LABELS = itemgetter(1)  # Sample.labels


@dataclass(frozen=True, slots=True)
class ExposedFamily:
    """One metric family: ``name`` as Prometheus stores its main series,
    ``type`` in expfmt's words (``counter``, ``gauge``, ``histogram``,
    ``summary``, ``untyped``, ``gauge_histogram``), ``help`` ('' when absent),
    ``unit`` (OpenMetrics ``# UNIT``), and its samples as parsed."""

    name: str
    type: str
    help: str
    unit: str
    samples: tuple[Sample, ...]

    def label_names(self) -> set[str]:
        return set().union(*map(_LABELS, self.samples))


@dataclass(frozen=True, slots=True)
class MetricsView:
    format: str
    families: tuple[ExposedFamily, ...]
    duplicate_declarations: tuple[str, ...] = ()

    def family(self, name: str) -> ExposedFamily | None:
        return next((f for f in self.families if f.name == name), None)

    def sample_owners(self) -> dict[str, str]:
        """Sample (series) name → the metric it belongs to.

        In the text format a counter's or histogram's ``_created`` series is a
        gauge family of its own (``http_requests_created``); it is counted
        with its metric (``http_requests_total``), as OpenMetrics groups it.
        """
        owners: dict[str, str] = {}
        for family in self.families:
            for name in family_sample_names(family):
                owners.setdefault(name, family.name)
            for name in dict.fromkeys(map(_NAME, family.samples)):  # distinct, in order, found in C
                owners.setdefault(name, family.name)
        types = {f.name: f.type for f in self.families}
        for family in self.families:
            stem = family.name.removesuffix("_created")
            if stem == family.name or family.type != "gauge":
                continue
            if types.get(f"{stem}_total") == "counter":
                owners[family.name] = f"{stem}_total"
            elif types.get(stem) in ("histogram", "summary"):
                owners[family.name] = stem
        return owners

    def series_count(self) -> int:
        return sum(len(f.samples) for f in self.families)


def family_sample_names(family: ExposedFamily) -> tuple[str, ...]:
    """The sample names expfmt attaches to ``family`` (``_bucket``, ``_sum``…)."""
    name = family.name
    if family.type == "histogram":
        return (f"{name}_bucket", f"{name}_sum", f"{name}_count")
    if family.type == "gauge_histogram":
        return (f"{name}_bucket", f"{name}_gsum", f"{name}_gcount")
    if family.type == "summary":
        return (name, f"{name}_sum", f"{name}_count")
    return (name,)


def series_key(sample: Sample) -> tuple[str, frozenset[tuple[str, str]]]:
    """Identity of a series: sample name and label set."""
    return sample.name, frozenset(sample.labels.items())


def view_exposition(families: Iterable[Metric], text: str, fmt: str) -> MetricsView:
    """The families of one parsed exposition under Prometheus's names.

    ``families`` and ``fmt`` come from the prometheus-client parse of ``text``
    (``Exposition.families`` and ``.format``); ``text`` is read only for its
    ``# HELP``/``# TYPE`` lines.
    """
    openmetrics = fmt == "openmetrics"
    helps: Counter[str] = Counter()
    types: Counter[str] = Counter()
    declared: dict[str, str] = {}
    duplicates: set[str] = set()
    previous: re.Match[str] | None = None
    for match in _declarations(text):
        kind, name = match.group(1), match.group(2).strip('"')
        if kind == "HELP":
            helps[name] += 1
        else:
            types[name] += 1
            declared.setdefault(name, match.group(3) or "")
            if previous is not None and previous.group(1) == "HELP" and previous.group(2).strip('"') == name:
                help_line_end = text.find("\n", previous.end())
                gap = text[help_line_end + 1 : match.start()].splitlines() if help_line_end >= 0 else []
                if any(line.strip() and not line.lstrip().startswith("#") for line in gap):
                    duplicates.add(
                        name
                    )  # samples between HELP and TYPE: expfmt's "TYPE reported after samples"
        previous = match
    duplicates |= {n for n, count in helps.items() if count > 1} | {
        n for n, count in types.items() if count > 1
    }

    built: dict[str, _Building] = {}
    owners: dict[str, _Building] = {}
    for metric in families:
        family = _exposed(metric, openmetrics, declared)
        existing = built.get(family.name)
        if existing is None and family.type == "untyped" and len(family.samples) == 1:
            existing = owners.get(family.samples[0].name)
        if existing is None:
            building = _Building(family)
            built[family.name] = building
            for sample_name in family_sample_names(family):
                owners.setdefault(sample_name, building)
            continue
        if family.type != "untyped" and (existing.type != "untyped" or existing.samples):
            duplicates.add(existing.name)
        existing.merge(family)
    names = {_declared_name(n, declared, openmetrics) for n in duplicates}
    return MetricsView(fmt, tuple(b.freeze() for b in built.values()), tuple(sorted(names)))


def _declarations(text: str) -> Iterator[re.Match[str]]:
    """``_DECLARATION.finditer(text)``, found faster: only a ``#`` at the start of a line is
    tried (``str.find`` skips a 100 MB exposition's sample lines in C)."""
    at = text.find("#")
    while at >= 0:
        if at == 0 or text[at - 1] == "\n":
            match = _DECLARATION.match(text, at)
            if match is not None:
                yield match
        at = text.find("#", at + 1)


class _Building:
    def __init__(self, family: ExposedFamily) -> None:
        self.name, self.type, self.help, self.unit = family.name, family.type, family.help, family.unit
        self.samples = list(family.samples)

    def merge(self, family: ExposedFamily) -> None:
        self.samples.extend(family.samples)
        self.help = self.help or family.help
        if self.type == "untyped" and family.type != "untyped":
            self.type = family.type

    def freeze(self) -> ExposedFamily:
        return ExposedFamily(self.name, self.type, self.help, self.unit, tuple(self.samples))


def _declared_name(name: str, declared: Mapping[str, str], openmetrics: bool) -> str:
    if openmetrics and declared.get(name) == "counter":
        return f"{name}_total"
    if openmetrics and declared.get(name) == "info":
        return f"{name}_info"
    return name


def _exposed(metric: Metric, openmetrics: bool, declared: Mapping[str, str]) -> ExposedFamily:
    kind = _TYPES.get(metric.type, metric.type)
    samples = tuple(metric.samples)
    name = metric.name
    if metric.type == "counter":
        if openmetrics or declared.get(f"{name}_total") == "counter":
            name = f"{name}_total"
        else:
            # Declared without _total: the text parser appended it to the samples; take it off again.
            samples = tuple(
                s._replace(name=s.name.removesuffix("_total")) if s.name == f"{name}_total" else s
                for s in samples
            )
    elif metric.type == "info":
        name = f"{name}_info"
    return ExposedFamily(name, kind, metric.documentation or "", getattr(metric, "unit", "") or "", samples)
