"""MET-002 … MET-011: metric names, types, labels and cardinality (see conformance.checks.metrics).

Each verdict rests on what it examined (``verdict.examined``): families and
series of the exposition, Prometheus's series, probe requests. MET-002 …
MET-010 need a scrapeable exposition in the profile's format; without one
(``exposition``) they are ``error`` with the reason and the fix, and MET-001
fails.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest

from conformance._exceptions import HarnessError, NoEvidence, StackError
from conformance._model import Finding
from conformance._plan import ProbeContext, implements
from conformance._sections import rate_limits as rate_limits_section
from conformance._sections.metrics import KEY, MetricsContract
from conformance._sections.rate_limits import RateLimitRule
from conformance._session import ConformanceSession
from conformance.checks import metrics
from conformance.checks.metrics import GrowthRow, LintedExposition, MetricsView, SeriesSnapshot
from conformance.checks.otlp_metrics import attribute_to_otlp, finding_metric_names, otlp_origins
from conformance.collect._cardinality import (
    CardinalityObservation,
    counter_history,
    fetch_public_metrics,
    new_probe_marker,
    observe_cardinality,
    observe_steady_traffic,
    plan_probe,
)
from conformance.collect._otlp_metrics import strip_exporter_series
from conformance.collect._promtool import LocalPromtool
from conformance.collect._scrape import Exposition
from conformance.plugin import Verdict

#: Lint lines kept in the evidence per verdict (ours, promtool's).
_SHOWN = 50


@pytest.fixture(scope="module")
def contract(conformance_session: ConformanceSession) -> MetricsContract:
    section: MetricsContract = conformance_session.profile.section(KEY)
    return section


def _lint(source: str, exposition: Exposition) -> LintedExposition:
    return metrics.lint_exposition(
        f"{source} (served {exposition.format})",
        exposition.families,
        exposition.text,
        exposition.format,
        exposition.parse_error,
    )


@pytest.fixture(scope="module")
def scrapes(conformance_session: ConformanceSession) -> dict[str, Exposition]:
    s = conformance_session
    return {"text": s.scrape(openmetrics=False), "openmetrics": s.scrape(openmetrics=True)}


@pytest.fixture(scope="module")
def exposition(conformance_session: ConformanceSession, scrapes: dict[str, Exposition]) -> Exposition:
    """The scrape in the profile's format, if it is an exposition with something in it.

    Raises :class:`NoEvidence` otherwise (a 404, a web page, a parse error, no
    family): every MET requirement that judges the exposition is then
    ``error``, saying what /metrics answered and how to point the harness at it.
    """
    openmetrics = conformance_session.profile.metrics.format == "openmetrics"
    return _usable(scrapes["openmetrics" if openmetrics else "text"])


def _usable(chosen: Exposition) -> Exposition:
    """``chosen`` if it is an exposition with something in it, else :class:`NoEvidence`."""
    gap = metrics.exposition_gap(
        url=chosen.url,
        status_code=chosen.status_code,
        content_type=chosen.content_type,
        parse_error=chosen.parse_error,
        family_count=len(chosen.families),
    )
    if gap:
        raise NoEvidence(gap, hint=metrics.NO_EXPOSITION_HINT)
    return chosen


@pytest.fixture(scope="module")
def linted(scrapes: dict[str, Exposition], exposition: Exposition) -> tuple[LintedExposition, ...]:
    return (_lint("text request", scrapes["text"]), _lint("OpenMetrics request", scrapes["openmetrics"]))


@pytest.fixture(scope="module")
def promtool_parity(
    scrapes: dict[str, Exposition], linted: tuple[LintedExposition, ...]
) -> dict[str, object]:
    """promtool's verdict on the same text exposition, next to ours.

    Raises HarnessError when they differ: the port in checks/_promlint.py is
    then wrong, and neither verdict should be trusted."""
    ours = linted[0]
    text = scrapes["text"]
    summary: dict[str, object] = {"ours": [p.line for p in ours.problems][:_SHOWN] or "clean"}
    if ours.parse_error or text.format != "prometheus-text":
        summary["promtool"] = "not run: the text request did not yield a parsable text exposition"
        return summary
    try:
        runner = LocalPromtool.discover()
    except StackError as exc:
        summary["promtool"] = f"not available ({exc}); our lint alone decides"
        return summary
    described = runner.describe()
    result = runner.check_metrics(text.text)
    version = tuple(int(part) for part in re.findall(r"\d+", str(described.get("version", "")))[:3])
    summary["promtool"] = f"{described.get('kind', 'local')} promtool {described.get('version', '?')}"
    summary["promtool_verdict"] = [f"{p.metric} {p.message}" for p in result.problems][:_SHOWN] or (
        [f"parse error: {result.parse_error}"] if result.parse_error else "clean"
    )
    differences = metrics.compare_with_promtool(
        ours.problems, [(p.metric, p.message) for p in result.problems], result.parse_error, version
    )
    if differences:
        raise HarnessError(
            f"our lint and {summary['promtool']} disagree on {text.url}: {'; '.join(differences[:5])}",
            hint="a difference is a bug in conformance/checks/_promlint.py",
        )
    return summary


def _from_otlp(s: ConformanceSession, verdict: Verdict, findings: list[Finding]) -> list[Finding]:
    """With ``metrics.source: otlp``: say where the metrics were read, and name in each
    finding the OTLP metric behind the Prometheus family the exporter made of it."""
    source = s.otlp_metrics
    if source is None:
        return findings
    otlp_names = s.otlp_metric_names()
    verdict.note(metrics_source=source.describe(), otlp_metrics=otlp_names)
    return attribute_to_otlp(findings, otlp_origins(finding_metric_names(findings), otlp_names))


def _profile_view(
    conformance_session: ConformanceSession, linted: tuple[LintedExposition, ...]
) -> MetricsView:
    item = linted[1] if conformance_session.profile.metrics.format == "openmetrics" else linted[0]
    if item.parse_error:
        raise HarnessError(
            f"the {item.source} exposition does not parse, see MET-001: {item.parse_error[:200]}"
        )
    return item.view


@pytest.mark.requirement("MET-002")
def test_names_follow_the_naming_rules(
    conformance_session: ConformanceSession,
    linted: tuple[LintedExposition, ...],
    promtool_parity: dict[str, object],
    verdict: Verdict,
) -> None:
    verdict.note(
        expositions=[f"{i.source}: {len(i.view.families)} families" for i in linted], **promtool_parity
    )
    # An exposition that does not parse is examined too: that is a finding of its own.
    verdict.examined(
        expositions=len(linted),
        families=sum(len(i.view.families) for i in linted),
        none_because="neither scrape of /metrics held a metric family to lint",
        hint=metrics.NO_EXPOSITION_HINT,
    )
    findings = _from_otlp(conformance_session, verdict, metrics.check_naming(linted))
    verdict.check(findings, what="the text and OpenMetrics expositions")


@pytest.mark.requirement("MET-003")
def test_units_are_base_units(
    conformance_session: ConformanceSession,
    linted: tuple[LintedExposition, ...],
    promtool_parity: dict[str, object],
    verdict: Verdict,
) -> None:
    verdict.note(promtool=promtool_parity.get("promtool"))
    verdict.examined(
        metric_names=len({f.name for i in linted for f in i.view.families}),
        none_because="neither scrape of /metrics held a metric name to check for units",
        hint=metrics.NO_EXPOSITION_HINT,
    )
    verdict.check(_from_otlp(conformance_session, verdict, metrics.check_units(linted)), what="metric names")


@pytest.mark.requirement("MET-004")
def test_required_metrics_are_exposed(
    conformance_session: ConformanceSession,
    linted: tuple[LintedExposition, ...],
    contract: MetricsContract,
    verdict: Verdict,
) -> None:
    view = _profile_view(conformance_session, linted)
    verdict.examined(
        required_metrics=len(contract.required),
        none_because="the profile requires no metrics (metrics.required is empty); nothing to look for",
        hint="list the metrics the service must expose in metrics.required, or declare MET-004 in "
        "requirements.not_applicable",
    )
    unverified = metrics.required_without_samples(view, contract.required)
    verdict.note(
        required=[r.name for r in contract.required],
        families_exposed=len(view.families),
        declared_without_samples_labels_not_checked=unverified,
    )
    findings = _from_otlp(
        conformance_session, verdict, metrics.check_required_metrics(view, contract.required)
    )
    verdict.check(findings, what="the required metrics")


@pytest.mark.requirement("MET-005")
def test_histograms_are_well_formed(
    conformance_session: ConformanceSession,
    linted: tuple[LintedExposition, ...],
    contract: MetricsContract,
    verdict: Verdict,
) -> None:
    view = _profile_view(conformance_session, linted)
    histograms = [f.name for f in view.families if f.type == "histogram"]
    expected = {r.name: list(r.buckets) for r in contract.required if r.buckets}
    unverifiable = [
        name
        for name in expected
        if (f := view.family(name)) is not None
        and f.type == "histogram"
        and not any(s.name.endswith("_bucket") for s in f.samples)
    ]
    if unverifiable:
        raise NoEvidence(
            f"no bucket samples yet for {', '.join(unverifiable)}, so their buckets cannot be checked",
            hint="add an endpoint to the profile that the histogram observes",
        )
    verdict.note(histograms=histograms, required_bounds=expected)
    findings, examined = metrics.check_histograms(view, contract.required)
    verdict.examined(
        **examined,
        none_because=f"{conformance_session.metrics_url} exposes {len(histograms)} histogram(s) and "
        "no bucket series; nothing to examine",
        hint="add an endpoint to the profile that a histogram observes, or declare MET-005 in "
        "requirements.not_applicable",
    )
    findings = _from_otlp(conformance_session, verdict, findings)
    verdict.check(findings, what=f"{examined['histograms']} histograms")


# -- the cardinality probe -------------------------------------------------
@dataclass(frozen=True, slots=True)
class _ProbeResult:
    observation: CardinalityObservation
    after: tuple[SeriesSnapshot, SeriesSnapshot]
    rows: tuple[GrowthRow, ...]
    lanes: int


def _view(exposition: Exposition, moment: str) -> MetricsView:
    if exposition.parse_error:
        raise HarnessError(
            f"/metrics {moment} does not parse, so series cannot be counted: {exposition.parse_error}"
        )
    return metrics.view_exposition(exposition.families, exposition.text, exposition.format)


def _scrapeable(s: ConformanceSession) -> None:
    """Raise :class:`NoEvidence` unless /metrics serves an exposition in the profile's format."""
    _usable(s.scrape(openmetrics=s.profile.metrics.format == "openmetrics"))


