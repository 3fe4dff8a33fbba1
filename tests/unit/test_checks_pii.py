"""PII-*: canary generation and injection plans, the scan, the detectors and every
requirement's failure on hand-made telemetry (conformance.checks.pii)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance._exceptions import HarnessError
from conformance._mask import luhn_check_digit, luhn_valid, mask_pii
from conformance._model import Finding
from conformance._profile import Endpoint, LogContract
from conformance._sections.pii import DetectorConfig, InjectionSettings, RedactedField
from conformance.checks import pii
from conformance.checks.logs import parse_log_lines
from conformance.collect._canaries import (
    CANARY_KINDS,
    Canary,
    CanaryGenerator,
    CanaryRegistry,
    body_field_kind,
    inject_canaries,
    plan_injection,
    request_url,
    with_sent_forms,
)
from conformance.collect._scrape import Exposition
from conformance.telemetry import HttpExchange, LogLine, OtlpLogRecord, OtlpMetricPoints, Span, SpanEvent

REPO = Path(__file__).resolve().parents[2]
DETECTOR_CASES = yaml.safe_load((REPO / "tests/data/pii_detector_cases.yaml").read_text())
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ENDPOINTS = (
    Endpoint(name="health", path="/health"),
    Endpoint(name="get_user", path="/users/{user_id}", path_params={"user_id": "4242"}),
    Endpoint(
        name="login",
        path="/auth/login",
        method="POST",
        json={"email": "conformance@example.com", "password": "not-a-real-password"},
        has_json=True,
    ),
    Endpoint(
        name="chat",
        path="/chat/completions",
        method="POST",
        json={"model": "fake-small", "messages": [{"role": "user", "content": "Say hello."}]},
        has_json=True,
    ),
)


def canaries(*kinds: str, seed: str = "unit") -> list[Canary]:
    generator = CanaryGenerator(seed)
    return [generator.new(kind, endpoint="login", slot=f"json $.{kind}", request=0) for kind in kinds]


def log(*records: Any) -> list[LogLine]:
    return [
        LogLine(i, (r if isinstance(r, str) else json.dumps(r)).encode()) for i, r in enumerate(records, 1)
    ]


def span(attributes: dict[str, Any] | None = None, **kwargs: Any) -> Span:
    values: dict[str, Any] = {
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "parent_span_id": None,
        "name": "POST /auth/login",
        "kind": "SERVER",
        "start_time_unix_nano": 1,
        "end_time_unix_nano": 2,
        "attributes": attributes or {},
        "resource_attributes": {"service.name": "svc"},
    }
    values.update(kwargs)
    return Span(**values)


def exposition(text: str) -> Exposition:
    return Exposition("http://127.0.0.1:9/metrics", 200, "text/plain", text, (), "prometheus-text")


def scan(found: list[Canary], texts: list[pii.ChannelText], **config: Any) -> list[pii.Hit]:
    return pii.PiiScanner(found, DetectorConfig(**config)).scan(texts)


def assert_masked(findings: list[Finding], values: list[str]) -> None:
    """Nothing a report could show contains a raw value."""
    shown = json.dumps([f.to_dict() for f in findings])
    for value in values:
        assert value not in shown


# --------------------------------------------------------------------------- generator


class TestGenerator:
    def test_same_seed_same_canaries_other_seed_others(self) -> None:
        first = [c.value for c in canaries(*CANARY_KINDS, seed="run-1")]
        assert first == [c.value for c in canaries(*CANARY_KINDS, seed="run-1")]
        other = [c.value for c in canaries(*CANARY_KINDS, seed="run-2")]
        assert not set(first) & set(other)

    def test_values_are_unique_within_a_run(self) -> None:
        generator = CanaryGenerator("unique")
        values = [generator.new(kind).value for kind in CANARY_KINDS for _ in range(40)]
        assert len(values) == len(set(values))

    def test_each_kind_is_realistic_and_valid(self) -> None:
        found = {c.kind: c.value for c in canaries(*CANARY_KINDS)}
        assert re.fullmatch(r"[a-z]+\.[a-z]+\.[a-z0-9]{6}@(mail\.)?example\.(com|net|org)", found["email"])
        assert re.fullmatch(r"\+1[2-9]\d{2}55501\d{2}", found["phone"])  # NANP numbers reserved for fiction
        assert luhn_valid(found["card"]) and found["card"][:6] in ("400000", "555555", "222300")
        area = found["ssn"].split("-")[0]
        assert re.fullmatch(r"\d{3}-\d{2}-\d{4}", found["ssn"]) and (area == "666" or area >= "900")
        header, payload, signature = found["jwt"].split(".")
        assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "typ": "JWT"}
        assert {"sub", "iat", "jti"} <= json.loads(base64.urlsafe_b64decode(payload + "==")).keys()
        assert len(base64.urlsafe_b64decode(signature + "=")) == 32
        assert found["api_key"].startswith("sk-proj-") and len(found["api_key"]) == 48
        assert found["bearer"].startswith("at_")
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", found["session_cookie"])

    def test_unknown_kind(self) -> None:
        with pytest.raises(ValueError, match="unknown canary kind 'iban'"):
            CanaryGenerator("x").new("iban")

    def test_forms_of_a_card(self) -> None:
        (card,) = canaries("card")
        forms = {f.shape: f.text for f in card.forms()}
        v = card.value
        assert forms["formatted:groups of 4 with spaces"] == f"{v[:4]} {v[4:8]} {v[8:12]} {v[12:]}"
        assert forms["fragment:last 8 digits"] == v[-8:]
        assert forms["encoded:base64 (offset 0)"] in base64.b64encode(v.encode()).decode()

    def test_forms_of_an_email_jwt_phone_and_key(self) -> None:
        email, jwt, phone, key = canaries("email", "jwt", "phone", "api_key")
        assert {"fragment:local part": email.value.split("@")[0]}.items() <= {
            f.shape: f.text for f in email.forms()
        }.items()
        assert quote(email.value, safe="") in {f.text for f in email.forms()}
        jwt_forms = {f.shape: f.text for f in jwt.forms()}
        assert jwt_forms["fragment:JWT payload segment"] == jwt.value.split(".")[1]
        assert jwt_forms["fragment:JWT signature segment"] == jwt.value.split(".")[2]
        national = phone.value[2:]
        assert f"({national[:3]}) {national[3:6]}-{national[6:]}" in {f.text for f in phone.forms()}
        assert key.value.removeprefix("sk-proj-") in {f.text for f in key.forms()}

    def test_baseline_values_have_full_forms_only(self) -> None:
        value = Canary("b001", "email", "conformance@example.com", "login", "json $.email", baseline=True)
        assert {f.shape for f in value.forms()} == {"exact"}
        assert value.where() == "json $.email of login (the profile's baseline traffic)"


# --------------------------------------------------------------------------- injection plan


class TestPlan:
    def plan(self, **settings_: Any) -> Any:
        return plan_injection(ENDPOINTS, InjectionSettings(**settings_), CanaryGenerator("plan"))

    def test_every_endpoint_every_round_every_input(self) -> None:
        plan = self.plan()
        assert [(r.endpoint.name, r.lane) for r in plan.requests] == [
            *((ep.name, 0) for ep in ENDPOINTS),
            *((ep.name, 1) for ep in ENDPOINTS),
        ]
        slots = {(c.endpoint, c.slot) for c in plan.canaries}
        for ep in ENDPOINTS:
            for slot in ("query email", "query phone", "header Authorization", "header Cookie",
                         "header X-User-Email", "header X-Auth-Token", "user-agent"):  # fmt: skip
                assert (ep.name, slot) in slots
        assert ("get_user", "path {user_id}") in slots
        assert ("login", "json $.email") in slots and ("login", "json $.password") in slots
        assert ("chat", "json $.messages[0].content") in slots
        assert ("chat", "json $.model") not in slots and ("chat", "json $.messages[0].role") not in slots

    def test_values_land_where_the_registry_says(self) -> None:
        plan = self.plan(rounds=1)
        by_request = {r.index: r for r in plan.requests}
        for canary in plan.canaries:
            request = by_request[canary.request]
            endpoint = request.endpoint
            sent = json.dumps(
                [endpoint.concrete_path(), dict(endpoint.query), endpoint.json, request.extra_headers]
            )
            assert any(f.text in sent for f in canary.forms() if f.full), canary.where()

    def test_free_text_carries_one_canary_of_each_kind(self) -> None:
        plan = self.plan(rounds=1)
        chat = next(r for r in plan.requests if r.endpoint.name == "chat")
        content = chat.endpoint.json["messages"][0]["content"]
        in_prompt = [c for c in plan.canaries if c.slot == "json $.messages[0].content"]
        assert sorted(c.kind for c in in_prompt) == sorted(
            ["email", "phone", "card", "ssn", "jwt", "api_key"]
        )
        card = next(c for c in in_prompt if c.kind == "card").value
        assert f"{card[:4]} {card[4:8]}" in content  # grouped, as a person types it

    def test_authorization_alternates_jwt_and_opaque_token(self) -> None:
        plan = self.plan()
        kinds = [c.kind for c in plan.canaries if c.slot == "header Authorization"]
        assert kinds == ["jwt"] * len(ENDPOINTS) + ["bearer"] * len(ENDPOINTS)

    def test_selection_overrides_and_switches(self) -> None:
        plan = self.plan(
            rounds=1,
            endpoints=("login",),
            query={},
            headers={},
            authorization=False,
            cookie=None,
            user_agent=False,
            body_fields={"password": "keep", "email": "phone"},
        )
        assert [(c.slot, c.kind) for c in plan.canaries] == [("json $.email", "phone")]
        assert plan.requests[0].endpoint.json["password"] == "not-a-real-password"

    def test_body_field_kinds_by_name(self) -> None:
        assert body_field_kind("Email") == "email"
        assert body_field_kind("phone-number") == "phone"
        assert body_field_kind("prompt") == "text"
        assert body_field_kind("model") is None
        assert body_field_kind("model", {"model": "text"}) == "text"

    def test_summary_names_inputs_never_values(self) -> None:
        plan = self.plan(rounds=1)
        summary = json.dumps(CanaryRegistry(plan.seed, plan.canaries).summary())
        assert "json $.email" in summary and "user-agent" in summary
        for canary in plan.canaries:
            assert canary.value not in summary


# --------------------------------------------------------------------------- channel leaks (PII-001 … 004)


class TestCanaryLeaks:
    def test_pii_001_email_in_a_log_field(self) -> None:
        (email,) = canaries("email")
        hits = scan([email], pii.log_texts(log({"message": "login_attempt", "email": email.value})))
        findings = pii.check_canary_leaks(hits, "logs")
        assert [f.requirement_id for f in findings] == ["PII-001"]
        evidence = findings[0].evidence
        assert evidence["channel"] == "logs" and evidence["field"] == "$.email"
        assert evidence["location"] == "stdout line 1" and evidence["found"] == mask_pii("email", email.value)
        assert re.fullmatch(r"[a-z]\*\*\*@e\*\*\*\.(com|net|org)", evidence["found"])
        assert findings[0].message.startswith(
            "logs: the email canary sent in json $.email of login (request 0)"
        )
        assert_masked(findings, [email.value])

    def test_pii_001_raw_line_that_is_not_json(self) -> None:
        (token,) = canaries("bearer")
        hits = scan([token], pii.log_texts(log(f"GET / Authorization=Bearer {token.value}")))
        (finding,) = pii.check_canary_leaks(hits, "logs")
        assert finding.evidence["field"] == "(raw line)"
        assert_masked([finding], [token.value])

    def test_pii_001_card_written_in_groups(self) -> None:
        (card,) = canaries("card")
        grouped = "-".join(card.value[i : i + 4] for i in range(0, 16, 4))
        hits = scan([card], pii.log_texts(log({"prompt": f"card {grouped} thanks"})))
        (finding,) = pii.check_canary_leaks(hits, "logs")
        assert "written as groups of 4 with dashes" in finding.message
        assert pii.check_partial_leaks(hits) == []  # the last 8 digits are part of the whole card
        assert_masked([finding], [card.value, grouped, card.value[-8:]])

    def test_pii_001_value_in_another_case_is_found_by_the_detectors(self) -> None:
        (email,) = canaries("email")
        hits = scan([email], pii.log_texts(log({"user": email.value.upper()})))
        (finding,) = pii.check_canary_leaks(hits, "logs")
        assert "written differently" in finding.message
        assert pii.check_unknown_pii(hits) == []

    def test_pii_001_counts_repeats_once(self) -> None:
        (email,) = canaries("email")
        hits = scan([email], pii.log_texts(log(*[{"email": email.value}] * 3)))
        (finding,) = pii.check_canary_leaks(hits, "logs")
        assert finding.evidence["occurrences"] == 3 and "(3 times)" in finding.message

    def test_pii_001_throttled_request_is_noted(self) -> None:
        (email,) = canaries("email")
        exchange = HttpExchange("login", "POST", "http://x/auth/login", "/auth/login", (), 429)
        registry = CanaryRegistry("s", (email,), (exchange,))
        hits = scan([email], pii.log_texts(log({"email": email.value})))
        (finding,) = pii.check_canary_leaks(hits, "logs", registry)
        assert "answered 429" in finding.evidence["note"]

    def test_pii_002_span_attribute_event_name_and_resource(self) -> None:
        email, phone, key, card = canaries("email", "phone", "api_key", "card")
        spans = [
            span({"user.email": email.value, "http.status_code": 200}),
            span(
                events=(SpanEvent("exception", 1, {"exception.message": f"bad key {key.value}"}),),
                name=f"GET /users/{phone.value}",
                resource_attributes={"service.name": "svc", "account": int(card.value)},
            ),
        ]
        hits = scan([email, phone, key, card], pii.span_texts(spans))
        findings = pii.check_canary_leaks(hits, "traces")
        fields = sorted(f.evidence["field"] for f in findings)
        assert fields == ['attributes["user.email"]', 'events[0].attributes["exception.message"]', "name",
                          'resource["account"]']  # fmt: skip
        assert {f.requirement_id for f in findings} == {"PII-002"}
        assert all(f.message.startswith("traces (spans): ") for f in findings)
        assert_masked(findings, [email.value, phone.value, key.value, card.value])

    def test_pii_003_label_value_in_the_exposition(self) -> None:
        (email,) = canaries("email")
        text = (
            "# HELP user_requests_total Requests per user\n# TYPE user_requests_total counter\n"
            f'user_requests_total{{method="GET",user_id="{email.value}"}} 1.0\n'
        )
        hits = scan([email], pii.exposition_texts(exposition(text)))
        (finding,) = pii.check_canary_leaks(hits, "metrics")
        assert finding.requirement_id == "PII-003"
        assert finding.evidence["field"] == "user_requests_total{user_id} label value"
        assert finding.evidence["location"] == "http://127.0.0.1:9/metrics line 3"
        assert_masked([finding], [email.value])

    def test_pii_003_help_text(self) -> None:
        (email,) = canaries("email")
        hits = scan([email], pii.exposition_texts(exposition(f"# HELP x_total made by {email.value}\n")))
        (finding,) = pii.check_canary_leaks(hits, "metrics")
        assert finding.evidence["field"] == "HELP of x_total"

    def test_pii_004_series_and_label_values_api(self) -> None:
        email, phone = canaries("email", "phone")
        texts = pii.prometheus_texts(
            [{"__name__": "user_requests_total", "job": "service", "user_id": email.value}],
            {"user_id": [email.value, phone.value], "job": ["service"]},
        )
        findings = pii.check_canary_leaks(scan([email, phone], texts), "prometheus")
        assert {(f.evidence["location"], f.evidence["field"]) for f in findings} == {
            ("series API /api/v1/series", "labels.user_id"),
            ("label values API /api/v1/label/user_id/values", "user_id"),
        }
        assert {f.requirement_id for f in findings} == {"PII-004"}

    def test_each_channel_has_its_own_requirement(self) -> None:
        (email,) = canaries("email")
        texts = [
            *pii.log_texts(log({"e": email.value})),
            *pii.span_texts([span({"e": email.value})]),
            *pii.log_record_texts([OtlpLogRecord(1, "INFO", f"login by {email.value}")]),
            *pii.metric_point_texts([OtlpMetricPoints("logins", {"user": email.value})]),
            *pii.exposition_texts(exposition(f'x{{e="{email.value}"}} 1\n')),
            *pii.prometheus_texts([{"e": email.value}], {}),
        ]
        hits = scan([email], texts)
        ids = {ch: [f.requirement_id for f in pii.check_canary_leaks(hits, ch)] for ch in pii.CHANNELS}
        assert ids == {
            "logs": ["PII-001"],
            "log_records": ["PII-001"],
            "traces": ["PII-002"],
            "otlp_metrics": ["PII-003"],
            "metrics": ["PII-003"],
            "prometheus": ["PII-004"],
        }

    def test_redacted_output_is_clean(self) -> None:
        found = canaries(*CANARY_KINDS)
        lines = log(
            {"message": "login_attempt", "email": "[REDACTED_EMAIL]", "success": True},
            {"message": "chat", "prompt": "I'm [REDACTED_EMAIL], card [REDACTED_CC], key [REDACTED]"},
        )
        hits = scan(
            found,
            pii.log_texts(lines) + pii.span_texts([span({"http.url": "http://h/users/[REDACTED_EMAIL]"})]),
        )
        assert hits == []

    def test_a_percent_escape_before_a_number_is_not_part_of_it(self) -> None:
        (ssn,) = canaries("ssn")
        hits = scan([ssn], pii.log_texts(log(f"GET /users/my%20SSN%20is%20{ssn.value}%20thanks")))
        assert [(h.shape, h.text) for h in hits] == [("exact", ssn.value)]

    def test_number_inside_a_longer_number_is_another_number(self) -> None:
        (card,) = canaries("card")
        hits = scan(
            [card], pii.log_texts(log({"n": "9" + card.value[-8:] + "9", "ok": card.value[-8:] + "x"}))
        )
        assert [(h.shape, h.field) for h in hits] == [("fragment:last 8 digits", "$.ok")]


# --------------------------------------------------------------------------- partial and encoded (PII-005)


class TestPartialLeaks:
    @pytest.mark.parametrize(
        ("kind", "shape", "leak"),
        [
            ("email", "fragment:local part", lambda v: f"user {v.split('@')[0]} logged in"),
            ("card", "fragment:last 8 digits", lambda v: f"card ending {v[-8:]}"),
            ("card", "fragment:last 8 digits grouped", lambda v: f"card **** {v[-8:-4]} {v[-4:]}"),
            ("jwt", "fragment:JWT payload segment", lambda v: f"claims {v.split('.')[1]}"),
            ("jwt", "fragment:JWT signature segment", lambda v: f"sig={v.split('.')[2]}"),
            ("api_key", "fragment:key without its prefix", lambda v: f"key=***{v[8:]}"),
            ("email", "encoded:URL-encoded", lambda v: f"GET /?e={quote(v, safe='')}"),
            ("phone", "encoded:URL-encoded", lambda v: f"GET /?p={quote(v, safe='')}"),
            ("email", "encoded:base64 (offset 0)", lambda v: base64.b64encode(v.encode()).decode()),
            ("email", "encoded:base64 (offset 2)", lambda v: base64.b64encode(f"user:{v}".encode()).decode()),
            (
                "session_cookie",
                "encoded:base64 (offset 1)",
                lambda v: base64.b64encode(f"s{v}".encode()).decode(),
            ),
        ],
    )
    def test_pii_005_fragment_or_encoding(self, kind: str, shape: str, leak: Any) -> None:
        (canary,) = canaries(kind)
        hits = scan([canary], pii.log_texts(log({"message": leak(canary.value)})))
        findings = pii.check_partial_leaks(hits)
        assert [(f.requirement_id, f.evidence["shape"]) for f in findings] == [("PII-005", shape)]
        assert pii.check_canary_leaks(hits, "logs") == []
        assert findings[0].message.startswith("logs: ")
        assert_masked(findings, [canary.value, *(f.text for f in canary.forms())])

    def test_pii_005_in_a_span(self) -> None:
        (email,) = canaries("email")
        hits = scan(
            [email], pii.span_texts([span({"http.url": f"http://h/?e={quote(email.value, safe='')}"})])
        )
        (finding,) = pii.check_partial_leaks(hits)
        assert (
            finding.evidence["channel"] == "traces" and finding.evidence["field"] == 'attributes["http.url"]'
        )


# --------------------------------------------------------------------------- detectors (PII-006)


@pytest.mark.parametrize("case", DETECTOR_CASES, ids=[c["id"] for c in DETECTOR_CASES])
def test_detector_cases(case: dict[str, Any]) -> None:
    text = case["text"]
    assert [[kind, text[s:e]] for kind, s, e in pii.detect(text)] == [[k, str(v)] for k, v in case["found"]]


class TestUnknownPii:
    def test_pii_006_names_kind_channel_field_and_masks(self) -> None:
        hits = scan(
            [], pii.log_texts(log({"message": "x", "note": "mail jane.doe@corp.io, card 4111111111111111"}))
        )
        findings = pii.check_unknown_pii(hits)
        assert [(f.requirement_id, f.evidence["kind"], f.evidence["field"]) for f in findings] == [
            ("PII-006", "email", "$.note"),
            ("PII-006", "card", "$.note"),
        ]
        assert findings[0].message == (
            "logs: an email address the harness did not send appears in stdout line 1 at $.note "
            "as j***@c***.io"
        )
        assert_masked(findings, ["jane.doe@corp.io", "4111111111111111"])

    def test_markers_allowlist_and_ignored_fields(self) -> None:
        lines = log(
            {"account": "4111111111111111", "msg": "Bearer [REDACTED]"},
            {"support": "help@example.com"},
            {"custom_marker": "<<masked>>@example.com"},
        )
        hits = scan(
            [],
            pii.log_texts(lines),
            allow=(re.compile(r"help@example\.com"),),
            ignore_fields=frozenset({"account"}),
            markers=("[REDACTED]", "<<masked>>"),
        )
        assert pii.check_unknown_pii(hits) == []

    def test_key_of_a_raw_line_that_is_not_json(self) -> None:
        lines = log(
            'ts=2025 account=4111111111111111 msg="card 5500-0000-0000-0004"',
            '{"account": "4111111111111111", ',
        )
        assert [h.field for h in scan([], pii.log_texts(lines))] == [
            "account (raw line)",
            "(raw line)",
            "account (raw line)",
        ]
        assert [h.field for h in scan([], pii.log_texts(lines), ignore_fields=frozenset({"account"}))] == [
            "(raw line)"
        ]

    def test_ignored_span_attribute(self) -> None:
        texts = pii.span_texts([span({"enduser.id": "ops@example.com"})])
        assert scan([], texts, ignore_fields=frozenset({"enduser.id"})) == []
        assert [h.field for h in scan([], texts)] == ['attributes["enduser.id"]']

    def test_disabled_detector(self) -> None:
        texts = pii.log_texts(log({"a": "ops@example.com", "b": "123-45-6789"}))
        assert [h.kind for h in scan([], texts, kinds=("ssn",))] == ["ssn"]

    def test_canaries_are_not_unknown_pii(self) -> None:
        found = canaries("email", "card", "jwt", "api_key", "phone")
        hits = scan(found, pii.log_texts(log({"all": " ".join(c.value for c in found)})))
        assert pii.check_unknown_pii(hits) == []
        assert len(pii.check_canary_leaks(hits, "logs")) == 5

    def test_baseline_values_are_leaks_of_sent_values(self) -> None:
        baseline = pii.baseline_values(ENDPOINTS)
        assert [(c.kind, c.value, c.slot) for c in baseline] == [
            ("email", "conformance@example.com", "json $.email")
        ]
        hits = scan(
            baseline, pii.log_texts(log({"email": "conformance@example.com", "note": "conformance harness"}))
        )
        assert pii.check_unknown_pii(hits) == [] and pii.check_partial_leaks(hits) == []
        (finding,) = pii.check_canary_leaks(hits, "logs")
        assert "of login (the profile's baseline traffic)" in finding.message


class TestDetectorPrecision:
    """PII-006: a card number is a string of 13-19 digits, written as cards are, under a
    card network's prefix, passing Luhn; a number that is a measurement is none."""

    def found(self, *records: Any) -> list[tuple[str, str]]:
        return [(h.kind, h.text) for h in scan([], pii.log_texts(log(*records)))]

    def test_a_float_duration_is_not_a_card(self) -> None:
        assert luhn_valid("5332735827087296")  # a valid Mastercard number, as a float's fraction
        assert self.found({"duration_ms": 3.9671230316162109, "latency": 0.5332735827087296}) == []
        assert self.found("took 0.5332735827087296s") == []

    def test_an_epoch_time_is_not_a_card(self) -> None:
        assert (
            self.found({"time": 1733480445123, "ts": "1733480445123456", "ns": "1733480445123456789"}) == []
        )

    def test_a_json_number_is_not_a_card_but_a_string_is(self) -> None:
        assert self.found({"n": 4111111111111111}) == []
        assert self.found({"n": [4111111111111111, 5555555555554444]}) == []
        assert self.found({"n": "4111111111111111"}) == [("card", "4111111111111111")]
        assert self.found({"note": "card 4111 1111 1111 1111"}) == [("card", "4111 1111 1111 1111")]
        assert self.found("card 4111111111111111 ok") == [("card", "4111111111111111")]

    def test_a_card_needs_a_network_prefix_and_a_card_grouping(self) -> None:
        assert luhn_valid("1234567812345670")
        assert (
            self.found({"a": "1234567812345670", "b": "4111 1111-1111 1111", "c": "411111 111111 1111"}) == []
        )
        assert self.found({"amex": "3782 822463 10005"}) == [("card", "3782 822463 10005")]

    def test_numbers_in_span_attributes_are_not_searched_by_the_detectors(self) -> None:
        (card,) = canaries("card")
        spans = [span({"sequence": 4111111111111111, "offsets": [5555555555554444], "pan": "4111111111111111",
                       "account": int(card.value)})]  # fmt: skip
        hits = scan([card], pii.span_texts(spans))
        assert [(h.field, h.shape) for h in hits] == [
            ('attributes["pan"]', "detected"),
            ('attributes["account"]', "exact"),  # a canary is a canary, number or not
        ]

    def test_id_fields_are_not_searched_for_numbers(self) -> None:
        records = (
            {"dd.trace_id": "4111111111111111110", "dd": {"span_id": "4111111111111111"}},
            {
                "trace": {"id": "4111111111111111"},
                "span.id": "5555555555554444",
                "traceId": "4111111111111111",
            },
            'ts=1 request_id=4111111111111111 x_request_id="+12025550147"',
        )
        assert self.found(*records) == []
        assert self.found({"request_id": "ops@example.com"}) == [("email", "ops@example.com")]
        labels = pii.prometheus_texts([{"trace_id": "4111111111111111"}], {})
        assert scan([], labels) == []

    def test_a_phone_is_not_a_piece_of_a_longer_number(self) -> None:
        assert (
            self.found("v1.202.555.0147.3 10.202.555.0147.5 build 2024-202-555-0147 +0000 20255501470") == []
        )
        assert self.found({"phone": "+1 202 555 0147", "us": "(202) 555-0147"}) == [
            ("phone", "+1 202 555 0147"),
            ("phone", "(202) 555-0147"),
        ]

    def test_an_ssn_is_formatted_and_issued(self) -> None:
        assert self.found("123456789 666-12-3456 900-12-3456 1.123-45-6789 123-45-6789.0") == []
        assert self.found("ssn 123-45-6789") == [("ssn", "123-45-6789")]


