"""MET-002 … MET-011: metric names, types, labels and cardinality (see conformance.checks.metrics)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest

from conformance._exceptions import HarnessError, StackError
from conformance._sections.metrics import KEY, MetricsContract
from conformance._session import ConformanceSession
from conformance.checks import metrics
from conformance.checks.metrics import GrowthRow, LintedExposition, MetricsView, SeriesSnapshot
from conformance.collect._cardinality import (
    CardinalityObservation,
    counter_history,
    fetch_public_metrics,
    new_probe_marker,
    observe_cardinality,
    observe_steady_traffic,
    plan_probe,
)
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
def linted(scrapes: dict[str, Exposition]) -> tuple[LintedExposition, ...]:
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
    linted: tuple[LintedExposition, ...], promtool_parity: dict[str, object], verdict: Verdict
) -> None:
    verdict.note(
        expositions=[f"{i.source}: {len(i.view.families)} families" for i in linted], **promtool_parity
    )
    verdict.check(metrics.check_naming(linted), what="the text and OpenMetrics expositions")


@pytest.mark.requirement("MET-003")
def test_units_are_base_units(
    linted: tuple[LintedExposition, ...], promtool_parity: dict[str, object], verdict: Verdict
) -> None:
    verdict.note(promtool=promtool_parity.get("promtool"))
    verdict.check(metrics.check_units(linted), what="metric names")


@pytest.mark.requirement("MET-004")
def test_required_metrics_are_exposed(
    conformance_session: ConformanceSession,
    linted: tuple[LintedExposition, ...],
    contract: MetricsContract,
    verdict: Verdict,
) -> None:
    if not contract.required:
        raise HarnessError(
            "the profile requires no metrics (metrics.required is empty), so MET-004 cannot be judged"
        )
    view = _profile_view(conformance_session, linted)
    unverified = metrics.required_without_samples(view, contract.required)
    verdict.note(
        required=[r.name for r in contract.required], declared_without_samples_labels_not_checked=unverified
    )
    verdict.check(metrics.check_required_metrics(view, contract.required), what="the required metrics")


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
        raise HarnessError(
            f"no bucket samples yet for {', '.join(unverifiable)}, so their buckets cannot be checked",
            hint="add an endpoint to the profile that the histogram observes",
        )
    verdict.note(histograms=histograms, required_bounds=expected)
    verdict.check(metrics.check_histograms(view, contract.required), what=f"{len(histograms)} histograms")


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


@pytest.fixture(scope="module")
def probe(conformance_session: ConformanceSession, contract: MetricsContract) -> _ProbeResult:
    s = conformance_session
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
        job=s.profile.prometheus.job,
        timeout=config.timeout,
    )
    s.require_running()
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
    in_prometheus = [
        metrics.snapshot_from_prometheus(m.prometheus_series, owners, source="Prometheus", moment=m.name)
        for m in observation.moments
    ]
    second_half = observation.halves[1].sent
    rows = [
        *metrics.growth_rows(on_metrics[0], on_metrics[1], on_metrics[2], second_half),
        *metrics.growth_rows(in_prometheus[0], in_prometheus[1], in_prometheus[2], second_half),
    ]
    return _ProbeResult(observation, (on_metrics[-1], in_prometheus[-1]), tuple(rows), config.clients)


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
def test_no_forbidden_labels(probe: _ProbeResult, contract: MetricsContract, verdict: Verdict) -> None:
    verdict.note(
        forbidden=list(contract.forbidden_labels),
        series_checked={snap.source: snap.total for snap in probe.after},
    )
    verdict.check(metrics.check_forbidden_labels(probe.after, contract.forbidden_labels), what="label names")


@pytest.mark.requirement("MET-007")
def test_no_raw_paths_in_label_values(
    conformance_session: ConformanceSession, probe: _ProbeResult, verdict: Verdict
) -> None:
    verdict.note(
        probe_marker=probe.observation.marker, series_checked={s.source: s.total for s in probe.after}
    )
    findings = metrics.check_raw_path_labels(
        probe.after, probe_marker=probe.observation.marker, concrete_paths=conformance_session.templates
    )
    verdict.check(findings, what="label values after the probe")


@pytest.mark.requirement("MET-008")
def test_series_do_not_grow_with_the_probe(
    probe: _ProbeResult, contract: MetricsContract, verdict: Verdict
) -> None:
    config = contract.cardinality
    _note_probe(verdict, probe)
    verdict.note(
        max_series_per_request=config.max_series_per_request,
        default_budget=config.default_budget,
        top_growth=[r.to_dict() for r in probe.rows[:6]],
    )
    findings = metrics.check_cardinality_growth(
        probe.rows, max_series_per_request=config.max_series_per_request, budget=config.budget
    )
    verdict.check(findings, what=f"series per metric over {len(probe.observation.plan)} probe requests")


# -- across scrapes ----------------------------------------------------------
@pytest.fixture(scope="module")
def steady(conformance_session: ConformanceSession) -> tuple[MetricsView, MetricsView]:
    s = conformance_session
    first, second, exchanges = observe_steady_traffic(s.client("met-steady"), s.profile.endpoints, s.scrape)
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
    history = counter_history(s.prometheus, s.profile.prometheus.job, names, window)
    verdict.note(
        counter_series_names=len(names),
        prometheus_window_seconds=round(window, 1),
        prometheus_series=len(history),
    )
    findings = metrics.check_counters_monotonic([("first", steady[0]), ("second", steady[1])], history)
    verdict.check(findings, what="counters across scrapes and in Prometheus")


@pytest.mark.requirement("MET-010")
def test_series_do_not_churn(steady: tuple[MetricsView, MetricsView], verdict: Verdict) -> None:
    verdict.note(series=[v.series_count() for v in steady])
    verdict.check(metrics.check_series_churn(("first", steady[0]), ("second", steady[1])), what="two scrapes")


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
        metrics_url=s.stack.metrics_url,
    )
    findings = metrics.check_metrics_exposure(
        internal=contract.internal,
        url=answer.url,
        status_code=answer.status_code,
        serves_metrics=answer.serves_metrics,
        separate_port=s.profile.metrics.separate_port,
    )
    verdict.check(findings, what="the metrics path on the public port")
