"""MET-002 … MET-011 on hand-made expositions and series (conformance.checks.metrics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from conformance._model import Finding
from conformance._sections.metrics import RequiredMetric
from conformance.checks import metrics
from conformance.checks._exposition import ExposedFamily
from conformance.checks._promlint import LintProblem, compare_with_promtool, metric_units
from conformance.checks.metrics import MetricsView, SeriesSnapshot

LINT_CASES = yaml.safe_load((Path(__file__).parents[1] / "data" / "metrics_lint_cases.yaml").read_text())


def view(text: str, fmt: str = "prometheus-text") -> MetricsView:
    parse = parse_openmetrics if fmt == "openmetrics" else parse_text
    return metrics.view_exposition(list(parse(text)), text, fmt)


def linted(text: str, fmt: str = "prometheus-text", source: str = "text") -> metrics.LintedExposition:
    parse = parse_openmetrics if fmt == "openmetrics" else parse_text
    return metrics.lint_exposition(source, list(parse(text)), text, fmt)


def ids(findings: Sequence[Finding]) -> set[str]:
    return {f.requirement_id for f in findings}


# -- the exposition as Prometheus sees it -------------------------------------
class TestView:
    def test_counter_keeps_the_name_it_was_written_with(self) -> None:
        v = view("# HELP a_total x\n# TYPE a_total counter\na_total 1\n# HELP b x\n# TYPE b counter\nb 2\n")
        assert [(f.name, f.type, [s.name for s in f.samples]) for f in v.families] == [
            ("a_total", "counter", ["a_total"]),
            ("b", "counter", ["b"]),
        ]

    def test_openmetrics_counters_and_info_get_their_stored_names(self) -> None:
        v = view(
            "# TYPE jobs counter\n# HELP jobs Jobs.\njobs_total 1.0\njobs_created 1.7e9\n"
            '# TYPE build info\n# HELP build Build.\nbuild_info{version="1"} 1.0\n'
            "# TYPE wait_seconds gauge\n# UNIT wait_seconds seconds\n# HELP wait_seconds W.\n"
            "wait_seconds 1.0\n# EOF\n",
            "openmetrics",
        )
        names = {f.name: f.type for f in v.families}
        assert names == {"jobs_total": "counter", "build_info": "gauge", "wait_seconds": "gauge"}
        assert v.family("wait_seconds") is not None and v.family("wait_seconds").unit == "seconds"  # type: ignore[union-attr]

    def test_a_stray_sample_is_merged_into_its_family_like_expfmt_does(self) -> None:
        v = view('# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na{x="2"} 2\n')
        assert [(f.name, len(f.samples)) for f in v.families] == [("a", 2), ("b", 1)]
        assert v.duplicate_declarations == ()

    def test_created_series_are_counted_with_their_metric(self) -> None:
        v = view(
            "# HELP r_total x\n# TYPE r_total counter\nr_total 1\n"
            "# HELP r_created x\n# TYPE r_created gauge\nr_created 1.7e9\n"
            '# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le="+Inf"} 1\n'
            "h_seconds_count 1\nh_seconds_sum 1\n"
            "# HELP h_seconds_created x\n# TYPE h_seconds_created gauge\nh_seconds_created 1\n"
        )
        owners = v.sample_owners()
        assert owners["r_created"] == "r_total" and owners["h_seconds_created"] == "h_seconds"
        snap = metrics.snapshot_from_view(v, source="/metrics", moment="now")
        assert {k: len(v) for k, v in snap.series.items()} == {"r_total": 2, "h_seconds": 4}


# -- MET-002 / MET-003 --------------------------------------------------------
@pytest.mark.parametrize("case", LINT_CASES, ids=[c["id"] for c in LINT_CASES])
def test_lint_matches_promlint(case: dict[str, Any]) -> None:
    result = linted(case["text"])
    assert sorted(p.line for p in result.problems) == sorted(case["problems"])


def test_unit_problems_are_met_003_and_the_rest_met_002() -> None:
    text = (
        "# HELP http_request_duration_milliseconds x\n# TYPE http_request_duration_milliseconds histogram\n"
        'http_request_duration_milliseconds_bucket{le="+Inf"} 1\nhttp_request_duration_milliseconds_sum 1\n'
        "http_request_duration_milliseconds_count 1\n"
        "# HELP http_request_count x\n# TYPE http_request_count counter\nhttp_request_count 1\n"
    )
    items = [linted(text)]
    naming, units = metrics.check_naming(items), metrics.check_units(items)
    assert ids(naming) == {"MET-002"} and ids(units) == {"MET-003"}
    assert {f.evidence["metric"] for f in naming} == {"http_request_count"}
    assert [f.evidence["metric"] for f in units] == ["http_request_duration_milliseconds"]


def test_the_same_problem_in_both_formats_is_one_finding_naming_both() -> None:
    text = "# HELP q_total x\n# TYPE q_total gauge\nq_total 1\n"
    om = "# HELP q_total x\n# TYPE q_total gauge\nq_total 1.0\n# EOF\n"
    findings = metrics.check_naming([linted(text, source="text"), linted(om, "openmetrics", "OpenMetrics")])
    assert len(findings) == 1 and findings[0].evidence["expositions"] == ["text", "OpenMetrics"]


def test_an_exposition_that_does_not_parse_fails_met_002() -> None:
    broken = metrics.lint_exposition(
        "OpenMetrics", [], "x", "openmetrics", "Clashing name: http_request_count"
    )
    findings = metrics.check_naming([linted("# HELP a x\n# TYPE a gauge\na 1\n"), broken])
    assert [f.message for f in findings] == [
        "the OpenMetrics exposition does not parse: Clashing name: http_request_count"
    ]


def test_reference_counter_without_total_breaks_openmetrics_parsing() -> None:
    """The counter-no-total variant's family fails the OpenMetrics parser: MET-002 either way."""
    om = "# HELP http_request_count x\n# TYPE http_request_count counter\nhttp_request_count 1.0\n# EOF\n"
    with pytest.raises(ValueError, match="Clashing name"):
        list(parse_openmetrics(om))