@pytest.fixture(scope="module")
def probe(conformance_session: ConformanceSession) -> _ProbeResult:
    result: _ProbeResult = conformance_session.probe("cardinality")
    return result


@implements("cardinality")
def _cardinality_probe(s: ConformanceSession, _: ProbeContext) -> _ProbeResult:
    _scrapeable(s)
    contract: MetricsContract = s.profile.section(KEY)
    config = contract.cardinality
    wanted = set(config.endpoints)
    endpoints = [ep for ep in s.profile.endpoints if not wanted or ep.name in wanted]
    marker = new_probe_marker()
    plan = plan_probe(
        endpoints,
        config.requests,
        marker=marker,
        lanes=config.clients,
        headers=config.headers,
        correlation_header=s.profile.correlation_header,
        body_fields=config.body_fields,
        unmatched_path=config.unmatched_path,
    )
    clients = [
        s.client("met-cardinality" if i == 0 else f"met-cardinality-{i + 1}") for i in range(config.clients)
    ]
    observation = observe_cardinality(
        plan,
        marker=marker,
        clients=clients,
        scrape=s.scrape,
        prometheus=s.prometheus,
        job=s.metrics_job,
        timeout=config.timeout,
    )
    s.require_running()
    if not _answered(observation):
        errors = [e for h in observation.halves for e in h.errors]
        raise HarnessError(
            f"none of the {len(plan)} probe requests was answered: {errors[0] if errors else 'no response'}",
            hint="is the service still listening on service.port?",
        )
    throttled = sum(h.throttled for h in observation.halves)
    if throttled > config.max_throttled_share * len(plan):
        raise HarnessError(
            f"{throttled} of {len(plan)} probe requests were answered 429: too few got through to judge "
            "cardinality",
            hint="raise metrics.cardinality.clients (client identities the probe rotates through) "
            "or lower metrics.cardinality.requests",
        )
    views = [_view(m.exposition, m.name) for m in observation.moments]
    owners = views[-1].sample_owners()
    on_metrics = [
        metrics.snapshot_from_view(v, source="/metrics", moment=m.name)
        for v, m in zip(views, observation.moments, strict=True)
    ]
    # metrics.source: otlp: Prometheus keeps target_info and the exporter's job/instance too.
    stored = strip_exporter_series if s.otlp_metrics is not None else tuple
    in_prometheus = [
        metrics.snapshot_from_prometheus(
            stored(m.prometheus_series), owners, source="Prometheus", moment=m.name
        )
        for m in observation.moments
    ]
    second_half = observation.halves[1].sent
    rows = [
        *metrics.growth_rows(on_metrics[0], on_metrics[1], on_metrics[2], second_half),
        *metrics.growth_rows(in_prometheus[0], in_prometheus[1], in_prometheus[2], second_half),
    ]
    return _ProbeResult(observation, (on_metrics[-1], in_prometheus[-1]), tuple(rows), config.clients)


