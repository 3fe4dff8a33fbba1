"""The cardinality probe's plan and traffic, over httpx.MockTransport (conformance.collect._cardinality)."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from conformance._exceptions import HarnessError
from conformance._profile import Endpoint
from conformance.collect._cardinality import (
    MAX_HISTORY_SECONDS,
    PROBE_QUERY_PARAM,
    UNMATCHED_ENDPOINT,
    ProbeRequest,
    counter_history,
    fetch_public_metrics,
    new_probe_marker,
    observe_steady_traffic,
    plan_probe,
    send_probe,
)
from conformance.collect._prometheus_api import PrometheusClient
from conformance.collect._scrape import Exposition

ENDPOINTS = (
    Endpoint("health", "/health"),
    Endpoint("get_user", "/users/{user_id}", path_params={"user_id": "4242"}),
    Endpoint("doc", "/docs/{doc_id}", path_params={"doc_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}),
    Endpoint(
        "login",
        "/auth/login",
        method="POST",
        json={"email": "me@example.com", "password": "pw", "n": 1},
        has_json=True,
    ),
)
HEADERS = ("X-Request-ID", "User-Agent")


def plan(count: int = 20, *, lanes: int = 2, unmatched: bool = True) -> list[ProbeRequest]:
    return plan_probe(
        ENDPOINTS,
        count,
        marker="731902",
        lanes=lanes,
        headers=HEADERS,
        correlation_header="X-Correlation-ID",
        body_fields=("email", "user_id"),
        unmatched_path=unmatched,
    )


def test_marker_is_six_digits() -> None:
    marker = new_probe_marker()
    assert len(marker) == 6 and marker.isdigit() and marker[0] != "0"


def test_every_request_has_its_own_id_everywhere() -> None:
    requests = plan(10)
    assert [r.probe_id for r in requests] == [f"731902{i:05d}" for i in range(10)]
    for r in requests:
        headers = dict(r.headers)
        assert headers["X-Request-ID"] == f"obsc-{r.probe_id}"
        assert headers["User-Agent"] == f"obsconform-probe/{r.probe_id}"
        assert headers["X-Correlation-ID"] == f"obsc-{r.probe_id}"
        assert (PROBE_QUERY_PARAM, f"q{r.probe_id}") in r.params


def test_ids_keep_the_shape_of_the_profile_values() -> None:
    by_endpoint = {r.endpoint: r for r in plan(5)}
    assert by_endpoint["get_user"].path == "/users/73190200001"
    assert by_endpoint["doc"].path == "/docs/3f2504e0-4f89-11d3-9a0c-073190200002"
    assert by_endpoint["login"].json == {"email": "me+73190200003@example.com", "password": "pw", "n": 1}
    assert by_endpoint[UNMATCHED_ENDPOINT].path == "/obsconform-probe/73190200004"
    assert by_endpoint["health"].json is None and not by_endpoint["health"].has_json


def test_rounds_rotate_over_the_lanes() -> None:
    requests = plan(20, lanes=2)
    # 5 targets per round: round r goes out on lane r % 2.
    assert [r.lane for r in requests] == [0] * 5 + [1] * 5 + [0] * 5 + [1] * 5
    per_lane_logins = Counter(r.lane for r in requests if r.endpoint == "login")
    assert per_lane_logins == {0: 2, 1: 2}


def test_without_the_unmatched_path() -> None:
    assert UNMATCHED_ENDPOINT not in {r.endpoint for r in plan(8, unmatched=False)}


def test_no_target_is_a_harness_error() -> None:
    with pytest.raises(HarnessError, match="no endpoint"):
        plan_probe(
            [],
            5,
            marker="1",
            lanes=1,
            headers=(),
            correlation_header="X",
            body_fields=(),
            unmatched_path=False,
        )


def test_send_probe_uses_each_lanes_client_and_counts_statuses() -> None:
    seen: list[tuple[str, str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["X-API-Key"], request.url.path, request.headers["X-Request-ID"]))
        if request.url.path.startswith("/obsconform-probe"):
            return httpx.Response(404)
        if request.url.path == "/auth/login":
            assert json.loads(request.content)["email"].startswith("me+731902")
            return httpx.Response(429)
        return httpx.Response(200)

    clients = [
        httpx.Client(
            base_url="http://svc", transport=httpx.MockTransport(handler), headers={"X-API-Key": f"k{i}"}
        )
        for i in range(2)
    ]
    stats = send_probe(clients, plan(10))
    assert stats.sent == 10 and stats.statuses == {200: 6, 404: 2, 429: 2} and stats.throttled == 2
    assert {key for key, path, _ in seen[:5]} == {"k0"} and {key for key, _, _ in seen[5:]} == {"k1"}
    assert len({rid for _, _, rid in seen}) == 10
    assert stats.to_dict()["statuses"] == {"200": 6, "404": 2, "429": 2}


def test_send_probe_records_transport_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = httpx.Client(base_url="http://svc", transport=httpx.MockTransport(handler))
    stats = send_probe([client], plan(3))
    assert stats.statuses == {} and len(stats.errors) == 3 and "ConnectError" in stats.errors[0]


EXPOSITION = "# HELP up_total x\n# TYPE up_total counter\nup_total 1\n"


@pytest.mark.parametrize(
    ("status", "content_type", "body", "serves"),
    [
        (200, "text/plain; version=0.0.4", EXPOSITION, True),
        (200, "text/html", "<html>{not metrics</html>", False),
        (404, "application/json", '{"detail":"Not Found"}', False),
    ],
)
def test_fetch_public_metrics(status: int, content_type: str, body: str, serves: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers
        return httpx.Response(status, headers={"content-type": content_type}, text=body)

    client = httpx.Client(base_url="http://127.0.0.1:8000", transport=httpx.MockTransport(handler))
    answer = fetch_public_metrics(client, "/metrics")
    assert (answer.url, answer.status_code, answer.serves_metrics) == (
        "http://127.0.0.1:8000/metrics",
        status,
        serves,
    )


def test_steady_traffic_warms_up_before_the_first_scrape() -> None:
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path)
        return httpx.Response(200)

    scraped_after: list[int] = []

    def scrape() -> Exposition:
        scraped_after.append(len(requests))
        return Exposition("http://svc/metrics", 200, "text/plain", "", (), "prometheus-text")

    client = httpx.Client(base_url="http://svc", transport=httpx.MockTransport(handler))
    _, _, exchanges = observe_steady_traffic(client, ENDPOINTS[:2], scrape)
    assert scraped_after == [2, 4] and len(exchanges) == 4
    assert requests == ["/health", "/users/4242", "/health", "/users/4242"]


def test_counter_history_reads_the_raw_range() -> None:
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        queries.append(request.url.params["query"])
        result = [{"metric": {"__name__": "a_total"}, "values": [[1, "1"], [2, "2"]]}]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "matrix", "result": result}}
        )

    prometheus = PrometheusClient("http://prom", client=httpx.Client(transport=httpx.MockTransport(handler)))
    history = counter_history(prometheus, "service", ["a_total", "h_bucket"], 12.2)
    assert queries == ['{job="service",__name__=~"a_total|h_bucket"}[13s]']
    assert history == [{"metric": {"__name__": "a_total"}, "values": [(1.0, 1.0), (2.0, 2.0)]}]
    counter_history(prometheus, "service", ["a_total"], 10 * MAX_HISTORY_SECONDS)
    assert queries[-1].endswith(f"[{MAX_HISTORY_SECONDS}s]")
    assert counter_history(prometheus, "service", [], 10) == []