def test_families_without_samples_are_linted_but_not_compared() -> None:
    result = linted("# HELP errors_count x\n# TYPE errors_count counter\n")
    assert [(p.text, p.unsampled) for p in result.problems] == [
        ('counter metrics should have "_total" suffix', True),
        ('non-histogram and non-summary metrics should not have "_count" suffix', True),
    ]
    assert compare_with_promtool(result.problems, [], "", (2, 42, 0)) == []


class TestPromtoolComparison:
    P = LintProblem

    def test_agreement(self) -> None:
        ours = [self.P("a", "no help text", "help")]
        assert compare_with_promtool(ours, [("a", "no help text")], "", (2, 42, 0)) == []

    def test_differences_are_named_both_ways(self) -> None:
        ours = [self.P("a", "no help text", "help")]
        diff = compare_with_promtool(ours, [("b", "no help text")], "", (2, 42, 0))
        assert diff == ["only we report: a no help text", "only promtool reports: b no help text"]

    def test_duplicate_series_compared_only_with_a_promtool_that_checks_them(self) -> None:
        ours = [self.P("a", "metric not unique", "duplicate-series")]
        assert compare_with_promtool(ours, [], "", (2, 42, 0)) == []
        assert compare_with_promtool(ours, [], "", (2, 54, 0)) == ["only we report: a metric not unique"]

    def test_promtool_parse_error_agrees_only_with_a_duplicate_family(self) -> None:
        error = 'text format parsing error in line 4: second HELP line for metric name "a"'
        dup = [self.P("a", "metric family is declared more than once", "duplicate-family")]
        assert compare_with_promtool(dup, [], error, (2, 42, 0)) == []
        assert compare_with_promtool([], [], error, (2, 42, 0)) != []
        assert compare_with_promtool([], [], "invalid label name", (2, 42, 0)) != []

    def test_units_with_two_unit_words_tolerate_promtools_random_pick(self) -> None:
        both = [
            self.P("x_seconds_milliseconds", 'use base unit "seconds" instead of "milliseconds"', "units")
        ]
        assert compare_with_promtool(both, [], "", (2, 42, 0)) == []
        two_bad = [self.P("x_minutes_milliseconds", 'use base unit "seconds" instead of "minutes"', "units")]
        other = [("x_minutes_milliseconds", 'use base unit "seconds" instead of "milliseconds"')]
        assert compare_with_promtool(two_bad, other, "", (2, 42, 0)) == []
        assert compare_with_promtool(two_bad, [], "", (2, 42, 0)) != []
        assert metric_units("x_minutes_milliseconds") == [("minutes", "seconds"), ("milliseconds", "seconds")]


