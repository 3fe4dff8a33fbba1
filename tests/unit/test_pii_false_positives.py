"""PII-006 on output nobody here wrote: the detectors report nothing in the ordinary
records of real frameworks (tests/data/pii_false_positive_corpus.yaml), and still
find every value planted into those same records (conformance.checks.pii)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance._mask import luhn_valid
from conformance._sections.pii import DetectorConfig
from conformance.checks import pii
from conformance.collect._canaries import CANARY_KINDS, CanaryGenerator
from conformance.collect._scrape import Exposition
from conformance.telemetry import LogLine, OtlpLogRecord, OtlpMetricPoints, Span, SpanEvent

REPO = Path(__file__).resolve().parents[2]
CORPUS: list[dict[str, Any]] = yaml.safe_load(
    (REPO / "tests/data/pii_false_positive_corpus.yaml").read_text(encoding="utf-8")
)


def channel_texts(entry: dict[str, Any]) -> list[pii.ChannelText]:
    """An entry of the corpus as the suite reads its channel."""
    channel = entry["channel"]
    if channel == "logs":
        return pii.log_texts(LogLine(i, line.encode()) for i, line in enumerate(entry["lines"], 1))
    if channel == "metrics":
        exposition = Exposition("http://127.0.0.1:9/metrics", 200, "text/plain", entry["exposition"], (), "")
        return pii.exposition_texts(exposition)
    if channel == "traces":
        return pii.span_texts(span(i, s) for i, s in enumerate(entry["spans"]))
    if channel == "otlp_metrics":
        return pii.metric_point_texts(
            OtlpMetricPoints(p["name"], p["attributes"], p["resource"]) for p in entry["points"]
        )
    if channel == "log_records":
        return pii.log_record_texts(
            OtlpLogRecord(1, "INFO", r["body"], r["attributes"], r["resource"]) for r in entry["records"]
        )
    assert channel == "prometheus", channel
    series = entry["series"]
    values: dict[str, list[str]] = {}
    for labels in series:
        for name, value in labels.items():
            values.setdefault(name, []).append(value)
    return pii.prometheus_texts(series, values)


def span(index: int, data: dict[str, Any]) -> Span:
    return Span(
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id=f"{index + 1:016x}",
        parent_span_id=None,
        name=data["name"],
        kind=data["kind"],
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes=data["attributes"],
        events=tuple(SpanEvent(e["name"], 1, e["attributes"]) for e in data["events"]),
        resource_attributes=data["resource"],
    )


def test_the_corpus_covers_the_frameworks_and_channels_it_claims() -> None:
    sources = " ".join(entry["source"] for entry in CORPUS)
    frameworks = ("structlog", "pino", "zap", "ecszap", "slog", "logback", "uvicorn", "gunicorn")
    frameworks += ("Google Cloud", "opentelemetry", "prometheus_client", "client_golang", "series API")
    for framework in frameworks:
        assert framework in sources
    assert {entry["channel"] for entry in CORPUS} == set(pii.CHANNELS)


def test_the_corpus_is_full_of_numbers_that_pass_luhn() -> None:
    """What made the detector before issue 17 report 76-118 card numbers per run: digit runs
    of card length under a card-network first digit that pass Luhn (float fractions,
    JSON numbers, decimal ids). The corpus holds plenty, or it proves nothing."""
    text = "\n".join(item.text for entry in CORPUS for item in channel_texts(entry))
    text += json.dumps([entry.get("spans") for entry in CORPUS])  # numbers of span attributes
    looked_like_cards = {
        m.group()
        for m in re.finditer(r"(?<![\w-])[0-9]{13,19}(?![\w-])", text)
        if m.group()[0] in "23456" and luhn_valid(m.group())
    }
    assert len(looked_like_cards) >= 30


@pytest.mark.parametrize("entry", CORPUS, ids=[f"{e['channel']}: {e['source'][:40]}" for e in CORPUS])
def test_pii_006_reports_nothing_on_ordinary_output(entry: dict[str, Any]) -> None:
    hits = pii.PiiScanner([], DetectorConfig()).scan(channel_texts(entry))
    findings = pii.check_unknown_pii(hits)
    assert findings == [], "\n".join(f.message for f in findings)


#: Real-looking PII nobody sent, planted into each corpus record: every one is found.
PLANTED = {
    "email": "jane.doe@corp.example.io",
    "card": "4111 1111 1111 1111",
    "phone": "+44 20 7946 0958",
    "ssn": "123-45-6789",
}


def plant(line: str, value: str) -> str:
    """``line`` with ``value`` in a new string field (JSON) or a ``note=`` at its end."""
    stripped = line.rstrip()
    if stripped.startswith("{") and stripped.endswith("}"):
        return stripped[:-1] + f', "note": "see {value} please"}}'
    return f"{line} note=[{value}]"


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_pii_planted_into_the_corpus_is_found_once_each(kind: str) -> None:
    lines = [line for entry in CORPUS if entry["channel"] == "logs" for line in entry["lines"]]
    planted = [plant(line, PLANTED[kind]) for line in lines]
    hits = pii.PiiScanner([], DetectorConfig()).scan(
        pii.log_texts(LogLine(i, line.encode()) for i, line in enumerate(planted, 1))
    )
    assert [(h.kind, h.text) for h in hits] == [(kind, PLANTED[kind])] * len(lines)


@pytest.mark.parametrize("kind", CANARY_KINDS)
def test_canaries_planted_into_the_corpus_are_found_in_every_record(kind: str) -> None:
    """Recall stays whole among ordinary records: each line gets its own canary."""
    generator = CanaryGenerator("corpus")
    lines = [line for entry in CORPUS if entry["channel"] == "logs" for line in entry["lines"]]
    sent = [generator.new(kind, endpoint="login", slot=f"json $.{kind}", request=0) for _ in lines]
    planted = [plant(line, canary.value) for line, canary in zip(lines, sent, strict=True)]
    hits = pii.PiiScanner(sent, DetectorConfig()).scan(
        pii.log_texts(LogLine(i, line.encode()) for i, line in enumerate(planted, 1))
    )
    assert [(h.canary, h.shape) for h in hits] == [(canary, "exact") for canary in sent]
    assert pii.check_unknown_pii(hits) == []