def _answered(observation: CardinalityObservation) -> int:
    """Probe requests that got a response (any status)."""
    return sum(sum(h.statuses.values()) for h in observation.halves)


def _examined_series(verdict: Verdict, result: _ProbeResult, what: str) -> None:
    """Record the series after the probe, on /metrics and in Prometheus, as what the
    verdict rests on; with none in either there is no ``what``: NoEvidence."""
    on_metrics, in_prometheus = result.after
    reason = f"neither /metrics nor Prometheus held a series after the probe; no {what}"
    hint = (
        "make the profile's endpoints (metrics.cardinality.endpoints) increment the service's metrics, "
        "or declare the MET ids in requirements.not_applicable"
    )
    verdict.examined(
        exposition_series=on_metrics.total,
        prometheus_series=in_prometheus.total,
        none_because=reason,
        hint=hint,
    )
    if not on_metrics.total and not in_prometheus.total:
        raise NoEvidence(reason, hint=hint)


def _note_probe(verdict: Verdict, result: _ProbeResult) -> None:
    obs = result.observation
    verdict.note(
        probe_requests=len(obs.plan),
        probe_marker=obs.marker,
        endpoints=sorted({r.endpoint for r in obs.plan}),
        halves=[h.to_dict() for h in obs.halves],
        rate_limits=f"spread over {result.lanes} client identities (traffic.client_header), one per round "
        f"over the endpoints; {sum(h.throttled for h in obs.halves)} request(s) answered 429",
        series_on_metrics={m.name: sum(len(f.samples) for f in m.exposition.families) for m in obs.moments},
        series_in_prometheus={m.name: len(m.prometheus_series) for m in obs.moments},
        prometheus_head_series=[
            obs.tsdb_before.get("headStats", {}).get("numSeries"),
            obs.tsdb_after.get("headStats", {}).get("numSeries"),
        ],
        seconds=round(obs.seconds, 2),
    )