# -- MET-004 / MET-005 --------------------------------------------------------
REFERENCE_LIKE = """\
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",endpoint="/health",status_code="200"} 3
# HELP http_request_duration_seconds Latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method="GET",endpoint="/health",le="0.1"} 2
http_request_duration_seconds_bucket{method="GET",endpoint="/health",le="0.5"} 3
http_request_duration_seconds_bucket{method="GET",endpoint="/health",le="2.0"} 3
http_request_duration_seconds_bucket{method="GET",endpoint="/health",le="+Inf"} 3
http_request_duration_seconds_sum{method="GET",endpoint="/health"} 0.2
http_request_duration_seconds_count{method="GET",endpoint="/health"} 3
# HELP http_errors_total Errors.
# TYPE http_errors_total counter
"""
REQUIRED = (
    RequiredMetric("http_requests_total", "counter", ("method", "endpoint", "status_code")),
    RequiredMetric(
        "http_request_duration_seconds",
        "histogram",
        ("method", "endpoint"),
        unit="seconds",
        buckets=(0.1, 0.5, 2.0),
    ),
    RequiredMetric("http_errors_total", "counter", ("method", "endpoint", "error_type")),
)


class TestRequiredMetrics:
    def test_the_contract_holds(self) -> None:
        v = view(REFERENCE_LIKE)
        assert metrics.check_required_metrics(v, REQUIRED) == []
        assert metrics.required_without_samples(v, REQUIRED) == ["http_errors_total"]

    def test_missing_metric_names_a_similar_one(self) -> None:
        v = view(REFERENCE_LIKE.replace("duration_seconds", "duration_milliseconds"))
        findings = metrics.check_required_metrics(v, REQUIRED)
        assert [f.message for f in findings] == [
            "http_request_duration_seconds (histogram) is not exposed; exposed instead: "
            "http_request_duration_milliseconds (another unit or suffix?)"
        ]

    def test_wrong_type(self) -> None:
        v = view("# HELP http_requests_total x\n# TYPE http_requests_total gauge\nhttp_requests_total 1\n")
        findings = metrics.check_required_metrics(v, [RequiredMetric("http_requests_total", "counter")])
        assert [f.evidence["type"] for f in findings] == ["gauge"]

    def test_missing_and_unexpected_labels(self) -> None:
        text = REFERENCE_LIKE.replace(
            'endpoint="/health",status_code="200"', 'path="/users/1",status_code="200"'
        )
        findings = metrics.check_required_metrics(view(text), REQUIRED[:1])
        assert ids(findings) == {"MET-004"}
        assert findings[0].evidence["missing"] == ["endpoint"] and findings[0].evidence["unexpected"] == [
            "path"
        ]

    def test_extra_labels_may_be_allowed(self) -> None:
        required = [RequiredMetric("http_requests_total", "counter", ("method",), extra_labels=True)]
        assert metrics.check_required_metrics(view(REFERENCE_LIKE), required) == []
        strict = [RequiredMetric("http_requests_total", "counter", ("method",))]
        assert ids(metrics.check_required_metrics(view(REFERENCE_LIKE), strict)) == {"MET-004"}

    def test_openmetrics_unit_must_agree(self) -> None:
        om = (
            "# TYPE wait_seconds histogram\n# UNIT wait_seconds seconds\n# HELP wait_seconds x\n"
            'wait_seconds_bucket{le="+Inf"} 1\nwait_seconds_count 1\nwait_seconds_sum 1\n# EOF\n'
        )
        required = [RequiredMetric("wait_seconds", "histogram", unit="seconds")]
        v = view(om, "openmetrics")
        assert metrics.check_required_metrics(v, required) == []
        # prometheus-client refuses a UNIT that is not the name's suffix, so this family is made by hand.
        samples = v.families[0].samples
        odd = MetricsView("openmetrics", (ExposedFamily("wait_seconds", "histogram", "x", "bytes", samples),))
        assert [f.evidence["unit"] for f in metrics.check_required_metrics(odd, required)] == ["bytes"]