# --------------------------------------------------------------------------- the form the harness sent


def login_with_query(canary: Canary, value: str | None = None) -> tuple[Canary, str]:
    """``canary`` with the forms its request carried when sent in the query string of a login."""
    endpoint = Endpoint(name="login", path="/auth/login", query={"email": value or canary.value})
    url = request_url(endpoint)
    return with_sent_forms(canary, url), url


class TestSentForms:
    """A canary in the form the harness transmitted it (URL-encoded in a query string or
    a path) is the canary itself: a full leak in its channel, not PII-005."""

    def test_pii_001_query_email_echoed_url_encoded_in_an_access_log(self) -> None:
        (email,) = canaries("email")
        email = replace(email, slot="query email")
        sent, url = login_with_query(email)
        encoded = quote(email.value, safe="")
        assert encoded in url and sent.sent == (("URL-encoded in the query string", encoded),)
        line = f'INFO:     127.0.0.1:52344 - "GET /auth/login?email={encoded} HTTP/1.1" 200 OK'
        hits = scan([sent], pii.log_texts(log(line)))
        assert pii.check_partial_leaks(hits) == []
        (finding,) = pii.check_canary_leaks(hits, "logs")
        assert finding.requirement_id == "PII-001"
        assert finding.message.startswith(
            "logs: the email canary sent in query email of login (request 0) appears in the form the harness "
            "sent it (URL-encoded in the query string) in stdout line 1"
        )
        evidence = finding.evidence
        assert evidence["sent_in"] == "query email of login (request 0)"
        assert evidence["sent_as"] == "URL-encoded in the query string"
        assert evidence["shape"] == "sent:URL-encoded in the query string"
        assert evidence["found"] == mask_pii("email", email.value)
        assert_masked([finding], [email.value, encoded])

    def test_the_same_encoding_of_a_value_sent_as_is_is_pii_005(self) -> None:
        """The harness sent the email in a JSON body: %40 is the service's own encoding."""
        (email,) = canaries("email")
        encoded = quote(email.value, safe="")
        hits = scan([email], pii.log_texts(log({"redirect": f"/welcome?e={encoded}"})))
        assert pii.check_canary_leaks(hits, "logs") == []
        (finding,) = pii.check_partial_leaks(hits)
        assert finding.evidence["shape"] == "encoded:URL-encoded"

    def test_every_channel_names_it_under_its_own_id(self) -> None:
        (email,) = canaries("email")
        sent, _ = login_with_query(replace(email, slot="query email"))
        encoded = quote(email.value, safe="")
        texts = [
            *pii.span_texts([span({"http.target": f"/auth/login?email={encoded}"})]),
            *pii.exposition_texts(
                exposition(f'http_requests_total{{url="/auth/login?email={encoded}"}} 1\n')
            ),
            *pii.prometheus_texts([{"url": f"/auth/login?email={encoded}"}], {}),
        ]
        hits = scan([sent], texts)
        assert [f.requirement_id for ch in pii.CHANNELS for f in pii.check_canary_leaks(hits, ch)] == [
            "PII-002", "PII-003", "PII-004",
        ]  # fmt: skip
        assert pii.check_partial_leaks(hits) == []

    def test_inject_canaries_records_what_went_on_the_wire(self) -> None:
        """End to end with a mock service that logs each request line as an access log does."""
        access_log: list[str] = []

        def service(request: httpx.Request) -> httpx.Response:
            access_log.append(f'"{request.method} {request.url.raw_path.decode()} HTTP/1.1" 200')
            return httpx.Response(200)

        plan = plan_injection(
            ENDPOINTS[1:3],
            InjectionSettings(rounds=1, path_params={"user_id": "text"}),
            CanaryGenerator("wire"),
        )
        client = httpx.Client(transport=httpx.MockTransport(service), base_url="http://127.0.0.1:9")
        registry = inject_canaries(plan, [client])
        in_url = [c for c in registry.canaries if c.slot.startswith(("query ", "path "))]
        hits = scan(list(registry.canaries), pii.log_texts(log(*access_log)))
        assert pii.check_partial_leaks(hits, registry) == []
        leaked = {h.canary for h in hits if h.full}
        # Every canary of the URL is found in the access log: those the URL carries as they
        # are verbatim, the others (an email's @ in a query, a card's spaces) as sent.
        assert {c.id for c in in_url} <= {c.id for c in leaked if c is not None}
        assert {h.shape for h in hits} == {
            "exact",
            "sent:URL-encoded in the query string",
            "sent:URL-encoded in the path, groups of 4 with spaces",
        }

    def test_a_baseline_value_in_the_query_string_is_a_leak_of_a_sent_value(self) -> None:
        endpoint = Endpoint(name="search", path="/search", query={"email": "conformance@example.com"})
        (value,) = pii.baseline_values([endpoint])
        assert value.sent == (("URL-encoded in the query string", "conformance%40example.com"),)
        hits = scan([value], pii.log_texts(log('"GET /search?email=conformance%40example.com HTTP/1.1" 200')))
        (finding,) = pii.check_canary_leaks(hits, "logs")
        assert "(the profile's baseline traffic)" in finding.message
        assert pii.check_unknown_pii(hits) == [] and pii.check_partial_leaks(hits) == []


