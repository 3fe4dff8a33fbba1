"""The MET keys of the ``metrics`` profile section (conformance._sections.metrics)."""

from __future__ import annotations

from pathlib import Path

from conformance import load_profile
from conformance._sections.metrics import (
    DEFAULT_FORBIDDEN_LABELS,
    KEY,
    CardinalityProbe,
    MetricsContract,
    RequiredMetric,
)

REPO = Path(__file__).resolve().parents[2]


def test_defaults_when_only_the_stack_keys_are_given(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nservice: {name: x, command: [x]}\nmetrics: {path: /m, format: openmetrics}\n"
    )
    profile = load_profile(path)
    assert profile.metrics.path == "/m" and profile.metrics.format == "openmetrics"
    contract = profile.section(KEY)
    assert contract == MetricsContract()
    assert (
        contract.forbidden_labels
        == DEFAULT_FORBIDDEN_LABELS
        == (
            "user_id",
            "session_id",
            "request_id",
            "email",
            "full_path",
        )
    )
    assert contract.cardinality.requests == 200 and contract.cardinality.budget("anything") == 2000


def test_every_key(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nservice: {name: x, command: [x]}\n"
        "endpoints: [{name: health, path: /health}, {name: me, path: /me}]\n"
        "metrics:\n"
        "  internal: true\n"
        "  required:\n"
        "    - {name: d_seconds, type: histogram, labels: [route], extra_labels: true, unit: seconds,"
        " buckets: [0.1, 2]}\n"
        "    - {name: jobs_total, type: counter}\n"
        "  forbidden_labels: [tenant_id]\n"
        "  cardinality: {requests: 50, clients: 2, endpoints: [me], unmatched_path: false,"
        " headers: [X-Tenant], body_fields: [tenant], max_series_per_request: 0.1, default_budget: 10,"
        " budgets: {d_seconds: 99}, timeout: 3, max_throttled_share: 0.2}\n"
    )
    contract = load_profile(path).section(KEY)
    assert contract == MetricsContract(
        internal=True,
        required=(
            RequiredMetric("d_seconds", "histogram", ("route",), True, "seconds", (0.1, 2.0)),
            RequiredMetric("jobs_total", "counter"),
        ),
        forbidden_labels=("tenant_id",),
        cardinality=CardinalityProbe(
            requests=50,
            clients=2,
            endpoints=("me",),
            unmatched_path=False,
            headers=("X-Tenant",),
            body_fields=("tenant",),
            max_series_per_request=0.1,
            default_budget=10,
            budgets={"d_seconds": 99},
            timeout=3.0,
            max_throttled_share=0.2,
        ),
    )
    assert contract.cardinality.budget("d_seconds") == 99 and contract.cardinality.budget("other") == 10


def test_reference_profile_names_the_seed_metrics() -> None:
    contract = load_profile(REPO / "fixtures/reference_service/conformance.yaml").section(KEY)
    names = {r.name: r for r in contract.required}
    assert {
        "http_requests_total",
        "http_request_duration_seconds",
        "http_requests_in_progress",
        "http_errors_total",
    } <= set(names)
    assert names["http_request_duration_seconds"].buckets == (0.1, 0.5, 2.0)
    assert contract.internal is False