class TestHistograms:
    def test_well_formed_with_the_slo_bounds(self) -> None:
        findings, examined = metrics.check_histograms(view(REFERENCE_LIKE), REQUIRED)
        assert findings == []
        assert examined == {"histograms": 1, "bucket_series": 1}

    def test_missing_slo_bound(self) -> None:
        text = REFERENCE_LIKE.replace('le="0.5"', 'le="0.25"')
        findings, _ = metrics.check_histograms(view(text), REQUIRED)
        assert [f.evidence["missing_bounds"] for f in findings] == [[0.5]]

    def test_bucket_series_are_counted_per_label_set(self) -> None:
        text = REFERENCE_LIKE.replace('endpoint="/health"', 'endpoint="/a"') + "".join(
            line.replace('endpoint="/health"', 'endpoint="/b"') + "\n"
            for line in REFERENCE_LIKE.splitlines()
            if line.startswith("http_request_duration_seconds")
        )
        _, examined = metrics.check_histograms(view(text), REQUIRED)
        assert examined == {"histograms": 1, "bucket_series": 2}

    def test_a_histogram_without_observations_examines_nothing(self) -> None:
        text = "# HELP idle_seconds x\n# TYPE idle_seconds histogram\n"
        assert metrics.check_histograms(view(text), ()) == ([], {"histograms": 0, "bucket_series": 0})

    @pytest.mark.parametrize(
        ("change", "problem"),
        [
            (('le="+Inf"} 3', 'le="5.0"} 3'), "no +Inf bucket"),
            (('le="0.5"} 3', 'le="0.5"} 1'), "bucket counts decrease as le grows (not cumulative)"),
            (
                ('_count{method="GET",endpoint="/health"} 3', '_count{method="GET",endpoint="/health"} 4'),
                "_count differs from the +Inf bucket",
            ),
        ],
    )
    def test_malformed(self, change: tuple[str, str], problem: str) -> None:
        findings, _ = metrics.check_histograms(view(REFERENCE_LIKE.replace(*change)), REQUIRED)
        assert [f.evidence["problem"] for f in findings] == [problem]

    def test_buckets_without_a_count_break_the_text_format(self) -> None:
        # Micrometer's LongTaskTimer: TYPE histogram, buckets, and its count in a separate gauge.
        text = "\n".join(line for line in REFERENCE_LIKE.splitlines() if "_count{" not in line) + "\n"
        findings, _ = metrics.check_histograms(view(text), REQUIRED)
        assert [f.evidence["problem"] for f in findings] == ["no _count series beside its buckets"]

    def test_openmetrics_makes_the_count_optional(self) -> None:
        om = "# TYPE w_seconds histogram\n# HELP w_seconds x\nw_seconds_bucket{le=\"+Inf\"} 1\n# EOF\n"
        assert metrics.check_histograms(view(om, "openmetrics"), ())[0] == []

    def test_a_missing_histogram_is_left_to_met_004(self) -> None:
        text = REFERENCE_LIKE.split("# HELP http_request_duration_seconds")[0]
        assert metrics.check_histograms(view(text), REQUIRED)[0] == []


# -- MET-006 / MET-007 / MET-008 ------------------------------------------------
def snap(
    series: Mapping[str, Sequence[Mapping[str, str]]], source: str = "/metrics", moment: str = "m"
) -> SeriesSnapshot:
    return SeriesSnapshot(source, moment, {k: tuple(v) for k, v in series.items()})


def requests(paths: Sequence[str], **extra: str) -> list[dict[str, str]]:
    return [{"__name__": "http_requests_total", "endpoint": p, **extra} for p in paths]


class TestForbiddenLabels:
    def test_clean(self) -> None:
        assert metrics.check_forbidden_labels([snap({"x_total": requests(["/a"])})], ["user_id"]) == []

    @pytest.mark.parametrize("label", ["user_id", "userId", "USER_ID", "session_id", "email"])
    def test_forbidden_names_in_any_spelling(self, label: str) -> None:
        s = snap(
            {"user_requests_total": [{"__name__": "user_requests_total", label: "4242"}]}, source="Prometheus"
        )
        findings = metrics.check_forbidden_labels(
            [s], ["user_id", "session_id", "request_id", "email", "full_path"]
        )
        assert ids(findings) == {"MET-006"}
        assert findings[0].evidence["label"] == label and findings[0].evidence["source"] == "Prometheus"

    def test_examples_are_masked(self) -> None:
        s = snap({"logins_total": [{"__name__": "logins_total", "email": "jane.doe@example.com"}]})
        (finding,) = metrics.check_forbidden_labels([s], ["email"])
        assert "jane.doe@example.com" not in finding.message and "j***@e***.com" in finding.message


