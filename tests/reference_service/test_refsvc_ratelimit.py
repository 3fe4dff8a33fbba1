"""Fixed-window rate limits: the limiter alone, then through the app."""

from __future__ import annotations

import pytest
from _refsvc_support import FakeClock, InProcessService, ServiceFactory
from reference_service.ratelimit import (
    AUTH,
    CHAT,
    GENERAL,
    HEALTH,
    FixedWindowRateLimiter,
    describe_window,
    rule_for_path,
)


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("/auth/login", AUTH),
        ("/chat/completions", CHAT),
        ("/health", HEALTH),
        ("/health/detailed", GENERAL),
        ("/users/1", GENERAL),
        ("/nope", GENERAL),
        ("/metrics", None),
        ("/health/live", None),
        ("/health/ready", None),
    ],
)
def test_rule_for_path(path: str, rule: object) -> None:
    assert rule_for_path(path) == rule


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60, "1 minute"), (1, "1 second"), (30, "30 seconds"), (120, "2 minutes"), (3600, "1 hour")],
)
def test_describe_window(seconds: int, text: str) -> None:
    assert describe_window(seconds) == text


def test_limiter_passes_exactly_limit_then_refuses_until_the_window_ends() -> None:
    clock = FakeClock(1000.0)
    limiter = FixedWindowRateLimiter(60, clock=clock)

    decisions = [limiter.hit("ip:1", AUTH) for _ in range(AUTH.limit)]
    assert all(decision.allowed for decision in decisions)
    assert [decision.remaining for decision in decisions] == list(range(AUTH.limit - 1, -1, -1))

    clock.advance(14.5)
    refused = limiter.hit("ip:1", AUTH)
    assert not refused.allowed
    assert refused.retry_after == 46  # ceil(60 - 14.5)
    assert refused.reset_at == 1060

    clock.advance(45.4)
    assert not limiter.hit("ip:1", AUTH).allowed
    assert limiter.hit("ip:1", AUTH).retry_after == 1

    clock.advance(0.1)
    assert limiter.hit("ip:1", AUTH).allowed


def test_limiter_keys_are_per_client_and_per_rule() -> None:
    limiter = FixedWindowRateLimiter(60, clock=FakeClock())
    for _ in range(AUTH.limit):
        limiter.hit("ip:1", AUTH)

    assert not limiter.hit("ip:1", AUTH).allowed
    assert limiter.hit("ip:2", AUTH).allowed
    assert limiter.hit("ip:1", CHAT).allowed


def test_auth_limit_boundary_and_429_shape(service: InProcessService) -> None:
    passed = [service.post("/auth/login", json={"email": "a@b.co", "password": "x"}) for _ in range(10)]
    assert [response.status_code for response in passed] == [200] * 10
    assert [response.headers["X-RateLimit-Remaining"] for response in passed] == [
        str(n) for n in range(9, -1, -1)
    ]

    service.clock.advance(15.2)
    refused = service.post(
        "/auth/login", json={"email": "a@b.co", "password": "x"}, headers={"X-Correlation-ID": "rl"}
    )

    assert refused.status_code == 429
    assert refused.headers["Content-Type"] == "application/json"
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.json() == {
        "error": "rate_limit_exceeded",
        "message": "Rate limit exceeded: 10 per 1 minute",
        "retry_after": 45,
    }
    assert refused.headers["Retry-After"] == "45"
    assert refused.headers["X-RateLimit-Limit"] == "10"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Reset"] == str(int(service.clock.now - 15.2) + 60)
    assert refused.headers["X-Correlation-ID"] == "rl"
    (record,) = service.records("request_completed", correlation_id="rl")
    assert (record["status_code"], record["path"]) == (429, "/auth/login")
    labels = {"method": "POST", "endpoint": "/auth/login"}
    assert service.sample("http_requests_total", {**labels, "status_code": "429"}) == 1
    assert service.sample("rate_limit_hits_total", {"endpoint": "/auth/login"}) == 1


def test_limit_resets_after_the_window(service: InProcessService) -> None:
    for _ in range(10):
        service.post("/auth/login")
    assert service.post("/auth/login").status_code == 429

    service.clock.advance(60)

    assert service.post("/auth/login").status_code == 401


@pytest.mark.parametrize(("path", "limit"), [("/chat/completions", 30), ("/health", 60), ("/users/1", 100)])
def test_each_rule_limit(service: InProcessService, path: str, limit: int) -> None:
    method = "POST" if path.startswith("/chat") else "GET"
    statuses = [service.request(method, path).status_code for _ in range(limit + 1)]

    assert 429 not in statuses[:limit]
    assert statuses[limit] == 429
    assert service.request(method, path).headers["X-RateLimit-Limit"] == str(limit)


def test_exempt_routes_carry_no_limit_headers(service: InProcessService) -> None:
    for path in ("/metrics", "/health/live", "/health/ready"):
        assert "X-RateLimit-Limit" not in service.get(path).headers


def test_api_key_is_the_client_identity(service: InProcessService) -> None:
    for _ in range(10):
        service.post("/auth/login", headers={"X-API-Key": "key-a"})

    assert service.post("/auth/login", headers={"X-API-Key": "key-a"}).status_code == 429
    assert service.post("/auth/login", headers={"X-API-Key": "key-b"}).status_code == 401
    assert service.post("/auth/login").status_code == 401


def test_window_comes_from_the_environment(make_service: ServiceFactory) -> None:
    service = make_service(env={"REFSVC_RATE_LIMIT_WINDOW_SECONDS": "1"})
    for _ in range(10):
        service.post("/auth/login")

    refused = service.post("/auth/login")

    assert refused.json()["message"] == "Rate limit exceeded: 10 per 1 second"
    assert refused.json()["retry_after"] == 1
    service.clock.advance(1)
    assert service.post("/auth/login").status_code == 401


def test_rate_limits_can_be_disabled(make_service: ServiceFactory) -> None:
    service = make_service(env={"REFSVC_RATE_LIMIT_ENABLED": "false"})

    statuses = {service.post("/auth/login").status_code for _ in range(11)}

    assert statuses == {401}
    assert "X-RateLimit-Limit" not in service.post("/auth/login").headers