# --------------------------------------------------------------------------- redaction present (PII-007)


CONTRACT = LogContract()
RULE = RedactedField("login", "login_attempt", "email", ("[REDACTED_EMAIL]",))


def login_exchange(status: int = 200, correlation_id: str | None = "cid-1") -> HttpExchange:
    headers = (("X-Correlation-ID", correlation_id),) if correlation_id else ()
    return HttpExchange(
        "login", "POST", "http://x/auth/login", "/auth/login", (), status, headers,
        sent_traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )  # fmt: skip


def redaction(records: list[dict[str, Any]], exchange: HttpExchange) -> list[Finding]:
    (email,) = canaries("email")
    registry = CanaryRegistry("s", (email,), (exchange,))
    parsed = parse_log_lines(log(*records), CONTRACT)
    return pii.check_redaction_present(
        registry, parsed, [RULE], correlation_header="X-Correlation-ID", expected_statuses={"login": (200,)}
    )


class TestRedactionPresent:
    def test_marker_present(self) -> None:
        records = [{"message": "login_attempt", "correlation_id": "cid-1", "email": "[REDACTED_EMAIL]"}]
        assert redaction(records, login_exchange()) == []

    def test_found_by_trace_id_without_correlation_header(self) -> None:
        records = [
            {
                "message": "login_attempt",
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "email": "[REDACTED_EMAIL]",
            }
        ]
        assert redaction(records, login_exchange(correlation_id=None)) == []

    def test_pii_007_marker_missing_and_value_masked(self) -> None:
        (email,) = canaries("email")
        records = [{"message": "login_attempt", "correlation_id": "cid-1", "email": email.value}]
        (finding,) = redaction(records, login_exchange())
        assert finding.requirement_id == "PII-007"
        assert "login_attempt.email of canary request 0" in finding.message
        assert "lacks [REDACTED_EMAIL]" in finding.message
        assert_masked([finding], [email.value])

    def test_pii_007_event_not_logged(self) -> None:
        (finding,) = redaction(
            [{"message": "request_completed", "correlation_id": "cid-1"}], login_exchange()
        )
        assert "no 'login_attempt' record" in finding.message and "not logged" in finding.message

    def test_pii_007_field_missing(self) -> None:
        (finding,) = redaction([{"message": "login_attempt", "correlation_id": "cid-1"}], login_exchange())
        assert "has no field 'email'" in finding.message

    def test_throttled_requests_cannot_be_judged(self) -> None:
        with pytest.raises(HarnessError, match=r"no canary request to 'login' was handled \(answers: 429\)"):
            redaction([], login_exchange(status=429))