class TestRawPathLabels:
    CONCRETE = {"/users/4242": "/users/{user_id}", "/health": "/health"}

    def check(self, *values: str) -> list[Finding]:
        s = snap({"http_requests_total": requests(list(values))})
        return metrics.check_raw_path_labels([s], probe_marker="731902", concrete_paths=self.CONCRETE)

    def test_templates_and_non_paths_pass(self) -> None:
        assert (
            self.check("/users/{user_id}", "/health", "<unmatched>", "200", "fake-small", "/api/v1/chat")
            == []
        )

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("/obsconform-probe/73190200017", "the probe's request path"),
            ("/users/73190200017", "the probe's request path"),
            ("/users/4242", "the raw path of /users/{user_id}"),
            ("/search?q=shoes", "a path with a query string"),
            ("/orders/123456/items", "a path with an id in it"),
            ("/files/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "a path with an id in it"),
            ("http://api.example.test/users/4242", "the raw path of /users/{user_id}"),
        ],
    )
    def test_raw_paths_fail(self, value: str, reason: str) -> None:
        (finding,) = self.check(value)
        assert finding.requirement_id == "MET-007" and finding.evidence["reasons"] == [reason]
        assert finding.evidence["label"] == "endpoint"

    def test_le_and_quantile_are_not_judged(self) -> None:
        s = snap({"h": [{"__name__": "h_bucket", "le": "/123456"}]})
        assert metrics.check_raw_path_labels([s], probe_marker="x", concrete_paths={}) == []


class TestGrowth:
    def rows(self, before: int, first: int, second: int, label: str = "user_id") -> list[metrics.GrowthRow]:
        def series(n: int) -> list[dict[str, str]]:
            return [{"__name__": "user_requests_total", label: str(1000 + i)} for i in range(n)]

        return metrics.growth_rows(
            snap({"user_requests_total": series(before)}, moment="before"),
            snap({"user_requests_total": series(first)}, moment="first half"),
            snap({"user_requests_total": series(second)}, moment="second half"),
            100,
        )

    def test_bounded_metric_passes(self) -> None:
        rows = self.rows(5, 12, 12)
        assert rows[0].per_request == 0
        assert (
            metrics.check_cardinality_growth(rows, max_series_per_request=0.01, budget=lambda _: 2000) == []
        )

    def test_growth_with_the_probe_fails_with_the_culprit_label(self) -> None:
        rows = self.rows(1, 51, 101)
        (finding,) = metrics.check_cardinality_growth(
            rows, max_series_per_request=0.01, budget=lambda _: 2000
        )
        assert finding.requirement_id == "MET-008"
        assert finding.evidence["new_series_per_request"] == 0.5
        assert finding.evidence["label"] == "user_id" and finding.evidence["new_label_values"] == 50
        assert "0.50 per request" in finding.message

    def test_one_late_enum_value_of_a_histogram_is_not_growth(self) -> None:
        # Node's GC histogram: a first major GC mid-probe adds ~11 series, all for kind="major".
        def gc(kinds: list[str]) -> list[dict[str, str]]:
            return [{"__name__": "gc_bucket", "kind": k, "le": str(le)} for k in kinds for le in range(11)]

        rows = metrics.growth_rows(
            snap({"gc": gc(["minor"])}, moment="before"),
            snap({"gc": gc(["minor"])}, moment="first half"),
            snap({"gc": gc(["minor", "major"])}, moment="second half"),
            100,
        )
        assert rows[0].per_request == 0.11 and rows[0].values_per_request == 0.01
        assert metrics.check_cardinality_growth(rows, max_series_per_request=0.01, budget=lambda _: 99) == []
        rows = metrics.growth_rows(
            snap({"gc": gc(["minor"])}, moment="before"),
            snap({"gc": gc(["minor"])}, moment="first half"),
            snap({"gc": gc(["minor", "major", "incremental"])}, moment="second half"),
            100,
        )
        (finding,) = metrics.check_cardinality_growth(rows, max_series_per_request=0.01, budget=lambda _: 99)
        assert finding.evidence["new_label_values_per_request"] == 0.02

    def test_over_budget_fails_even_without_growth(self) -> None:
        rows = self.rows(30, 30, 30)
        (finding,) = metrics.check_cardinality_growth(rows, max_series_per_request=0.01, budget=lambda _: 20)
        assert finding.evidence["budget"] == 20 and "over its budget of 20" in finding.message

    def test_prometheus_series_are_grouped_by_family(self) -> None:
        owners = {"http_request_duration_seconds_bucket": "http_request_duration_seconds"}
        raw = [
            {
                "__name__": "http_request_duration_seconds_bucket",
                "le": "1",
                "job": "service",
                "instance": "i",
            },
            {"__name__": "http_request_duration_seconds_count", "job": "service", "instance": "i"},
            {"__name__": "up", "job": "service", "instance": "i"},
            {"__name__": "brand_new_total", "job": "service", "instance": "i"},
        ]
        s = metrics.snapshot_from_prometheus(raw, owners, source="Prometheus", moment="m")
        assert {k: len(v) for k, v in s.series.items()} == {
            "http_request_duration_seconds": 2,
            "brand_new_total": 1,
        }
        assert all("job" not in labels for labels in s.series["http_request_duration_seconds"])