@pytest.mark.requirement("MET-006")
def test_no_forbidden_labels(
    conformance_session: ConformanceSession, probe: _ProbeResult, contract: MetricsContract, verdict: Verdict
) -> None:
    verdict.note(
        forbidden=list(contract.forbidden_labels),
        series_checked={snap.source: snap.total for snap in probe.after},
    )
    if not contract.forbidden_labels:
        raise NoEvidence(
            "the profile forbids no label (metrics.forbidden_labels is empty); nothing to look for",
            hint="list the forbidden labels in metrics.forbidden_labels (omit the key for seed 002's "
            "five), or declare MET-006 in requirements.not_applicable",
        )
    _examined_series(verdict, probe, "label name to check")
    findings = metrics.check_forbidden_labels(probe.after, contract.forbidden_labels)
    verdict.check(_from_otlp(conformance_session, verdict, findings), what="label names")


@pytest.mark.requirement("MET-007")
def test_no_raw_paths_in_label_values(
    conformance_session: ConformanceSession, probe: _ProbeResult, verdict: Verdict
) -> None:
    verdict.note(
        probe_marker=probe.observation.marker, series_checked={s.source: s.total for s in probe.after}
    )
    _examined_series(verdict, probe, "label value to check")
    findings = metrics.check_raw_path_labels(
        probe.after, probe_marker=probe.observation.marker, concrete_paths=conformance_session.templates
    )
    verdict.check(_from_otlp(conformance_session, verdict, findings), what="label values after the probe")


