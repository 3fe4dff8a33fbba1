"""metrics.source: otlp — what the collector's prometheus exporter adds, and the OTLP names behind
its families (conformance.collect._otlp_metrics, conformance.checks.otlp_metrics)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance._exceptions import NoEvidence
from conformance._model import Finding
from conformance._profile import load_profile
from conformance._session import ConformanceSession
from conformance.checks.otlp_metrics import (
    OtlpOrigin,
    attribute_to_otlp,
    exporter_name_base,
    finding_metric_names,
    otlp_origins,
)
from conformance.collect._otlp_metrics import (
    OtlpMetricsSource,
    received_metric_points,
    service_families,
    strip_exporter_families,
    strip_exporter_series,
)
from conformance.collect._scrape import Exposition, parse_exposition
from conformance.stack._local import LocalStack
from conformance.stack._telemetry import TelemetryPlan

# What otelcol's prometheus exporter serves for a Python service with the FastAPI instrumentation.
EXPORTER_TEXT = """\
# HELP bookshelf_books_created_total Books added
# TYPE bookshelf_books_created_total counter
bookshelf_books_created_total{instance="7f3c",job="bookshelf",otel_scope_name="bookshelf"} 2
# HELP http_server_duration_milliseconds Duration of HTTP server requests.
# TYPE http_server_duration_milliseconds histogram
http_server_duration_milliseconds_bucket{http_method="GET",instance="7f3c",job="bookshelf",le="5"} 3
http_server_duration_milliseconds_bucket{http_method="GET",instance="7f3c",job="bookshelf",le="+Inf"} 3
http_server_duration_milliseconds_sum{http_method="GET",instance="7f3c",job="bookshelf"} 4.5
http_server_duration_milliseconds_count{http_method="GET",instance="7f3c",job="bookshelf"} 3
# HELP target_info Target metadata
# TYPE target_info gauge
target_info{instance="7f3c",job="bookshelf",service_name="bookshelf",telemetry_sdk_language="python"} 1
"""


def exposition(text: str = EXPORTER_TEXT) -> Exposition:
    families, fmt, error = parse_exposition(text, "text/plain; version=0.0.4; charset=utf-8")
    assert not error
    return Exposition("http://127.0.0.1:1/metrics", 200, "text/plain", text, tuple(families), fmt)


def test_the_exporters_own_family_and_resource_labels_are_taken_out() -> None:
    stripped = strip_exporter_families(exposition())
    assert [f.name for f in stripped.families] == [
        "bookshelf_books_created",
        "http_server_duration_milliseconds",
    ]
    assert "target_info" not in stripped.text
    assert "job=" not in stripped.text and "instance=" not in stripped.text
    assert 'http_server_duration_milliseconds_bucket{http_method="GET",le="5"} 3' in stripped.text
    assert 'bookshelf_books_created_total{otel_scope_name="bookshelf"} 2' in stripped.text
    labels = [s.labels for f in stripped.families for s in f.samples]
    assert all("job" not in ls and "instance" not in ls for ls in labels)
    # The text still parses to the same families: lint and promtool see what the checks see.
    again, _, error = parse_exposition(stripped.text, "text/plain; version=0.0.4")
    assert not error and [f.name for f in again] == [f.name for f in stripped.families]


def test_a_sample_with_only_resource_labels_loses_its_label_block() -> None:
    text = '# TYPE up_total counter\nup_total{job="a",instance="b"} 1\n'
    assert strip_exporter_families(exposition(text)).text.endswith("up_total 1\n")


def test_escaped_quotes_in_a_label_value_survive() -> None:
    text = '# TYPE x_total counter\nx_total{job="a\\"b",route="/a\\"b"} 1\n'
    assert 'x_total{route="/a\\"b"} 1' in strip_exporter_families(exposition(text)).text


def test_service_families_leave_out_target_info() -> None:
    assert service_families(["target_info", "x"]) == ["x"]
    assert service_families(["target_info"]) == []


def test_the_exporters_name_base() -> None:
    assert exporter_name_base("http.server.duration") == "http_server_duration"
    assert exporter_name_base("bookshop.orders-placed") == "bookshop_orders_placed"
    assert exporter_name_base("2xx.count") == "_2xx_count"


def test_origins_take_the_longest_otlp_name_and_say_what_was_appended() -> None:
    exported = ["http_server_duration_milliseconds", "http_server_request_duration_seconds"]
    exported += ["bookshelf_books_created", "process_cpu_seconds"]
    otlp = ["http.server.duration", "http.server.request.duration", "http.server", "bookshelf.books.created"]
    origins = otlp_origins(exported, otlp)
    assert origins["http_server_duration_milliseconds"] == OtlpOrigin("http.server.duration", "milliseconds")
    assert origins["http_server_request_duration_seconds"].otlp_name == "http.server.request.duration"
    assert origins["bookshelf_books_created"] == OtlpOrigin("bookshelf.books.created", "")
    assert "process_cpu_seconds" not in origins  # no OTLP metric explains it


def test_findings_name_the_otlp_metric_behind_the_exported_family() -> None:
    findings = [
        Finding("MET-003", "http_server_duration_milliseconds: use base unit seconds",
                {"metric": "http_server_duration_milliseconds"}),
        Finding("MET-005", "bad bucket", {"metric": "http_server_duration_milliseconds_bucket"}),
        Finding("MET-010", "no metric named here", {}),
    ]  # fmt: skip
    names = finding_metric_names(findings)
    assert "http_server_duration_milliseconds" in names
    out = attribute_to_otlp(findings, otlp_origins(names, ["http.server.duration"]))
    assert out[0].evidence["otlp_metric"] == "http.server.duration"
    assert out[0].evidence["exported_as"] == "http_server_duration_milliseconds"
    assert out[0].evidence["added_by_exporter"] == "milliseconds"
    assert "OTLP metric http.server.duration" in out[0].message
    assert out[1].evidence["otlp_metric"] == "http.server.duration"  # a sample name finds its family
    assert out[2] == findings[2]


def test_the_source_says_where_the_metrics_were_read() -> None:
    source = OtlpMetricsSource("http://127.0.0.1:9464/metrics", "otel-collector")
    assert source.describe() == (
        "the collector's prometheus exporter at http://127.0.0.1:9464/metrics, "
        "metrics the service pushed over OTLP"
    )


def test_prometheus_series_of_the_exporter_lose_target_info_and_the_renamed_resource_labels() -> None:
    series = [
        {"__name__": "target_info", "job": "otel-collector", "service_name": "bookshelf"},
        {
            "__name__": "x_total",
            "job": "otel-collector",
            "exported_job": "bookshelf",
            "exported_instance": "7f",
        },
    ]
    assert strip_exporter_series(series) == ({"__name__": "x_total", "job": "otel-collector"},)


def test_without_the_collector_otlp_metrics_are_an_error_with_reason_and_fix(tmp_path: Path) -> None:
    profile_file = tmp_path / "conformance.yaml"
    profile_file.write_text("version: 1\nservice: {name: demo, command: [x]}\nmetrics: {source: otlp}\n")
    profile = load_profile(profile_file)
    plan = TelemetryPlan(None, "OBSCONFORM_TELEMETRY=embedded; the embedded OTLP receiver stands in for both")
    stack = LocalStack(profile, tmp_path / "run", telemetry=plan)
    source = stack.otlp_metrics_source()
    assert not source.url and "OBSCONFORM_TELEMETRY=embedded" in source.unavailable
    assert "scripts/build-telemetry" in source.fix
    session = ConformanceSession(profile, stack)
    try:
        with pytest.raises(NoEvidence, match="exporter, and the OpenTelemetry Collector is not running"):
            session.scrape()
        assert "not running" in session.otlp_metrics_gap()
        gap = session.scrape_or_gap()  # the PII and rate-limit probes read the other signals on
        assert gap.parse_error and not gap.families
    finally:
        session.close()


def test_pushes_are_counted_from_the_receivers_stats() -> None:
    assert received_metric_points({"metric_points": {"received": 16}, "spans": {"received": 3}}) == 16
    assert received_metric_points({}) == 0  # a receiver that got no metric yet