# -- MET-009 / MET-010 ----------------------------------------------------------
COUNTERS = """\
# HELP r_total x
# TYPE r_total counter
r_total{a="1"} {r}
# HELP q_seconds x
# TYPE q_seconds histogram
q_seconds_bucket{le="+Inf"} {b}
q_seconds_sum {s}
q_seconds_count {b}
# HELP g x
# TYPE g gauge
g {g}
"""


def counters(r: float = 1, b: float = 1, s: float = 1, g: float = 1) -> MetricsView:
    return view(
        COUNTERS.replace("{r}", str(r)).replace("{b}", str(b)).replace("{s}", str(s)).replace("{g}", str(g))
    )


class TestCountersMonotonic:
    def test_growing_counters_and_falling_gauges_and_sums_pass(self) -> None:
        scrapes = [("one", counters(1, 1, 5, 9)), ("two", counters(2, 3, 4, 1))]
        # r_total{a="1"}, q_seconds_bucket{le="+Inf"} and q_seconds_count, compared between the scrapes
        assert metrics.check_counters_monotonic(scrapes) == (
            [],
            {"counter_series": 3, "prometheus_series": 0},
        )

    @pytest.mark.parametrize(("first", "second"), [({"r": 5}, {"r": 4}), ({"b": 3}, {"b": 2})])
    def test_a_decrease_between_scrapes_fails(
        self, first: dict[str, float], second: dict[str, float]
    ) -> None:
        findings, _ = metrics.check_counters_monotonic(
            [("one", counters(**first)), ("two", counters(**second))]
        )
        assert ids(findings) == {"MET-009"} and findings[0].evidence["source"] == "/metrics"

    def test_counter_sample_names(self) -> None:
        # One scrape compares nothing.
        assert metrics.check_counters_monotonic([("one", counters())]) == (
            [],
            {"counter_series": 0, "prometheus_series": 0},
        )
        assert metrics.counter_sample_names(counters()) == ["q_seconds_bucket", "q_seconds_count", "r_total"]

    def test_a_decrease_prometheus_stored_fails(self) -> None:
        history = [
            {
                "metric": {"__name__": "r_total", "a": "1", "job": "service"},
                "values": [(1.0, 3.0), (2.0, 5.0)],
            },
            {
                "metric": {"__name__": "r_total", "a": "2", "job": "service"},
                "values": [(1.0, 3.0), (2.0, 0.0)],
            },
        ]
        (finding,), examined = metrics.check_counters_monotonic([], history)
        assert finding.evidence == {"series": 'r_total{a="2"}', "decreases": 1, "source": "prometheus"}
        assert examined == {"counter_series": 0, "prometheus_series": 2}

    def test_a_series_prometheus_stored_once_cannot_decrease_and_is_not_counted(self) -> None:
        history = [{"metric": {"__name__": "r_total", "job": "service"}, "values": [(1.0, 3.0)]}]
        assert metrics.check_counters_monotonic([], history) == (
            [],
            {"counter_series": 0, "prometheus_series": 0},
        )

    def test_series_only_in_one_scrape_are_not_compared(self) -> None:
        text = COUNTERS.replace('r_total{a="1"} {r}', 'r_total{a="2"} 1')
        second = view(text.replace("{b}", "1").replace("{s}", "1").replace("{g}", "1"))
        _, examined = metrics.check_counters_monotonic([("one", counters()), ("two", second)])
        assert examined["counter_series"] == 2