@pytest.mark.requirement("MET-008")
def test_series_do_not_grow_with_the_probe(
    conformance_session: ConformanceSession, probe: _ProbeResult, contract: MetricsContract, verdict: Verdict
) -> None:
    config = contract.cardinality
    _note_probe(verdict, probe)
    verdict.note(
        max_series_per_request=config.max_series_per_request,
        default_budget=config.default_budget,
        top_growth=[r.to_dict() for r in probe.rows[:6]],
    )
    verdict.examined(probe_requests=_answered(probe.observation))
    _examined_series(verdict, probe, "growth to measure")
    down = next((m.prometheus_error for m in probe.observation.moments if m.prometheus_error), "")
    if down:
        # Growth is measured on /metrics and in Prometheus; half of it cannot be had.
        raise NoEvidence(
            f"Prometheus holds no series of the service, so its growth there cannot be measured: {down}",
            hint="see MET-001: Prometheus must scrape the service",
        )
    findings = metrics.check_cardinality_growth(
        probe.rows, max_series_per_request=config.max_series_per_request, budget=config.budget
    )
    findings = _from_otlp(conformance_session, verdict, findings)
    verdict.check(findings, what=f"series per metric over {len(probe.observation.plan)} probe requests")


# -- across scrapes ----------------------------------------------------------
@pytest.fixture(scope="module")
def steady(conformance_session: ConformanceSession) -> tuple[MetricsView, MetricsView]:
    result: tuple[MetricsView, MetricsView] = conformance_session.probe("metrics-steady")
    return result


#: The steady window is observed again after at most this long when a 429 fell into it (seconds).
_STEADY_RETRY_CAP = 15.0
#: Steady windows observed at most before 429s in them are an error.
_STEADY_WINDOWS = 3