# --------------------------------------------------------------------------- properties


@FAST
@given(st.text(alphabet="0123456789", min_size=1, max_size=18), st.integers(0, 17), st.integers(1, 9))
def test_luhn_check_digit_makes_a_valid_number_and_one_changed_digit_breaks_it(
    payload: str, position: int, delta: int
) -> None:
    number = payload + luhn_check_digit(payload)
    assert luhn_valid(number)
    position %= len(number)
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    assert not luhn_valid(changed)


@FAST
@given(st.text(min_size=1, max_size=12))
def test_generated_canaries_look_real_to_the_detectors(seed: str) -> None:
    """Canaries are realistic: the detectors take them for real PII, except the SSN,
    which is well formed but never issued."""
    for canary in canaries("email", "phone", "card", "jwt", "api_key", seed=seed):
        text = f"value {canary.value} end"
        assert (canary.kind, canary.value) in [(k, text[s:e]) for k, s, e in pii.detect(text)]
    (ssn,) = canaries("ssn", seed=seed)
    assert pii.detect(f"ssn {ssn.value}") == []


_surrounding = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=30
)


@FAST
@given(st.sampled_from(CANARY_KINDS), _surrounding, _surrounding, st.text(max_size=8))
def test_a_canary_is_found_wherever_it_sits_and_never_shown(
    kind: str, before: str, after: str, seed: str
) -> None:
    (canary,) = canaries(kind, seed=seed)
    before = before.rstrip("0123456789")  # a number glued to a number is another number
    after = after.lstrip("0123456789")
    hits = scan([canary], pii.log_texts(log(before + canary.value + after)))
    assert any(h.canary == canary for h in hits)
    findings = (
        pii.check_canary_leaks(hits, "logs") + pii.check_partial_leaks(hits) + pii.check_unknown_pii(hits)
    )
    assert findings
    assert_masked(findings, [canary.value])


