"""MET-002 … MET-011: metric names, types, labels and cardinality.

Pure: parsed expositions (as :class:`MetricsView`), series snapshots (from
``/metrics`` and from Prometheus's ``/api/v1/series``) and the profile's
contract in, findings out. MET-001 (the exposition is scraped at all) lives in
:mod:`conformance.checks.exports`.

Three vantage points:

* one scrape, linted like ``promtool check metrics`` (MET-002, MET-003) and
  held against the profile's contract (MET-004, MET-005);
* a probe of N requests with distinct ids, paths, query strings and headers,
  with series counted per metric before it, after its first half and after
  its second half, on ``/metrics`` and in Prometheus (MET-006 … MET-008);
* scrapes under steady traffic (MET-009, MET-010), and ``/metrics`` on the
  public port when the profile says metrics are internal (MET-011).

No verdict without evidence: MET-002 … MET-010 judge an exposition, so
without a scrapeable one (:func:`exposition_gap`: not 200, a web page, a
parse error, no family) they have nothing to examine and end in ``error``
(MET-001 fails). Checks whose input may hold nothing to judge return what
they examined next to their findings (``{"series": 412}``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from conformance._gc import cyclic_gc_paused
from conformance._mask import excerpt
from conformance._model import Finding, Level
from conformance._requirements import requirement
from conformance._sections.metrics import RequiredMetric
from conformance.checks._exposition import ExposedFamily, MetricsView, series_key, view_exposition
from conformance.checks._promlint import UNIT_RULES, LintProblem, compare_with_promtool, lint_view

__all__ = [
    "MET_002",
    "MET_003",
    "MET_004",
    "MET_005",
    "MET_006",
    "MET_007",
    "MET_008",
    "MET_009",
    "MET_010",
    "MET_011",
    "NO_EXPOSITION_HINT",
    "PROMETHEUS_SYNTHETIC",
    "REFUSING_STATUSES",
    "GrowthRow",
    "LintProblem",
    "LintedExposition",
    "MetricsView",
    "SeriesSnapshot",
    "check_cardinality_growth",
    "check_counters_monotonic",
    "check_forbidden_labels",
    "check_histograms",
    "check_metrics_exposure",
    "check_naming",
    "check_raw_path_labels",
    "check_required_metrics",
    "check_series_churn",
    "check_units",
    "compare_with_promtool",
    "counter_sample_names",
    "exposition_gap",
    "growth_rows",
    "lint_exposition",
    "required_without_samples",
    "snapshot_from_prometheus",
    "snapshot_from_view",
    "view_exposition",
]

MET_002 = requirement(
    "MET-002",
    Level.MUST,
    "Metric names, types and labels pass promlint's rules: help text, _total on counters only, reserved "
    "suffixes and labels on their types only, snake_case, no ':', no type in the name, no duplicates",
    source="Prometheus docs 'Metric and label naming'; promtool check metrics; "
    "seed 000 §Middleware 3 metric names",
)
MET_003 = requirement(
    "MET-003",
    Level.MUST,
    "Metrics use base units (_seconds, _bytes), never ms, milliseconds or other abbreviations",
    source="Prometheus docs 'Metric and label naming: base units'; seed 002 §Metrics Reference "
    "(http_request_duration_seconds)",
)
MET_004 = requirement(
    "MET-004",
    Level.MUST,
    "The metrics the profile requires are exposed with their type, label set and unit",
    source="seed 000 §Middleware 3 'Available metrics'; seed 004 §Metrics (Prometheus) 'Available Metrics'; "
    "profile metrics.required",
)
MET_005 = requirement(
    "MET-005",
    Level.MUST,
    "Histograms are well formed (+Inf bucket, cumulative, _count equals +Inf) and have bucket bounds "
    "at the profile's SLO thresholds",
    source="Prometheus exposition format 'Histograms and summaries'; seed 000 §SLO and performance targets "
    "(health 100 ms, login 500 ms, chat 2 s); profile metrics.required[].buckets",
)
MET_006 = requirement(
    "MET-006",
    Level.MUST,
    "No metric carries a forbidden high-cardinality label (user_id, session_id, request_id, email, "
    "full_path)",
    source="seed 002 §Cardinality Protection 'NEVER used as metric labels'; profile metrics.forbidden_labels",
)
MET_007 = requirement(
    "MET-007",
    Level.MUST,
    "Label values are route templates, never raw request paths with ids or query strings",
    source="seed 002 §Cardinality Protection 'full_path - Can include IDs'; seed 000 metric example "
    'endpoint="/chat/completions"',
)
MET_008 = requirement(
    "MET-008",
    Level.MUST,
    "Series per metric do not grow with distinct users, ids, query strings or headers, and stay within "
    "budget, on /metrics and in Prometheus",
    source="seed 002 §Cardinality Protection; seed 002 §Troubleshooting 'cardinality explosion in custom "
    "metrics'; profile metrics.cardinality",
)
MET_009 = requirement(
    "MET-009",
    Level.MUST,
    "Counters never decrease between scrapes, on /metrics or in Prometheus (no resets)",
    source="Prometheus docs 'Metric types: Counter' (only goes up, reset on restart); OpenMetrics §Counter",
)
MET_010 = requirement(
    "MET-010",
    Level.SHOULD,
    "Series do not churn between two scrapes under steady traffic",
    source="Prometheus docs 'Instrumentation: avoid missing metrics'; seed 002 §Troubleshooting "
    "'cardinality explosion'",
)
MET_011 = requirement(
    "MET-011",
    Level.MUST,
    "When the profile says metrics are internal, /metrics refuses on the public port (401/403/404) or "
    "lives on a separate port",
    source="seed 002 §Security Considerations 'Metrics Endpoint Security: should never be publicly "
    "accessible'; profile metrics.internal",
)

#: Series Prometheus adds to every target itself; they say nothing about the service.
PROMETHEUS_SYNTHETIC = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)
#: Labels Prometheus attaches to every series of a target.
_TARGET_LABELS = frozenset({"job", "instance"})
_RESERVED_LABELS = frozenset({"le", "quantile"})
_SUFFIXES = ("_bucket", "_count", "_sum", "_created", "_total", "_info", "_gcount", "_gsum")
_EXAMPLES = 3


# -- is there an exposition at all? ------------------------------------------
#: The fix when there is no exposition to examine (MET-002 … MET-010 are then ``error``).
NO_EXPOSITION_HINT = "set metrics.path / metrics.port, or declare MET-* in requirements.not_applicable"
#: Media types of web pages: a single-page app's catch-all answers /metrics with one.
_PAGE_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def exposition_gap(
    *, url: str, status_code: int, content_type: str, parse_error: str, family_count: int
) -> str:
    """Why one scrape (``Exposition``'s fields) gives nothing to examine, or ``""``.

    Not 200, a web page (a 200 ``text/html`` from a catch-all route is not an
    exposition, whatever it parses to), a body that does not parse, or one
    without a single metric family: each message ends in "nothing to examine".
    """
    media = content_type.split(";", 1)[0].strip().lower()
    served = media or "without a Content-Type"
    if status_code != 200:
        return f"GET {url} answered {status_code} {served}; nothing to examine"
    if media in _PAGE_MEDIA_TYPES:
        return f"GET {url} answered 200 {media}, a web page, not a metrics exposition; nothing to examine"
    if parse_error:
        return (
            f"GET {url} answered 200 {served} that does not parse ({excerpt(parse_error, 160)}); "
            "nothing to examine"
        )
    if family_count == 0:
        return f"GET {url} answered 200 {served} with no metric family in it; nothing to examine"
    return ""


# -- MET-002 / MET-003: one scrape, linted --------------------------------
@dataclass(frozen=True, slots=True)
class LintedExposition:
    """One scrape and what the lint found in it (``source`` says which scrape)."""

    source: str
    format: str
    parse_error: str
    view: MetricsView
    problems: tuple[LintProblem, ...]


def lint_exposition(
    source: str, families: Iterable[Metric], text: str, fmt: str, parse_error: str = ""
) -> LintedExposition:
    """Parse-result in (``Exposition.families``, ``.text``, ``.format``, ``.parse_error``), lint out."""
    if parse_error:
        return LintedExposition(source, fmt, parse_error, MetricsView(fmt, ()), ())
    with cyclic_gc_paused():
        view = view_exposition(families, text, fmt)
        return LintedExposition(source, fmt, "", view, tuple(lint_view(view)))


def _lint_findings(linted: Sequence[LintedExposition], requirement_id: str, *, units: bool) -> list[Finding]:
    where: dict[LintProblem, list[str]] = defaultdict(list)
    for item in linted:
        for problem in item.problems:
            if (problem.rule in UNIT_RULES) == units:
                where[problem].append(item.source)
    return [
        Finding(
            requirement_id,
            f"{problem.metric}: {problem.text} (in {', '.join(sources)})",
            {"metric": problem.metric, "rule": problem.rule, "problem": problem.text, "expositions": sources},
        )
        for problem, sources in sorted(where.items())
    ]


def check_naming(linted: Sequence[LintedExposition]) -> list[Finding]:
    """MET-002 over every scrape (text and OpenMetrics): an exposition that does
    not parse at all is a finding too (it cannot be linted, and Prometheus
    would refuse it in that format)."""
    unparsable = [
        Finding(
            MET_002.id,
            f"the {item.source} exposition does not parse: {excerpt(item.parse_error, 200)}",
            {"exposition": item.source, "format": item.format},
        )
        for item in linted
        if item.parse_error
    ]
    return _lint_findings(linted, MET_002.id, units=False) + unparsable


def check_units(linted: Sequence[LintedExposition]) -> list[Finding]:
    """MET-003: the unit rules of the lint (``use base unit``, abbreviated units)."""
    return _lint_findings(linted, MET_003.id, units=True)


# -- MET-004 / MET-005: the profile's contract ----------------------------
def _value_samples(family: ExposedFamily) -> list[Sample]:
    return [s for s in family.samples if not s.name.endswith("_created") or s.name == family.name]


def _similar(view: MetricsView, name: str) -> list[str]:
    stem = name.removesuffix("_total")
    stem = stem.rsplit("_", 1)[0] if "_" in stem else stem
    return sorted(
        f.name
        for f in view.families
        if f.name != name and f.name.startswith(f"{stem}_") and not f.name.endswith("_created")
    )[:3]


def check_required_metrics(view: MetricsView, required: Sequence[RequiredMetric]) -> list[Finding]:
    """MET-004: each required metric exists under its Prometheus name with its
    type, label set (on every sample it has) and unit."""
    findings = []
    for req in required:
        family = view.family(req.name)
        if family is None:
            similar = _similar(view, req.name)
            hint = f"; exposed instead: {', '.join(similar)} (another unit or suffix?)" if similar else ""
            findings.append(
                Finding(
                    MET_004.id,
                    f"{req.name} ({req.type}) is not exposed{hint}",
                    {"metric": req.name, "expected_type": req.type, "similar": similar},
                )
            )
            continue
        if family.type != req.type:
            findings.append(
                Finding(
                    MET_004.id,
                    f"{req.name} is a {family.type}, the profile requires a {req.type}",
                    {"metric": req.name, "expected_type": req.type, "type": family.type},
                )
            )
        if req.unit and family.unit and family.unit != req.unit:
            findings.append(
                Finding(
                    MET_004.id,
                    f"{req.name} declares # UNIT {family.unit}, the profile requires {req.unit}",
                    {"metric": req.name, "expected_unit": req.unit, "unit": family.unit},
                )
            )
        if req.labels is not None:
            findings.extend(_label_findings(req, family))
    return findings


def _label_findings(req: RequiredMetric, family: ExposedFamily) -> list[Finding]:
    expected = set(req.labels or ())
    missing: set[str] = set()
    extra: set[str] = set()
    wrong = 0
    for sample in _value_samples(family):
        names = set(sample.labels) - _RESERVED_LABELS
        lacks, more = expected - names, (set() if req.extra_labels else names - expected)
        if lacks or more:
            wrong += 1
            missing |= lacks
            extra |= more
    if not wrong:
        return []
    parts = ([f"missing {sorted(missing)}"] if missing else []) + (
        [f"unexpected {sorted(extra)}"] if extra else []
    )
    return [
        Finding(
            MET_004.id,
            f"{req.name}: {wrong} sample(s) have the wrong labels: {'; '.join(parts)} "
            f"(required {sorted(expected)})",
            {
                "metric": req.name,
                "expected_labels": sorted(expected),
                "missing": sorted(missing),
                "unexpected": sorted(extra),
                "samples": wrong,
            },
        )
    ]


def required_without_samples(view: MetricsView, required: Sequence[RequiredMetric]) -> list[str]:
    """Required metrics that are declared but have no samples yet, so their labels could not be checked."""
    names = []
    for req in required:
        family = view.family(req.name)
        if family is not None and req.labels is not None and not _value_samples(family):
            names.append(req.name)
    return names


def _le(value: str) -> float:
    return math.inf if value in ("+Inf", "Inf", "+inf") else float(value)


def _bucket_series(family: ExposedFamily) -> dict[frozenset[tuple[str, str]], list[tuple[float, float]]]:
    series: dict[frozenset[tuple[str, str]], list[tuple[float, float]]] = defaultdict(list)
    for sample in family.samples:
        if sample.name == f"{family.name}_bucket" and "le" in sample.labels:
            key = frozenset((k, v) for k, v in sample.labels.items() if k != "le")
            series[key].append((_le(sample.labels["le"]), float(sample.value)))
    return series


def check_histograms(
    view: MetricsView, required: Sequence[RequiredMetric]
) -> tuple[list[Finding], dict[str, int]]:
    """MET-005: every histogram's buckets are cumulative and end in ``+Inf``
    (= ``_count``); required histograms have a bound at each profile threshold.
    A required histogram that is missing is MET-004's finding, not this one's.

    Also returns what was examined: ``histograms`` with at least one bucket
    series, and those ``bucket_series`` (a histogram without observations
    has none, and nothing of it can be judged)."""
    findings = []
    examined = {"histograms": 0, "bucket_series": 0}
    thresholds = {r.name: r.buckets for r in required if r.buckets}
    for family in view.families:
        if family.type != "histogram":
            continue
        buckets = _bucket_series(family)
        if buckets:
            examined["histograms"] += 1
            examined["bucket_series"] += len(buckets)
        counts = {
            frozenset(s.labels.items()): float(s.value)
            for s in family.samples
            if s.name == f"{family.name}_count"
        }
        problems: dict[str, int] = defaultdict(int)
        example: dict[str, str] = {}
        for key, points in buckets.items():
            points.sort()
            labels = ",".join(f"{k}={v}" for k, v in sorted(key))
            if not points or points[-1][0] != math.inf:
                problems["no +Inf bucket"] += 1
                example.setdefault("no +Inf bucket", labels)
            elif key not in counts and view.format != "openmetrics":
                # The text format requires _count beside the buckets (OpenMetrics makes it optional).
                problems["no _count series beside its buckets"] += 1
                example.setdefault("no _count series beside its buckets", labels)
            elif key in counts and counts[key] != points[-1][1]:
                problems["_count differs from the +Inf bucket"] += 1
                example.setdefault("_count differs from the +Inf bucket", labels)
            if any(b[1] < a[1] for a, b in itertools.pairwise(points)):
                problems["bucket counts decrease as le grows (not cumulative)"] += 1
                example.setdefault("bucket counts decrease as le grows (not cumulative)", labels)
        for problem, n in sorted(problems.items()):
            findings.append(
                Finding(
                    MET_005.id,
                    f"{family.name}: {problem} in {n} series, e.g. {{{excerpt(example[problem], 100)}}}",
                    {"metric": family.name, "problem": problem, "series": n},
                )
            )
        wanted = thresholds.get(family.name, ())
        bounds = {le for points in buckets.values() for le, _ in points}
        if wanted and bounds:
            missing = [t for t in wanted if not any(math.isclose(t, b, rel_tol=1e-9) for b in bounds)]
            if missing:
                shown = sorted(b for b in bounds if b != math.inf)
                findings.append(
                    Finding(
                        MET_005.id,
                        f"{family.name}: no bucket bound at {', '.join(f'{t:g}' for t in missing)} "
                        f"(the profile's thresholds); bounds are {', '.join(f'{b:g}' for b in shown)}",
                        {"metric": family.name, "missing_bounds": missing, "bounds": shown},
                    )
                )
    return findings, examined


# -- MET-006 / MET-007 / MET-008: series under probe traffic ---------------
@dataclass(frozen=True, slots=True)
class SeriesSnapshot:
    """The series of every metric family at one moment, from one vantage point.

    ``series`` maps the family name to the label sets of its series; each
    label set carries the series' own name as ``__name__`` (a histogram's
    ``_bucket``/``_sum``/``_count`` series all belong to its family).
    """

    source: str
    moment: str
    series: Mapping[str, tuple[Mapping[str, str], ...]]

    def count(self, family: str) -> int:
        return len(self.series.get(family, ()))

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.series.values())


def snapshot_from_view(view: MetricsView, *, source: str, moment: str) -> SeriesSnapshot:
    """The series of one scrape, grouped by metric (``_created`` series with their metric)."""
    owners = view.sample_owners()
    grouped: dict[str, list[Mapping[str, str]]] = defaultdict(list)
    with cyclic_gc_paused():
        for family in view.families:
            names = {sample.name for sample in family.samples}
            if len({owners.get(name, family.name) for name in names}) == 1:  # the usual case
                owner = owners.get(next(iter(names)), family.name)
                grouped[owner] += [{"__name__": s.name, **s.labels} for s in family.samples]
                continue
            for sample in family.samples:
                owner = owners.get(sample.name, family.name)
                grouped[owner].append({"__name__": sample.name, **sample.labels})
        return SeriesSnapshot(source, moment, {k: tuple(v) for k, v in grouped.items()})


def snapshot_from_prometheus(
    series: Iterable[Mapping[str, str]], owners: Mapping[str, str], *, source: str, moment: str
) -> SeriesSnapshot:
    """Prometheus's ``/api/v1/series`` answer grouped by family.

    ``owners`` (:meth:`MetricsView.sample_owners` of a recent scrape) maps
    series names to families; a name the scrape does not know is grouped by
    its name with the usual suffix taken off. Prometheus's own per-target
    series and the ``job``/``instance`` labels are left out.
    """
    grouped: dict[str, list[Mapping[str, str]]] = defaultdict(list)
    for labels in series:
        name = labels.get("__name__", "")
        if not name or name in PROMETHEUS_SYNTHETIC:
            continue
        family = owners.get(name) or _strip_suffix(name, owners)
        grouped[family].append({k: v for k, v in labels.items() if k not in _TARGET_LABELS})
    return SeriesSnapshot(source, moment, {k: tuple(v) for k, v in grouped.items()})


def _strip_suffix(name: str, owners: Mapping[str, str]) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in owners.values():
            return name[: -len(suffix)]
    return name


def _normalise_label(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _examples(values: Iterable[str]) -> list[str]:
    return [excerpt(v, 80) for v in sorted(set(values))[:_EXAMPLES]]


def check_forbidden_labels(snapshots: Sequence[SeriesSnapshot], forbidden: Sequence[str]) -> list[Finding]:
    """MET-006: label names compared case- and separator-insensitively (``userId`` is ``user_id``)."""
    wanted = {_normalise_label(f): f for f in forbidden}
    findings = []
    for snap in snapshots:
        for family, label_sets in sorted(snap.series.items()):
            hits: dict[str, list[str]] = defaultdict(list)
            for labels in label_sets:
                for name, value in labels.items():
                    if name != "__name__" and _normalise_label(name) in wanted:
                        hits[name].append(value)
            for name, values in sorted(hits.items()):
                rule = wanted[_normalise_label(name)]
                findings.append(
                    Finding(
                        MET_006.id,
                        f"{family} has label {name!r} (forbidden: {rule}) on {len(values)} series "
                        f"in {snap.source}, e.g. {_examples(values)}",
                        {
                            "metric": family,
                            "label": name,
                            "forbidden": rule,
                            "source": snap.source,
                            "series": len(values),
                            "distinct_values": len(set(values)),
                            "examples": _examples(values),
                        },
                    )
                )
    return findings


_PATH_LIKE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s]*)?/")
_ID_SEGMENT = re.compile(
    r"^(?:\d{6,}|[0-9a-fA-F]{16,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


def _raw_path_reason(value: str, marker: str, concrete: Mapping[str, str], templates: set[str]) -> str:
    if not _PATH_LIKE.match(value) or value in templates:
        return ""
    if marker and marker in value:
        return "the probe's request path"
    path = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s]*", "", value)
    bare = path.split("?", 1)[0]
    if bare in concrete:
        return f"the raw path of {concrete[bare]}"
    if "?" in path:
        return "a path with a query string"
    if any(_ID_SEGMENT.match(segment) for segment in bare.split("/")):
        return "a path with an id in it"
    return ""


def check_raw_path_labels(
    snapshots: Sequence[SeriesSnapshot],
    *,
    probe_marker: str,
    concrete_paths: Mapping[str, str],
) -> list[Finding]:
    """MET-007: a label value that is a request path with the probe's ids in
    it, a profile endpoint's concrete path (``/users/4242`` for
    ``/users/{user_id}``), a path with a query string, or a path with an
    id-like segment (≥ 6 digits, long hex, a UUID). Route templates pass.

    ``probe_marker`` is the prefix every probe id starts with;
    ``concrete_paths`` maps concrete paths to their route templates.
    """
    templates = set(concrete_paths.values())
    concrete = {path: tpl for path, tpl in concrete_paths.items() if path != tpl}
    findings = []
    for snap in snapshots:
        for family, label_sets in sorted(snap.series.items()):
            hits: dict[str, dict[str, str]] = defaultdict(dict)
            for labels in label_sets:
                for name, value in labels.items():
                    if name in ("__name__", "le", "quantile") or value in hits[name]:
                        continue
                    reason = _raw_path_reason(value, probe_marker, concrete, templates)
                    if reason:
                        hits[name][value] = reason
            for name, values in sorted(hits.items()):
                if not values:
                    continue
                reasons = sorted(set(values.values()))
                findings.append(
                    Finding(
                        MET_007.id,
                        f"{family}{{{name}}} carries raw request paths in {snap.source}: "
                        f"{len(values)} distinct value(s) such as {_examples(values)} ({'; '.join(reasons)})",
                        {
                            "metric": family,
                            "label": name,
                            "source": snap.source,
                            "distinct_values": len(values),
                            "examples": _examples(values),
                            "reasons": reasons,
                        },
                    )
                )
    return findings


@dataclass(frozen=True, slots=True)
class GrowthRow:
    """Series of one metric at the three moments of the probe, from one source."""

    source: str
    metric: str
    before: int
    after_first_half: int
    after_second_half: int
    requests_in_second_half: int
    top_label: str
    new_label_values: tuple[str, ...]

    @property
    def new_series(self) -> int:
        return self.after_second_half - self.after_first_half

    @property
    def per_request(self) -> float:
        return self.new_series / self.requests_in_second_half if self.requests_in_second_half else 0.0

    @property
    def values_per_request(self) -> float:
        """New values of the culprit label per probe request (the series' slope when no label
        took a new value): a histogram adds a dozen series for one new value, so the value
        count is what tells an id in a label from an enum value seen late (a GC kind)."""
        if not self.top_label:
            return self.per_request
        n = self.requests_in_second_half
        return len(self.new_label_values) / n if n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "metric": self.metric,
            "series_before": self.before,
            "series_after_first_half": self.after_first_half,
            "series_after": self.after_second_half,
            "new_series_in_second_half": self.new_series,
            "probe_requests_in_second_half": self.requests_in_second_half,
            "new_series_per_request": round(self.per_request, 4),
            "label": self.top_label,
            "new_label_values": len(self.new_label_values),
            "new_label_values_per_request": round(self.values_per_request, 4),
            "examples": _examples(self.new_label_values),
        }


def growth_rows(
    before: SeriesSnapshot,
    first_half: SeriesSnapshot,
    second_half: SeriesSnapshot,
    requests_in_second_half: int,
) -> list[GrowthRow]:
    """One row per metric of ``second_half``, biggest growth first; ``top_label``
    is the label that took the most new values in the second half."""
    rows = []
    for family, label_sets in second_half.series.items():
        earlier = first_half.series.get(family, ())
        top, new_values = "", tuple[str, ...]()
        if len(label_sets) > len(earlier):
            seen: dict[str, set[str]] = defaultdict(set)
            for labels in earlier:
                for k, v in labels.items():
                    seen[k].add(v)
            fresh: dict[str, set[str]] = defaultdict(set)
            for labels in label_sets:
                for k, v in labels.items():
                    if k != "__name__" and v not in seen[k]:
                        fresh[k].add(v)
            if fresh:
                top = max(sorted(fresh), key=lambda k: len(fresh[k]))
                new_values = tuple(sorted(fresh[top]))
        rows.append(
            GrowthRow(
                second_half.source,
                family,
                before.count(family),
                len(earlier),
                len(label_sets),
                requests_in_second_half,
                top,
                new_values,
            )
        )
    return sorted(rows, key=lambda r: (-r.new_series, r.before - r.after_second_half, r.metric))


def check_cardinality_growth(
    rows: Sequence[GrowthRow], *, max_series_per_request: float, budget: Callable[[str], int]
) -> list[Finding]:
    """MET-008: a metric that keeps adding series while the probe's second half
    repeats routes already seen grows with N: its new series per probe request
    and the new values of the label that took the most (one per request for an
    id) both exceed ``max_series_per_request``; one late enum value (a GC kind
    first seen mid-probe) adds a histogram's dozen series but one value, and
    is not growth. A metric over its budget is too big whatever its slope."""
    findings = []
    for row in rows:
        if row.per_request > max_series_per_request and row.values_per_request > max_series_per_request:
            culprit = (
                f"; label {row.top_label!r} took {len(row.new_label_values)} new values such as "
                f"{_examples(row.new_label_values)}"
                if row.top_label
                else ""
            )
            findings.append(
                Finding(
                    MET_008.id,
                    f"{row.metric} grows with the probe in {row.source}: +{row.new_series} series over the "
                    f"last {row.requests_in_second_half} probe requests ({row.per_request:.2f} per request, "
                    f"allowed {max_series_per_request:g}){culprit}",
                    row.to_dict(),
                )
            )
        limit = budget(row.metric)
        if row.after_second_half > limit:
            findings.append(
                Finding(
                    MET_008.id,
                    f"{row.metric} has {row.after_second_half} series in {row.source}, over its "
                    f"budget of {limit}",
                    {**row.to_dict(), "budget": limit},
                )
            )
    return findings


# -- MET-009 / MET-010: across scrapes -------------------------------------
def counter_sample_names(view: MetricsView) -> list[str]:
    """Series names that must never decrease: counters' value series and the
    ``_bucket``/``_count`` of histograms and summaries (``_sum`` may go down
    when observations are negative)."""
    names: set[str] = set()
    for family in view.families:
        if family.type == "counter":
            names.update(s.name for s in family.samples if not s.name.endswith("_created"))
            names.add(family.name)
        elif family.type == "histogram":
            names.update((f"{family.name}_bucket", f"{family.name}_count"))
        elif family.type == "summary":
            names.add(f"{family.name}_count")
    return sorted(names)


def _counter_values(view: MetricsView) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    names = set(counter_sample_names(view))
    return {series_key(s): float(s.value) for f in view.families for s in f.samples if s.name in names}


def _describe_series(key: tuple[str, frozenset[tuple[str, str]]]) -> str:
    name, labels = key
    return excerpt(name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels)) + "}", 160)


def check_counters_monotonic(
    scrapes: Sequence[tuple[str, MetricsView]], prometheus_history: Sequence[Mapping[str, Any]] = ()
) -> tuple[list[Finding], dict[str, int]]:
    """MET-009 over consecutive scrapes ``(moment, view)`` of ``/metrics``, and
    over the samples Prometheus stored for the counter series during the run
    (``{"metric": {...}, "values": [(t, v), ...]}`` per series).

    Also returns what was examined: ``counter_series`` compared between
    consecutive scrapes (present in both), and ``prometheus_series`` with at
    least two stored samples (one sample cannot go down)."""
    findings = []
    examined = {"counter_series": 0, "prometheus_series": 0}
    for (first_moment, first), (second_moment, second) in itertools.pairwise(scrapes):
        before, after = _counter_values(first), _counter_values(second)
        compared = before.keys() & after.keys()
        examined["counter_series"] += len(compared)
        for key in sorted(compared, key=str):
            if after[key] < before[key]:
                findings.append(
                    Finding(
                        MET_009.id,
                        f"{_describe_series(key)} went down from {before[key]:g} to {after[key]:g} between "
                        f"the scrapes {first_moment!r} and {second_moment!r}",
                        {
                            "series": _describe_series(key),
                            "before": before[key],
                            "after": after[key],
                            "source": "/metrics",
                        },
                    )
                )
    for result in prometheus_history:
        metric = dict(result.get("metric", {}))
        key = (
            metric.pop("__name__", "?"),
            frozenset((k, v) for k, v in metric.items() if k not in _TARGET_LABELS),
        )
        values = [float(v) for _, v in result.get("values", ())]
        if len(values) > 1:
            examined["prometheus_series"] += 1
        drops = [(a, b) for a, b in itertools.pairwise(values) if b < a]
        if drops:
            findings.append(
                Finding(
                    MET_009.id,
                    f"Prometheus stored {_describe_series(key)} going down {len(drops)} time(s) during the "
                    f"run, first from {drops[0][0]:g} to {drops[0][1]:g}",
                    {"series": _describe_series(key), "decreases": len(drops), "source": "prometheus"},
                )
            )
    return findings, examined


def check_series_churn(
    first: tuple[str, MetricsView], second: tuple[str, MetricsView]
) -> tuple[list[Finding], dict[str, int]]:
    """MET-010: with the same requests repeated between two scrapes, no series
    may vanish and none may appear (a label with a timestamp, a random id or a
    per-scrape value churns).

    Also returns what was examined: the distinct ``series`` of both scrapes."""
    (first_moment, a), (second_moment, b) = first, second
    before = {series_key(s): f.name for f in a.families for s in f.samples}
    after = {series_key(s): f.name for f in b.families for s in f.samples}
    examined = {"series": len(before.keys() | after.keys())}
    findings = []
    for what, keys, owner in (
        ("disappeared", before.keys() - after.keys(), before),
        ("appeared", after.keys() - before.keys(), after),
    ):
        per_family: dict[str, list[tuple[str, frozenset[tuple[str, str]]]]] = defaultdict(list)
        for key in keys:
            per_family[owner[key]].append(key)
        for family, series in sorted(per_family.items()):
            shown = [_describe_series(k) for k in sorted(series, key=str)[:_EXAMPLES]]
            findings.append(
                Finding(
                    MET_010.id,
                    f"{family}: {len(series)} series {what} between the scrapes {first_moment!r} and "
                    f"{second_moment!r} under steady traffic, e.g. {shown}",
                    {"metric": family, "change": what, "series": len(series), "examples": shown},
                )
            )
    return findings, examined


# -- MET-011: is /metrics public? -------------------------------------------
#: Answers that count as refusing /metrics on the public port.
REFUSING_STATUSES = (401, 403, 404)


def check_metrics_exposure(
    *, internal: bool, url: str, status_code: int, serves_metrics: bool, separate_port: bool
) -> list[Finding]:
    """MET-011 from one unauthenticated GET of the metrics path on the public port.

    Nothing is required unless the profile says metrics are internal. Then the
    public port must refuse (401/403/404), or the metrics must be on their own
    port and the public port must not serve an exposition as well.
    """
    if not internal or status_code in REFUSING_STATUSES or (separate_port and not serves_metrics):
        return []
    where = "besides the separate metrics port" if separate_port else "on the public port"
    return [
        Finding(
            MET_011.id,
            f"GET {url} without credentials answered {status_code}"
            f"{' with an exposition' if serves_metrics else ''} {where}; the profile says metrics are "
            "internal (metrics.internal), so refuse it there (401, 403 or 404) or serve metrics on a "
            "separate port",
            {
                "url": url,
                "status_code": status_code,
                "serves_metrics": serves_metrics,
                "separate_port": separate_port,
            },
        )
    ]