@implements("metrics-steady")
def _steady_traffic(s: ConformanceSession, _: ProbeContext) -> tuple[MetricsView, MetricsView]:
    """Two scrapes around a round of normal traffic. The harness's own requests must not
    create 429 series between the scrapes: endpoints under a declared rate limit are left
    out, an endpoint that answers the steady traffic itself with 429 (a limiter the profile
    does not declare) is left out of the next window, and a window in which another probe
    was throttled is observed again after the longest declared limit window; a third such
    window is an error, never churn."""
    _scrapeable(s)
    rules: tuple[RateLimitRule, ...] = s.profile.section(rate_limits_section.KEY).rules
    limited = {rule.endpoint.name for rule in rules}
    endpoints = [ep for ep in s.profile.endpoints if ep.name not in limited] or list(s.profile.endpoints)
    client = s.client("met-steady")
    for attempt in range(1, _STEADY_WINDOWS + 1):
        mark = time.monotonic()
        first, second, exchanges = observe_steady_traffic(client, endpoints, s.scrape)
        own = {x.endpoint for x in exchanges if x.status_code == 429}
        others = sorted({p for t, p in list(s.throttled) if t >= mark and p != "met-steady"})
        if not own and not others:
            break
        endpoints = [ep for ep in endpoints if ep.name not in own]
        if not endpoints or attempt == _STEADY_WINDOWS:
            throttled = sorted(own) + [f"probe {p}" for p in others]
            raise HarnessError(
                f"the steady-traffic window saw 429s ({', '.join(throttled)}) in {attempt} attempt(s), so a "
                "series that appears there cannot be told from churn",
                hint="declare the service's limits under rate_limits.rules (their endpoints are left out of "
                "the steady traffic), key the limiter by traffic.client_header (see RL-006), or run with "
                "--sequential",
            )
        if others:
            # Waiting out a limiter's window cannot be polled for: the longest declared window, capped.
            time.sleep(min(_STEADY_RETRY_CAP, max((rule.window for rule in rules), default=1)))
    if not any(x.status_code is not None for x in exchanges):
        raise HarnessError("none of the steady-traffic requests was answered")
    return _view(first, "first steady scrape"), _view(second, "second steady scrape")


@pytest.mark.requirement("MET-009")
def test_counters_never_decrease(
    conformance_session: ConformanceSession, steady: tuple[MetricsView, MetricsView], verdict: Verdict
) -> None:
    s = conformance_session
    names = metrics.counter_sample_names(steady[1])
    window = time.time() - s.started_at
    history = counter_history(s.prometheus, s.metrics_job, names, window)
    verdict.note(
        counter_series_names=len(names),
        prometheus_window_seconds=round(window, 1),
        prometheus_series=len(history),
    )
    findings, examined = metrics.check_counters_monotonic(
        [("first", steady[0]), ("second", steady[1])], history
    )
    verdict.examined(
        **examined,
        none_because=f"no counter series in both scrapes of {s.metrics_url} and none stored twice by "
        f"Prometheus for job {s.metrics_job!r}; nothing to compare",
        hint="MET-009 needs a counter (or histogram) the profile's endpoints increment; declare MET-009 "
        "in requirements.not_applicable if the service exposes none",
    )
    verdict.check(_from_otlp(s, verdict, findings), what="counters across scrapes and in Prometheus")


@pytest.mark.requirement("MET-010")
def test_series_do_not_churn(
    conformance_session: ConformanceSession, steady: tuple[MetricsView, MetricsView], verdict: Verdict
) -> None:
    verdict.note(series=[v.series_count() for v in steady])
    findings, examined = metrics.check_series_churn(("first", steady[0]), ("second", steady[1]))
    verdict.examined(
        **examined,
        none_because=f"neither scrape of {conformance_session.metrics_url} under steady traffic held "
        "a series; nothing to compare",
        hint="make the profile's endpoints increment the service's metrics, or declare MET-010 in "
        "requirements.not_applicable",
    )
    verdict.check(_from_otlp(conformance_session, verdict, findings), what="two scrapes")


@pytest.mark.requirement("MET-011")
def test_internal_metrics_are_not_public(
    conformance_session: ConformanceSession, contract: MetricsContract, verdict: Verdict
) -> None:
    s = conformance_session
    answer = fetch_public_metrics(s.client("met-exposure"), s.profile.metrics.path)
    verdict.note(
        internal=contract.internal,
        public_url=answer.url,
        status_code=answer.status_code,
        serves_metrics=answer.serves_metrics,
        metrics_url=s.metrics_url,
    )
    # One unauthenticated GET, answered (a transport error raised above): the verdict rests on it.
    verdict.examined(requests=1)
    findings = metrics.check_metrics_exposure(
        internal=contract.internal,
        url=answer.url,
        status_code=answer.status_code,
        serves_metrics=answer.serves_metrics,
        separate_port=s.profile.metrics.separate_port,
    )
    verdict.check(findings, what="the metrics path on the public port")