@FAST
@given(st.sampled_from(CANARY_KINDS), st.binary(max_size=10), st.binary(max_size=10), st.booleans())
def test_base64_of_a_canary_is_found_at_any_alignment(
    kind: str, before: bytes, after: bytes, urlsafe: bool
) -> None:
    (canary,) = canaries(kind)
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = encode(before + canary.value.encode() + after).decode()
    hits = scan([canary], pii.log_texts(log({"blob": text})))
    assert [h.shape.startswith("encoded:base64") for h in hits] == [True]
    assert_masked(pii.check_partial_leaks(hits), [canary.value, text])


_SNIPPETS = (
    "eyJhbGciOiJIUzI1NiJ9", ".eyJzdWIiOiIxMjM0In0", ".sig_-", "eyJ", "ab@cd.io", "x.y+z@mail.example.com",
    "@", "sk-", "pk-", "proj_ABCDEFGHIJKLMNOP1234", "Bearer ", "basic ", "dXNlcjpwYXNz", "123-45-6789",
    "-45-6789", "+1 ", "+44", "(202) ", "202-", "555-0147", ".0147", " 0147", "4111 1111", " 1111 1111",
    "4111111111111111", "2024", "0", "7", " ", "-", ".", "_", "a", "é", "\t", '"', ":", "(", ")", "/", "=",
    "3782 822463 10005", "5555-5555-5555-4444", "0.", ".5", "1.", "e+", "+12025550147", "+4420794609",
    "1733480445123", '{"n": ', ", ", "}", "[", "\n", "%20", "٣", "3782", "822463", "10005",
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_SNIPPETS), max_size=14).map("".join) | st.text(max_size=60))
def test_fast_detectors_find_what_the_plain_patterns_find(text: str) -> None:
    """The scanner's literal-anchored spellings agree with conformance._mask.PII_PATTERNS."""
    kinds = frozenset(pii.DETECTOR_KINDS)
    passes = pii._passes(kinds)
    assert pii._detect_with(passes, text, kinds) == pii._detect_with(passes, text, kinds, pii._reference_pass)