class TestChurn:
    def test_stable_series_pass(self) -> None:
        assert metrics.check_series_churn(("one", counters(1)), ("two", counters(7))) == ([], {"series": 5})

    def test_empty_scrapes_examine_nothing(self) -> None:
        empty = view("# HELP r_total x\n# TYPE r_total counter\n")
        assert metrics.check_series_churn(("one", empty), ("two", empty)) == ([], {"series": 0})

    def test_vanishing_and_appearing_series_fail(self) -> None:
        second = view(
            COUNTERS.replace('r_total{a="1"} {r}', 'r_total{a="2"} 1')
            .replace("{b}", "1")
            .replace("{s}", "1")
            .replace("{g}", "1")
        )
        findings, examined = metrics.check_series_churn(("one", counters()), ("two", second))
        assert examined == {"series": 6}  # the 5 of each scrape, one of them different
        assert [(f.requirement_id, f.evidence["change"], f.evidence["series"]) for f in findings] == [
            ("MET-010", "disappeared", 1),
            ("MET-010", "appeared", 1),
        ]


# -- is there an exposition to examine? ---------------------------------------------
URL = "http://127.0.0.1:8123/metrics"


@pytest.mark.parametrize(
    ("status", "content_type", "parse_error", "families", "gap"),
    [
        (200, "text/plain; version=0.0.4; charset=utf-8", "", 12, ""),
        (200, "application/openmetrics-text; version=1.0.0", "", 3, ""),
        (200, "", "", 1, ""),  # no Content-Type means the text format, as for Prometheus
        (404, "text/html", "HTTP 404", 0, f"GET {URL} answered 404 text/html; nothing to examine"),
        (503, "", "HTTP 503", 0, f"GET {URL} answered 503 without a Content-Type; nothing to examine"),
        (
            200,
            "text/html; charset=utf-8",
            "prometheus-text parser: ValueError: invalid metric name:<!doctype html>",
            0,
            f"GET {URL} answered 200 text/html, a web page, not a metrics exposition; nothing to examine",
        ),
        (
            # a catch-all page the parser happens to accept is still a page
            200,
            "text/html",
            "",
            1,
            f"GET {URL} answered 200 text/html, a web page, not a metrics exposition; nothing to examine",
        ),
        (
            200,
            "text/plain",
            "prometheus-text parser: ValueError: bad line",
            0,
            f"GET {URL} answered 200 text/plain that does not parse (prometheus-text parser: ValueError: "
            "bad line); nothing to examine",
        ),
        (
            200,
            "text/plain",
            "",
            0,
            f"GET {URL} answered 200 text/plain with no metric family in it; nothing to examine",
        ),
    ],
)
def test_exposition_gap(status: int, content_type: str, parse_error: str, families: int, gap: str) -> None:
    assert (
        metrics.exposition_gap(
            url=URL,
            status_code=status,
            content_type=content_type,
            parse_error=parse_error,
            family_count=families,
        )
        == gap
    )


# -- MET-011 ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("internal", "status", "serves", "separate", "fails"),
    [
        (False, 200, True, False, False),  # the profile does not ask for anything
        (True, 200, True, False, True),  # internal, but served on the public port
        (True, 404, False, False, False),
        (True, 401, False, False, False),
        (True, 403, False, False, False),
        (True, 405, False, False, True),  # not one of the refusals the seed names
        (True, 200, False, True, False),  # separate port; the public port serves something else
        (True, 200, True, True, True),  # separate port, but the public port serves metrics too
    ],
)
def test_metrics_exposure(internal: bool, status: int, serves: bool, separate: bool, fails: bool) -> None:
    findings = metrics.check_metrics_exposure(
        internal=internal,
        url="http://127.0.0.1:1/metrics",
        status_code=status,
        serves_metrics=serves,
        separate_port=separate,
    )
    assert ids(findings) == ({"MET-011"} if fails else set())