@FAST
@given(st.text(max_size=300))
def test_detectors_take_any_text(text: str) -> None:
    for kind, start, end in pii.detect(text):
        assert kind in pii.DETECTOR_KINDS and 0 <= start < end <= len(text)
    findings = pii.check_unknown_pii(scan([], pii.log_texts(log(text.replace("\n", " ")))))
    json.dumps([f.to_dict() for f in findings])


@FAST
@given(st.emails())
def test_every_email_address_is_detected_and_masked(email: str) -> None:
    text = f"contact {email} today"
    found = [text[s:e] for k, s, e in pii.detect(text, ["email"])]
    # An internationalised TLD (xn--...) ends the match at its first label: still found and masked.
    assert found and found[0].split("@")[0] == email.rsplit("@", 1)[0]
    assert email not in json.dumps(
        [f.to_dict() for f in pii.check_unknown_pii(scan([], pii.log_texts(log(text))))]
    )


def test_sample_values_are_not_searched_as_pii() -> None:
    """Regression: a latency sum whose digits form a Luhn-valid run was reported as a card number."""
    from conformance.checks.pii import exposition_texts
    from conformance.collect._scrape import Exposition

    text = (
        "# HELP provider_latency_seconds_sum latency\n"
        'provider_latency_seconds_sum{provider="fake"} 0.4111111111111111 1700000000000\n'
        'user_requests_total{email="alice@example.com"} 4\n'
    )
    exposition = Exposition("http://127.0.0.1:1/metrics", 200, "text/plain", text, (), "prometheus-text")
    searched = [item.text for item in exposition_texts(exposition)]
    assert searched[1] == 'provider_latency_seconds_sum{provider="fake"}'
    assert "4111111111111111" not in " ".join(searched)
    assert 'email="alice@example.com"' in searched[2]


def test_a_log_stream_without_request_ids_counts_as_complete_after_a_quiet_period() -> None:
    from conformance.collect._canaries import _QuietStream

    now = [0.0]
    quiet = _QuietStream(0.5, clock=lambda: now[0])
    assert not quiet.settled(3)  # first look
    now[0] = 0.4
    assert not quiet.settled(3)  # not quiet long enough
    now[0] = 0.6
    assert not quiet.settled(4)  # a new line restarts the period
    now[0] = 1.0
    assert not quiet.settled(4) and not quiet.ended_it
    now[0] = 1.1
    assert quiet.settled(4) and quiet.ended_it
