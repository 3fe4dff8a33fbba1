"""PII-*: no PII in logs, traces or metrics, proven with canaries.

Pure: the canary registry (which unique synthetic value went into which input,
``conformance.collect._canaries``) and the contents of every output channel
in, findings out.

One scan (:class:`PiiScanner`) searches every channel text for

* every **form of every canary**: the value, the same value written another
  way (a card in groups, a phone in national format), the form the harness
  itself transmitted (URL-encoded in a query string or a path), and its
  fragments and encodings (an email's local part, a card's last 8 digits, a
  JWT's payload or signature segment, an API key without its prefix,
  URL-encoded and base64 forms at any alignment). The texts are compiled into
  tries, one regex per first character (so the regex engine can jump from one
  candidate to the next), and the leftmost-longest match wins, so a full leak
  is never also reported as its own fragment;
* **PII the harness did not send** (detectors): emails, phones (E.164 and
  North American formats), card numbers, SSNs in issued ranges, JWTs whose
  header decodes, Bearer/Basic credentials and API keys. The patterns are
  ``_mask.PII_PATTERNS``, run in spellings anchored on a literal (``@``,
  ``eyJ``, ``-dd-dddd``, a digit shape found by ``str.find``) that a property
  test holds to the same findings. Numbers are reported only where a value can
  be one: a card number is a string (never a JSON number, a span attribute
  that is an int, the fraction or integer part of a float, a piece of a
  longer digit, hex or word run), 13-19 digits in one piece or grouped as
  cards are (fours, 4-6-5, 4-6-4) with one separator, under a card network's
  prefix and length, passing Luhn; a phone or an SSN is not a piece of a
  longer dotted or dashed number; id fields (trace, span and request ids in
  the formats of common frameworks) are not searched for numbers. Text a
  canary form covers and the redaction markers are blanked first; a detected
  value that normalises to a canary (an email upper-cased, a card with other
  separators) is that canary's leak in another shape.

Hits become findings by what was found, not by the channel's shape: a whole
canary (verbatim, written differently, or in the form the harness sent it)
under its channel's id (PII-001 logs: lines and OTLP log records, PII-002
spans, PII-003 ``/metrics`` and OTLP metric points, PII-004 Prometheus),
fragments and encodings the service made under PII-005,
detector hits under PII-006. PII-007 checks the other side: where the profile
says a field is logged redacted, the event is logged and the field carries
the marker.

With the team's own collector pipeline in the run (profile key
``telemetry.collector_config``), what left that pipeline is searched the same
way (:class:`AfterPipeline`) and each finding of a channel the pipeline
carries says which view it is in: at the service and still after the
pipeline (a plain finding); at the service but not after the pipeline ("the
service leaks, the collector removes it": a finding of its own, the
requirement still fails: the service emits it, and any other path its
telemetry takes keeps it); after the pipeline only (a processor added it:
the finding blames the pipeline).

Evidence never carries what was found: the channel, the location, the field
path and a masked form (``j***@e***.net``, ``40***97``), and an excerpt in
which every hit is replaced by its masked form before ``_mask.excerpt``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import string
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from itertools import accumulate
from typing import Any

from conformance._exceptions import HarnessError
from conformance._mask import PII_PATTERNS, excerpt, luhn_valid, mask_pii, mask_value
from conformance._model import Finding, Level
from conformance._profile import Endpoint
from conformance._requirements import requirement
from conformance._sections.pii import DETECTOR_KINDS, DetectorConfig, RedactedField
from conformance.checks.logs import ParsedLogLine, get_field
from conformance.collect._canaries import (
    Canary,
    CanaryForm,
    CanaryRegistry,
    full_shape,
    normalise,
    request_url,
    with_sent_forms,
)
from conformance.collect._scrape import Exposition
from conformance.telemetry import HttpExchange, LogLine, OtlpLogRecord, OtlpMetricPoints, Span

__all__ = [
    "CHANNELS",
    "PII_001",
    "PII_002",
    "PII_003",
    "PII_004",
    "PII_005",
    "PII_006",
    "PII_007",
    "VIEW_ADDED",
    "VIEW_BOTH",
    "VIEW_REMOVED",
    "VIEW_SERVICE",
    "AfterPipeline",
    "ChannelText",
    "Hit",
    "PiiScanner",
    "baseline_values",
    "check_canary_leaks",
    "check_partial_leaks",
    "check_redaction_present",
    "check_unknown_pii",
    "detect",
    "exposition_lines",
    "exposition_texts",
    "handled_requests",
    "log_record_texts",
    "log_texts",
    "metric_point_texts",
    "prometheus_texts",
    "service_series",
    "span_texts",
]

_SEED = "seed 002 §Logging 'PII Sanitization'"
PII_001 = requirement(
    "PII-001", Level.MUST, "No canary sent in any input appears in the service's log lines (raw text)",
    source=f"{_SEED} (emails, phones, cards, SSNs, JWTs, Authorization/Cookie headers, API keys "
    "never reach logs); §Production Deployment Checklist 'verify no emails/passwords in logs'",
)  # fmt: skip
PII_002 = requirement(
    "PII-002", Level.MUST,
    "No canary appears in the service's spans: names, attributes, events or resource attributes",
    source="seed 002 §Production Deployment Checklist 'PII redaction tested (verify no emails/passwords "
    "in logs/traces)'",
)  # fmt: skip
PII_003 = requirement(
    "PII-003", Level.MUST, "No canary appears in the /metrics exposition (label values, names, help)",
    source="seed 002 §Cardinality Protection: 'email - PII + high cardinality' is never a metric label",
)  # fmt: skip
PII_004 = requirement(
    "PII-004", Level.MUST, "No canary appears in the real Prometheus's series or label values API",
    source="seed 002 §Cardinality Protection ('NEVER used as metric labels'); Prometheus HTTP API "
    "/api/v1/series, /api/v1/label/<name>/values",
)  # fmt: skip
PII_005 = requirement(
    "PII-005", Level.MUST,
    "No partial or encoded canary (an email's local part, a card's last 8 digits, a JWT segment, a key "
    "without its prefix, URL-encoded or base64 forms) appears in any channel",
    source=f"{_SEED}: the value is replaced by its marker, not shortened or encoded",
)  # fmt: skip
PII_006 = requirement(
    "PII-006", Level.MUST,
    "No real-looking PII or credential the harness did not send appears in any channel (validated "
    "detectors; redaction markers and the profile's allowlist excepted)",
    source=f"{_SEED}; §PII Redaction Configuration (PII_PATTERNS)",
)  # fmt: skip
PII_007 = requirement(
    "PII-007", Level.MUST,
    "Fields the profile declares redacted are logged for each canary request, with the redaction marker",
    source=f"{_SEED}: '→ [REDACTED_EMAIL]', '[REDACTED_PHONE]', '[REDACTED_CC]', '[REDACTED_SSN]', "
    "'[REDACTED_JWT]', '[REDACTED]'",
)  # fmt: skip

#: Output channels, in report order, and how messages name them.
CHANNELS: Mapping[str, str] = {
    "logs": "logs",
    "traces": "traces (spans)",
    "log_records": "logs (OTLP log records)",
    "metrics": "metrics (/metrics exposition)",
    "otlp_metrics": "metrics (OTLP metric points)",
    "prometheus": "Prometheus (series, label values API)",
}
_CANARY_REQUIREMENTS = {
    "logs": PII_001,
    "log_records": PII_001,
    "traces": PII_002,
    "metrics": PII_003,
    "otlp_metrics": PII_003,
    "prometheus": PII_004,
}

#: Channel text is scanned in blobs of about this many characters (texts joined by newlines).
_BLOB_CHARS = 4 * 1024 * 1024
#: Characters of context on each side of a hit in its excerpt.
_CONTEXT = 40


@dataclass(frozen=True, slots=True)
class ChannelText:
    """One piece of output to search, and where it was.

    ``field`` is the path shown in evidence (``$.email``, ``attributes["http.url"]``,
    ``labels.endpoint``); empty for a raw log or exposition line, where it is
    worked out for each hit. ``key`` is the bare field name the detectors'
    ``ignore_fields`` are matched against. ``location`` never contains
    service output that could itself be PII (no span names or label values).
    ``number`` marks a value that is not a string (a span attribute holding an
    int or a float): canaries are searched in it, the detectors never (a
    number is a measurement or an id, not a card number someone typed).
    """

    channel: str
    location: str
    text: str
    field: str = ""
    key: str = ""
    number: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    """Something found in a channel. ``text`` is the raw match: it stays in memory and
    never reaches a finding; ``masked`` and ``excerpt`` are what reports show."""

    channel: str
    location: str
    field: str
    kind: str
    shape: str  # a CanaryForm shape, or "detected"
    text: str = dataclass_field(repr=False)
    canary: Canary | None = None
    excerpt: str = ""

    @property
    def masked(self) -> str:
        if self.canary is not None and self.shape.startswith("sent:"):
            # The URL-encoded form, shown as the value it encodes (j***@e***.net, not jo***et).
            return mask_pii(self.kind, self.canary.value)
        return mask_pii(self.kind, self.text)

    @property
    def full(self) -> bool:
        return self.canary is not None and full_shape(self.shape)


# --------------------------------------------------------------------------- channel texts


def log_texts(lines: Iterable[LogLine]) -> list[ChannelText]:
    """Each captured line as raw text (decoded leniently): leaks hide outside parsed fields too."""
    return [ChannelText("logs", line.place, line.text()) for line in lines]


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Mapping | list | tuple):
        # JSON, so the numbers in it stay JSON numbers to the detectors.
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def span_texts(spans: Iterable[Span]) -> list[ChannelText]:
    """Span names, attributes, event names and attributes, and each distinct resource once."""
    out: list[ChannelText] = []
    resources: set[_Resource] = set()
    for span in spans:
        where = f"{span.kind} span {span.span_id} in trace {span.trace_id}"
        out.append(ChannelText("traces", where, span.name, "name", "name"))
        if span.status_message:
            out.append(ChannelText("traces", where, span.status_message, "status.message", "status.message"))
        out += _attribute_texts("traces", where, span.attributes)
        for i, event in enumerate(span.events):
            out.append(ChannelText("traces", where, event.name, f"events[{i}].name", "name"))
            for key, value in event.attributes.items():
                field = f'events[{i}].attributes["{key}"]'
                out.append(ChannelText("traces", where, _text_of(value), field, key, _is_number(value)))
        out += _resource_texts("traces", where, span.resource_attributes, resources)
    return out


_Resource = tuple[tuple[str, str, bool], ...]


def _attribute_texts(channel: str, where: str, attributes: Mapping[str, Any]) -> list[ChannelText]:
    return [
        ChannelText(channel, where, _text_of(value), f'attributes["{key}"]', key, _is_number(value))
        for key, value in attributes.items()
    ]


def _resource_texts(
    channel: str, where: str, attributes: Mapping[str, Any], seen: set[_Resource]
) -> list[ChannelText]:
    """A resource's attributes, the first time this resource is seen (a resource repeats on
    every span, record or point of one process)."""
    resource = tuple(sorted((str(k), _text_of(v), _is_number(v)) for k, v in attributes.items()))
    if resource in seen:
        return []
    seen.add(resource)
    return [
        ChannelText(channel, f"resource of {where}", text, f'resource["{key}"]', key, number)
        for key, text, number in resource
    ]


def log_record_texts(records: Iterable[OtlpLogRecord]) -> list[ChannelText]:
    """OTLP log records: body, attributes, and each distinct resource once."""
    out: list[ChannelText] = []
    resources: set[_Resource] = set()
    for number, record in enumerate(records, 1):
        where = f"OTLP log record {number}" + (f" in trace {record.trace_id}" if record.trace_id else "")
        if record.body not in (None, ""):
            out.append(
                ChannelText(
                    "log_records", where, _text_of(record.body), "body", "body", _is_number(record.body)
                )
            )
        out += _attribute_texts("log_records", where, record.attributes)
        out += _resource_texts("log_records", where, record.resource_attributes, resources)
    return out


def metric_point_texts(points: Iterable[OtlpMetricPoints]) -> list[ChannelText]:
    """OTLP metric points: each metric name once, each distinct attribute set, each resource once."""
    out: list[ChannelText] = []
    names: set[str] = set()
    resources: set[_Resource] = set()
    for point in points:
        where = f"OTLP metric points of {point.name}"
        if point.name not in names:
            names.add(point.name)
            out.append(ChannelText("otlp_metrics", where, point.name, "name", "name"))
        out += _attribute_texts("otlp_metrics", where, point.attributes)
        out += _resource_texts("otlp_metrics", where, point.resource_attributes, resources)
    return out


def exposition_texts(exposition: Exposition) -> list[ChannelText]:
    """Every line of the exposition as served (samples, HELP, TYPE), so an
    unparsable exposition is searched too; the field is worked out per hit."""
    return [
        ChannelText("metrics", f"{exposition.url} line {number}", _without_sample_numbers(line))
        for number, line in enumerate(exposition.text.splitlines(), 1)
        if line.strip()
    ]


def _without_sample_numbers(line: str) -> str:
    """A sample line without its value and timestamp (and an exemplar's): numbers
    such as ``provider_latency_seconds_sum 0.26418873543`` are measurements, and
    their digit runs would otherwise pass for card numbers. Names, label values,
    HELP text and exemplar labels are kept."""
    if line.startswith("#"):
        return line
    close = line.rfind("}")
    head_end = close + 1 if close >= 0 and "{" in line[: close + 1] else len(line.split(None, 1)[0])
    head, tail = line[:head_end], line[head_end:]
    kept = []
    for token in tail.split():
        try:
            float(token)
        except ValueError:
            kept.append(token)
    return " ".join([head, *kept])


_EXPOSITION_LINE = re.compile(r"# (?:HELP|TYPE|UNIT) |[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?[ \t]+\S")


def exposition_lines(exposition: Exposition) -> int:
    """Lines of the exposition that are samples or HELP/TYPE/UNIT comments: what PII-003
    examines (none when /metrics did not answer 200, or answered something else)."""
    if exposition.status_code != 200:
        return 0
    return sum(1 for line in exposition.text.splitlines() if _EXPOSITION_LINE.match(line))


#: Series Prometheus makes itself for every target, and for alerts: they exist whatever the
#: service exposes, so they are no evidence that its own label values were searched.
_PROMETHEUS_SERIES = frozenset(
    {
        "up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
        "scrape_series_added", "scrape_timeout_seconds", "scrape_sample_limit", "scrape_body_size_bytes",
        "ALERTS", "ALERTS_FOR_STATE",
    }
)  # fmt: skip


def service_series(series: Iterable[Mapping[str, str]], sampled_names: Set[str] | None = None) -> int:
    """How many of the job's series the service exposed and Prometheus stored: not
    Prometheus's per-target and alert series, nor recording rules' outputs
    (``level:metric:operations``), nor (when ``sampled_names`` is known: the metrics
    with samples since the canary requests) series no scrape after the canaries
    brought, which the series API lists all the same."""
    count = 0
    for labels in series:
        name = labels.get("__name__", "")
        if name in _PROMETHEUS_SERIES or ":" in name:
            continue
        if sampled_names is None or name in sampled_names:
            count += 1
    return count


def prometheus_texts(
    series: Iterable[Mapping[str, str]], label_values: Mapping[str, Sequence[str]]
) -> list[ChannelText]:
    """Label values from the series API, then those only the label values API returned."""
    out: list[ChannelText] = []
    seen: set[tuple[str, str]] = set()
    for labels in series:
        for name, value in labels.items():
            if (name, value) not in seen:
                seen.add((name, value))
                out.append(
                    ChannelText("prometheus", "series API /api/v1/series", value, f"labels.{name}", name)
                )
    for name, values in label_values.items():
        for value in values:
            if (name, value) not in seen:
                seen.add((name, value))
                out.append(
                    ChannelText(
                        "prometheus", f"label values API /api/v1/label/{name}/values", value, name, name
                    )
                )
    return out


# --------------------------------------------------------------------------- detectors


#: Where validated shapes overlap the earlier one here wins: an SSN or a
#: formatted phone is also a run of digits.
_PRIORITY = ("email", "jwt", "bearer", "api_key", "ssn", "us_phone", "digits")

_NOT_EMAIL_LOCAL = frozenset('@"<>(),;:[]\\')

# The detectors' fast spellings of PII_PATTERNS, each anchored on a literal (or a
# rare first character) so the regex engine skips ahead instead of trying every
# position; ``start_shift`` says where the value starts relative to the match.
# tests/unit/test_checks_pii.py proves they find exactly what PII_PATTERNS finds.
_FAST_PATTERNS: Mapping[str, tuple[re.Pattern[str], int]] = {
    # From the "@": the local part is extended backwards (see _detect_pass).
    "email": (re.compile(r"@[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}\b"), 0),
    "jwt": (re.compile(r"eyJ(?<!\weyJ)[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), 0),
    "api_key": (re.compile(r"k-(?<=(?<!\w)[spr]k-)[A-Za-z0-9_-]{8,}"), -1),
    "ssn": (
        re.compile(
            r"-[0-9][0-9]-[0-9]{4}(?![\w-])(?!\.[0-9])"
            r"(?<=(?<![\w-])(?<![0-9]\.)[0-9]{3}-[0-9]{2}-[0-9]{4})"
        ),
        -3,
    ),
}
# Every North American number ends in a separator and four digits: those are found by
# literal, then the whole number in the few characters before them.
_US_PHONE_ANCHORS = tuple(re.compile(sep + r"[0-9]{4}(?![\w-])") for sep in (" ", r"\.", "-"))
#: The longest North American number PII_PATTERNS["us_phone"] matches: +1 (202) 555-0147.
_US_PHONE_MAX = 18
#: The text with every ASCII digit written as 0, so that digit shapes are found by literal.
_DIGIT_SHAPE = str.maketrans(dict.fromkeys("0123456789", "0"))
#: A run of digits the validator can turn into a finding holds one of these (in the
#: digit shape): an E.164 number's "+", a grouped card's first two groups, 13 digits.
_DIGIT_ANCHORS = ("+0", "0000 0000", "0000-0000", "0" * 13)
_DIGIT_RUN = frozenset("0 +-")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _passes(kinds: Iterable[str]) -> tuple[str, ...]:
    wanted = set(kinds)
    names: list[str] = [name for name in ("email", "jwt", "bearer", "api_key", "ssn") if name in wanted]
    if "phone" in wanted:
        names.append("us_phone")
    if wanted & {"phone", "card"}:
        names.append("digits")
    return tuple(names)


def _detect_pass(name: str, text: str) -> Iterable[tuple[int, int]]:
    """(start, end) of each match of the detector ``name`` in ``text``, as PII_PATTERNS[name] finds them
    (for ``digits``: every match the validator can turn into a finding)."""
    if name == "us_phone":
        for anchor in _US_PHONE_ANCHORS:
            for m in anchor.finditer(text):
                window = max(0, m.end() - _US_PHONE_MAX)
                for phone in PII_PATTERNS["us_phone"].finditer(text, window, min(len(text), m.end() + 2)):
                    if phone.end() == m.end():
                        yield phone.start(), phone.end()
                        break
        return
    if name == "digits":
        yield from _digit_runs(text)
        return
    if name == "bearer":
        # The schemes are found by literal in the text lowercased (ASCII only: offsets stay).
        lowered = text.translate(_ASCII_LOWER)
        last_end = 0
        for at in sorted(_find_all(lowered, "bearer") + _find_all(lowered, "basic")):
            credential = PII_PATTERNS["bearer"].match(text, at) if at >= last_end else None
            if credential:
                last_end = credential.end()
                yield credential.start(), credential.end()
        return
    pattern, shift = _FAST_PATTERNS[name]
    last_end = 0
    for m in pattern.finditer(text):
        start = m.start() + shift
        if name == "email":
            while start > 0 and not text[start - 1].isspace() and text[start - 1] not in _NOT_EMAIL_LOCAL:
                start -= 1
            # No local part, or one that starts inside the previous address (as a plain
            # finditer, which resumes after that address, would never see it).
            if start == m.start() or start < last_end:
                continue
        last_end = m.end()
        yield start, m.end()


def _digit_runs(text: str) -> Iterable[tuple[int, int]]:
    """The matches of PII_PATTERNS["digits"] in the stretches of digits, spaces, dashes and
    pluses that hold an anchor (found by literal in the digit shape of ``text``).

    A regex over every digit of a log full of hex ids and timestamps is the slowest
    part of a scan; the anchors are rare, and a match without one is never valid.
    """
    shape = text.translate(_DIGIT_SHAPE)
    anchors = [at for anchor in _DIGIT_ANCHORS for at in _find_all(shape, anchor)]
    pattern = PII_PATTERNS["digits"]
    size = len(shape)
    done = 0
    for at in sorted(anchors):
        if at < done:
            continue
        start = at
        while start > done and shape[start - 1] in _DIGIT_RUN:
            start -= 1
        end = at
        while end < size and shape[end] in _DIGIT_RUN:
            end += 1
        # A match never crosses the stretch's edges (it is made of those characters only);
        # two characters beyond the end are visible to its look-ahead.
        for m in pattern.finditer(text, start, min(size, end + 2)):
            yield m.start(), m.end()
        done = end


def _find_all(text: str, literal: str) -> list[int]:
    """Where ``literal`` starts in ``text``, occurrences not overlapping."""
    found = []
    at = text.find(literal)
    while at >= 0:
        found.append(at)
        at = text.find(literal, at + len(literal))
    return found


_Pass = Callable[[str, str], Iterable[tuple[int, int]]]


def _reference_pass(name: str, text: str) -> Iterable[tuple[int, int]]:
    """The same pass with the plain PII_PATTERNS (slower; the fast spellings are tested against it)."""
    return ((m.start(), m.end()) for m in PII_PATTERNS[name].finditer(text))


def _b64_json_object(segment: str) -> Any:
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(data)
    except (binascii.Error, ValueError):
        return None


# Issuer identification numbers (the leading digits) of the card networks and the lengths
# their numbers have; a run of digits under no network's prefix, or of another length,
# is not a card number (epoch times start with 1, which no network issues: UATP's
# airline cards are left out on purpose).
_CARD_NETWORKS: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
    ("Visa", "4", "4", (13, 16, 19)),
    ("Mastercard", "51", "55", (16,)),
    ("Mastercard", "2221", "2720", (16,)),
    ("American Express", "34", "34", (15,)),
    ("American Express", "37", "37", (15,)),
    ("Discover", "6011", "6011", (16, 17, 18, 19)),
    ("Discover", "644", "649", (16, 17, 18, 19)),
    ("Discover", "65", "65", (16, 17, 18, 19)),
    ("Diners Club", "300", "305", (14, 16, 17, 18, 19)),
    ("Diners Club", "36", "36", (14, 15, 16, 17, 18, 19)),
    ("Diners Club", "38", "39", (16, 17, 18, 19)),
    ("JCB", "3528", "3589", (16, 17, 18, 19)),
    ("UnionPay", "62", "62", (16, 17, 18, 19)),
    ("UnionPay", "81", "81", (16, 17, 18, 19)),
    ("Maestro", "5018", "5018", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "5020", "5020", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "5038", "5038", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "5893", "5893", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "6304", "6304", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "6759", "6759", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "6761", "6763", (13, 14, 15, 16, 17, 18, 19)),
    ("Dankort", "5019", "5019", (16,)),
    ("Mir", "2200", "2204", (16, 17, 18, 19)),
    ("RuPay", "60", "60", (16,)),
    ("RuPay", "508", "508", (16,)),
    ("RuPay", "82", "82", (16,)),
    ("Verve", "506099", "506198", (16, 18, 19)),
    ("Verve", "507865", "507964", (16, 18, 19)),
    ("Verve", "650002", "650027", (16, 18, 19)),
    ("InterPayment", "636", "636", (16, 17, 18, 19)),
    ("InstaPayment", "637", "639", (16,)),
    ("Troy", "9792", "9792", (16,)),
)


def _issuer_lengths() -> dict[str, frozenset[int]]:
    table: dict[str, set[int]] = {}
    for _, first, last, lengths in _CARD_NETWORKS:
        for prefix in range(int(first), int(last) + 1):
            table.setdefault(str(prefix).zfill(len(first)), set()).update(lengths)
    return {prefix: frozenset(lengths) for prefix, lengths in table.items()}


_ISSUER_LENGTHS = _issuer_lengths()
_ISSUER_PREFIX_MAX = max(len(prefix) for prefix in _ISSUER_LENGTHS)


def _issued_card_number(digits: str) -> bool:
    """Whether ``digits`` starts with a card network's prefix and has one of its lengths."""
    return any(
        len(digits) in _ISSUER_LENGTHS.get(digits[:size], ()) for size in range(1, _ISSUER_PREFIX_MAX + 1)
    )


def _valid_card(digits: str) -> bool:
    return (
        13 <= len(digits) <= 19
        and _issued_card_number(digits)
        and len(set(digits)) > 1
        and luhn_valid(digits)
    )


def _card_grouping(sizes: Sequence[int]) -> bool:
    """Whether digit groups of these sizes are how card numbers are written: in one
    piece, in fours (the last group shorter: 4-4-4-3 for 15 digits, 4-4-4-4-3 for 19),
    or American Express's 4-6-5 and Diners Club's 4-6-4."""
    if len(sizes) == 1:
        return 13 <= sizes[0] <= 19
    if tuple(sizes) in ((4, 6, 5), (4, 6, 4)):
        return True
    return len(sizes) >= 4 and all(size == 4 for size in sizes[:-1]) and 1 <= sizes[-1] <= 4


def _valid_ssn(text: str) -> bool:
    area, group, serial = text.split("-")
    return area not in ("000", "666") and area < "900" and group != "00" and serial != "0000"


def _valid_nanp(text: str) -> bool:
    digits = "".join(c for c in text if c.isdigit())
    national = digits[1:] if len(digits) == 11 else digits
    return len(national) == 10 and national[0] in "23456789" and national[3] in "23456789"


def _valid_e164(digits: str) -> bool:
    """Digits after the ``+``: no country code starts with 0, and a North American
    number (+1) has ten more digits with a valid area code and exchange."""
    if digits[0] == "0":
        return False
    return digits[0] != "1" or (len(digits) == 11 and _valid_nanp(digits))


def _valid_token(token: str) -> bool:
    """An opaque credential rather than a word: long, or mixing letters and digits."""
    has_digit = any(c.isdigit() for c in token)
    has_alpha = any(c.isalpha() for c in token)
    return len(token) >= 20 or (len(token) >= 8 and has_digit and has_alpha)


def _valid_bearer(text: str) -> bool:
    scheme, token = text.split(None, 1)
    if scheme.lower() == "basic":
        decoded = _b64_bytes(token)
        return decoded is not None and b":" in decoded
    return _valid_token(token)


def _b64_bytes(text: str) -> bytes | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


_DIGIT_GROUP = re.compile(r"[0-9]+")
_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*+"')
_JSON_DOCUMENT = re.compile(r"\s*[\[{]")


class _JsonStrings:
    """Where the string literals of each line of a text are, worked out once per line
    and only for lines that hold a candidate number."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lines: dict[int, tuple[list[int], list[int]]] = {}

    def inside(self, line_start: int, at: int) -> bool:
        """Whether offset ``at`` of the line starting at ``line_start`` is inside a string literal."""
        spans = self._lines.get(line_start)
        if spans is None:
            line_end = self._text.find("\n", line_start)
            line_end = len(self._text) if line_end < 0 else line_end
            literals = list(_JSON_STRING.finditer(self._text, line_start, line_end))
            spans = self._lines[line_start] = ([m.start() for m in literals], [m.end() for m in literals])
        starts, ends = spans
        index = bisect_right(starts, at) - 1
        return index >= 0 and at < ends[index]


def _json_number(text: str, start: int, end: int, strings: _JsonStrings) -> bool:
    """Whether the digits ``text[start:end]`` are a JSON number (``"n": 4111111111111111``
    or an element of a number array), not text: a value after a quoted key's colon, or
    after ``[`` or ``,`` in a line that is a JSON document, followed by ``,``, ``}``,
    ``]`` or the line's end, outside every string literal."""
    after = end
    while after < len(text) and text[after] in " \t":
        after += 1
    if after < len(text) and text[after] not in ",}]\n":
        return False
    before = start - 1
    while before >= 0 and text[before] in " \t":
        before -= 1
    line_start = text.rfind("\n", 0, start) + 1
    if before < line_start:
        return False
    if text[before] == ":":
        key_end = before - 1
        while key_end >= line_start and text[key_end] in " \t":
            key_end -= 1
        if key_end < line_start or text[key_end] != '"':
            return False
    elif text[before] not in "[," or not _JSON_DOCUMENT.match(text, line_start):
        return False
    return not strings.inside(line_start, start)


def _digit_run(
    text: str, start: int, end: int, kinds: frozenset[str], strings: _JsonStrings
) -> list[tuple[str, int, int]]:
    """Split a run of digit groups into an E.164 phone (from a leading ``+``) and card numbers.

    Every window of whole groups is tried for a card, so a card next to other
    numbers is still found (as the reference service's redaction does); a window
    is a card when its groups are written as cards are (one piece, fours, 4-6-5 or
    4-6-4) with one separator throughout, it is not part of a dash-joined token
    (an id, a date), not a JSON number, and its digits are a valid number under a
    card network's prefix.
    """
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP.finditer(text, start, end)]
    found: list[tuple[str, int, int]] = []
    first = 0
    if text[start] == "+":
        count = 0
        last = 0
        for i, (group_start, group_end) in enumerate(groups):
            size = group_end - group_start
            if i > 0 and (size > 4 or count + size > 15):
                break
            count += size
            last = i
            if i == 0 and count >= 8:
                break
        digits = "".join(text[s:e] for s, e in groups[: last + 1])
        if "phone" in kinds and 8 <= count <= 15 and _valid_e164(digits):
            found.append(("phone", start, groups[last][1]))
        # Digits behind a "+" are a phone number or a signed number, never a card.
        first = last + 1
    if "card" not in kinds:
        return found
    sizes = [e - s for s, e in groups]
    separators = [text[groups[k][1]] for k in range(len(groups) - 1)]
    i = first
    while i < len(groups):
        best = None
        if i == 0 or separators[i - 1] != "-":
            total = 0
            for j in range(i, len(groups)):
                if j > i and separators[j - 1] != separators[i]:
                    break
                total += sizes[j]
                if total > 19:
                    break
                if total < 13 or (j < len(groups) - 1 and separators[j] == "-"):
                    continue
                if not _card_grouping(sizes[i : j + 1]):
                    continue
                if not _valid_card("".join(text[s:e] for s, e in groups[i : j + 1])):
                    continue
                if i == j and _json_number(text, groups[i][0], groups[i][1], strings):
                    continue
                best = j
        if best is None:
            i += 1
            continue
        found.append(("card", groups[i][0], groups[best][1]))
        i = best + 1
    return found


def detect(text: str, kinds: Iterable[str] = DETECTOR_KINDS) -> list[tuple[str, int, int]]:
    """``(kind, start, end)`` of every validated PII shape in ``text`` (nothing blanked or allowed)."""
    kinds = frozenset(kinds)
    return _detect_with(_passes(kinds), text, kinds)


def _detect_with(
    passes: Sequence[str], text: str, kinds: frozenset[str], find: _Pass = _detect_pass
) -> list[tuple[str, int, int]]:
    """Every pass's validated findings, leftmost first; of overlapping ones the earlier
    pass in _PRIORITY wins (an SSN is also a run of digits)."""
    strings = _JsonStrings(text)
    found: list[tuple[int, int, int, str]] = []
    for name in passes:
        priority = _PRIORITY.index(name)
        for start, end in find(name, text):
            for kind, found_start, found_end in _validated(name, text, start, end, kinds, strings):
                found.append((found_start, priority, found_end, kind))
    found.sort()
    kept: list[tuple[str, int, int]] = []
    last_end = -1
    for start, _, end, kind in found:
        if start >= last_end:
            kept.append((kind, start, end))
            last_end = end
    return kept


def _validated(
    name: str, text: str, start: int, end: int, kinds: frozenset[str], strings: _JsonStrings
) -> list[tuple[str, int, int]]:
    """What the match ``text[start:end]`` of the pass ``name`` is, once validated."""
    value = text[start:end]
    if "\n" in value:
        return []
    if name == "digits":
        return _digit_run(text, start, end, kinds, strings)
    valid = False
    kind = name
    if name == "us_phone":
        kind, valid = "phone", _valid_nanp(value)
    elif name == "ssn":
        valid = _valid_ssn(value)
    elif name == "jwt":
        header = _b64_json_object(value.split(".", 1)[0])
        valid = isinstance(header, dict) and "alg" in header
    elif name == "bearer":
        valid = _valid_bearer(value)
    elif name == "api_key":
        body = value.split("-", 1)[1]
        mixed = any(c.isdigit() for c in body) and any(c.isalpha() for c in body)
        valid = len(body) >= 16 and (mixed or len(body) >= 32)
    elif name == "email":
        valid = True
    return [(kind, start, end)] if valid else []


def baseline_values(endpoints: Iterable[Endpoint]) -> list[Canary]:
    """PII-shaped values in the profile's own requests, which the baseline traffic sends.

    The harness sent them, so a leak of one is reported like a canary's, under
    its channel's id (full forms only: ``conformance@example.com`` is not
    distinctive enough for its fragments to mean anything), never as PII
    nobody sent. One in the query string or the path is also searched for in the
    URL-encoded form the baseline traffic sent it in.
    """
    found: list[Canary] = []
    seen: set[tuple[str, str]] = set()
    url = ""

    def add(endpoint: str, slot: str, text: str) -> None:
        for kind, start, end in detect(text):
            value = text[start:end]
            if (kind, value) not in seen:
                seen.add((kind, value))
                canary = Canary(f"b{len(found) + 1:03d}", kind, value, endpoint, slot, baseline=True)
                found.append(with_sent_forms(canary, url))

    def walk(endpoint: str, node: Any, path: str) -> None:
        if isinstance(node, str):
            add(endpoint, f"json {path}", node)
        elif isinstance(node, Mapping):
            for key, value in node.items():
                walk(endpoint, value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(endpoint, value, f"{path}[{i}]")

    for ep in endpoints:
        url = request_url(ep)
        if ep.has_json:
            walk(ep.name, ep.json, "$")
        for name, value in ep.query.items():
            add(ep.name, f"query {name}", str(value))
        for name, value in ep.headers.items():
            add(ep.name, f"header {name}", value)
        for name, value in ep.path_params.items():
            add(ep.name, f"path {{{name}}}", value)
    return found


# --------------------------------------------------------------------------- the scan


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex alternation of ``words`` shaped as a trie, longest match first."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: Mapping[str, Any]) -> str:
        alternatives = []
        for char in sorted(k for k in node if k):
            piece, child = re.escape(char), node[char]
            while len(child) == 1 and "" not in child:
                ((next_char, child),) = child.items()
                piece += re.escape(next_char)
            alternatives.append(piece + build(child))
        if not alternatives:
            return ""
        body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(root)


class PiiScanner:
    """Search channel texts for canaries (every form) and for PII nobody sent.

    Build once per run (compiling the canary trie takes a moment), then
    :meth:`scan` each channel's texts.
    """

    def __init__(self, canaries: Sequence[Canary], detectors: DetectorConfig | None = None) -> None:
        self.detectors = detectors = detectors if detectors is not None else DetectorConfig()
        self._forms: dict[str, tuple[Canary, CanaryForm]] = {}
        for canary in canaries:
            for form in canary.forms():
                self._forms.setdefault(form.text, (canary, form))
        # One trie per first character: each pass then starts with a literal, which the regex
        # engine finds by fast search instead of trying every alternative at every position.
        by_first: dict[str, list[str]] = {}
        for text in self._forms:
            by_first.setdefault(text[0], []).append(text)
        self._canaries = [re.compile(_trie_pattern(group)) for _, group in sorted(by_first.items())]
        #: Numbers (cards, phones, SSNs and their digits): inside a longer number they are another number.
        self._numeric = frozenset(text for text in self._forms if _NUMERIC.fullmatch(text))
        self._by_normal = {(c.kind, c.normalised()): c for c in canaries}
        self._kinds = frozenset(detectors.kinds)
        self._passes = _passes(detectors.kinds)
        self.needles = len(self._forms)

    def scan(self, texts: Iterable[ChannelText]) -> list[Hit]:
        hits: list[Hit] = []
        batch: list[ChannelText] = []
        size = 0
        for item in texts:
            batch.append(item)
            size += len(item.text) + 1
            if size >= _BLOB_CHARS:
                hits += self._scan_batch(batch)
                batch, size = [], 0
        if batch:
            hits += self._scan_batch(batch)
        return hits

    def _scan_batch(self, batch: Sequence[ChannelText]) -> list[Hit]:
        texts = [item.text.replace("\n", " ") if "\n" in item.text else item.text for item in batch]
        blob = "\n".join(texts)
        starts = list(accumulate((len(t) + 1 for t in texts), initial=0))
        located = _Locator(batch)
        found: list[_Found] = []
        covered: list[tuple[int, int]] = []
        for start, end in self._canary_matches(blob):
            canary, form = self._forms[blob[start:end]]
            index = bisect_right(starts, start) - 1
            found.append(_Found(index, start, end, canary.kind, form.shape, canary))
            covered.append((start, end))
        if self._passes:
            # Numbers (span attributes that are not strings) are blanked like the canary hits.
            covered += [(starts[i], starts[i] + len(texts[i])) for i, item in enumerate(batch) if item.number]
            blanked = _blank(blob, _merged(covered), self.detectors.markers)
            found += self._detections(blanked, starts, located)
        return self._hits(batch, texts, starts, found, located)

    def _canary_matches(self, blob: str) -> list[tuple[int, int]]:
        """Leftmost-longest, non-overlapping canary forms in ``blob``, across the per-character passes."""
        matches = []
        for pattern in self._canaries:
            for m in pattern.finditer(blob):
                if m.group() in self._numeric and not _digit_edges_ok(blob, m.start(), m.end()):
                    continue
                matches.append((m.start(), -m.end()))
        matches.sort()
        kept: list[tuple[int, int]] = []
        for start, negative_end in matches:
            if not kept or start >= kept[-1][1]:
                kept.append((start, -negative_end))
        return kept

    def _detections(self, text: str, starts: Sequence[int], located: _Locator) -> list[_Found]:
        found = []
        for kind, start, end in _detect_with(self._passes, text, self._kinds):
            value = text[start:end]
            index = bisect_right(starts, start) - 1
            at = start - starts[index]
            if self.detectors.ignore_fields and located(index, value, at)[1] in self.detectors.ignore_fields:
                continue
            if any(p.fullmatch(value) for p in self.detectors.allow):
                continue
            canary = self._by_normal.get((kind, normalise(kind, value)))
            if canary is None and kind in _DIGIT_KINDS and _id_field(*located(index, value, at)):
                continue
            shape = "formatted:reformatted" if canary is not None else "detected"
            found.append(_Found(index, start, end, kind, shape, canary))
        return found

    def _hits(
        self,
        batch: Sequence[ChannelText],
        texts: Sequence[str],
        starts: Sequence[int],
        found: Sequence[_Found],
        located: _Locator,
    ) -> list[Hit]:
        by_item: dict[int, list[_Found]] = {}
        for entry in found:
            by_item.setdefault(entry.index, []).append(entry)
        hits = []
        for index, entries in sorted(by_item.items()):
            item, text, base = batch[index], texts[index], starts[index]
            entries.sort(key=lambda e: e.start)
            spans = [(e.start - base, e.end - base, e.kind) for e in entries]
            masked_text, positions = _mask_spans(text, spans)
            secrets = [text[start:end] for start, end, _ in spans]
            for entry, (new_start, new_end) in zip(entries, positions, strict=True):
                value = text[entry.start - base : entry.end - base]
                where = located(index, value, entry.start - base)[0]
                window = masked_text[max(0, new_start - _CONTEXT) : new_end + _CONTEXT]
                hits.append(
                    Hit(
                        channel=item.channel,
                        location=_scrub(item.location, secrets),
                        field=_scrub(where, secrets),
                        kind=entry.kind,
                        shape=entry.shape,
                        text=value,
                        canary=entry.canary,
                        excerpt=excerpt(window, 2 * _CONTEXT + 40),
                    )
                )
        return hits


@dataclass(frozen=True, slots=True)
class _Found:
    index: int  # of the text in its batch
    start: int  # in the batch's blob
    end: int
    kind: str
    shape: str
    canary: Canary | None


class _Locator:
    """(field path, field name) of a value inside a batch's texts; raw lines are parsed once."""

    def __init__(self, batch: Sequence[ChannelText]) -> None:
        self._batch = batch
        self._parsed: dict[int, Any] = {}

    def __call__(self, index: int, value: str, at: int) -> tuple[str, str]:
        """``value`` found at offset ``at`` of text ``index``."""
        item = self._batch[index]
        if item.field:
            return item.field, item.key
        if item.channel == "metrics":
            return _exposition_field(item.text, value)
        if item.channel != "logs":
            return "(text)", ""
        if index not in self._parsed:
            try:
                self._parsed[index] = json.loads(item.text)
            except (ValueError, RecursionError):
                self._parsed[index] = None
        record = self._parsed[index]
        found = None
        if record is not None:
            # The n-th occurrence in the raw line is the n-th in the parsed record's leaves, in order.
            found = _json_path(record, value, "$", [item.text.count(value, 0, at)])
        if found is None:
            # Not JSON (or not found in it): "key": "value" or key=value right before the value.
            m = _RAW_KEY.search(item.text, max(0, at - 120), at)
            found = (f"{m.group(1)} (raw line)", m.group(1)) if m else ("(raw line)", "")
        return found


#: Fields that hold ids in the records of common frameworks and trace-context integrations
#: (W3C/OpenTelemetry, ECS, Datadog, B3, Google Cloud, request ids). Random ids are all
#: digits now and then, and a 19-digit Datadog id passes for a card number one time in a
#: hundred, so the digit detectors never look into them. Matched without case against
#: the field's name and its last two path segments (ECS's nested ``trace.id``).
_ID_FIELDS = frozenset(
    {
        "trace_id", "span_id", "parent_id", "parent_span_id", "traceid", "spanid", "parentid",
        "parentspanid", "trace.id", "span.id", "parent.id", "transaction.id", "dd.trace_id",
        "dd.span_id", "logging.googleapis.com/trace", "logging.googleapis.com/spanid", "x-b3-traceid",
        "x-b3-spanid", "x-b3-parentspanid", "x-amzn-trace-id", "request_id", "requestid", "req_id",
        "reqid", "x-request-id", "x_request_id", "correlation_id", "correlationid", "x-correlation-id",
        "insertid",
    }
)  # fmt: skip
#: The detectors that find numbers, which a random id can look like.
_DIGIT_KINDS = frozenset({"card", "phone", "ssn"})


def _id_field(path: str, key: str) -> bool:
    """Whether the field at ``path`` (named ``key``) is one of :data:`_ID_FIELDS`."""
    if key.lower() in _ID_FIELDS:
        return True
    segments = path.removeprefix("key ").split(".")
    return len(segments) > 2 and ".".join(segments[-2:]).lower() in _ID_FIELDS


_RAW_KEY = re.compile(r"""["']?([A-Za-z_][\w.-]*)["']?\s*[:=]\s*["']?$""")


def _blank(blob: str, covered: Sequence[tuple[int, int]], markers: Iterable[str]) -> str:
    """``blob`` with canary hits and redaction markers turned to spaces (offsets kept)."""
    if covered:
        pieces = []
        cursor = 0
        for start, end in covered:
            pieces.append(blob[cursor:start])
            pieces.append(" " * (end - start))
            cursor = end
        pieces.append(blob[cursor:])
        blob = "".join(pieces)
    for marker in markers:
        if marker in blob:
            blob = blob.replace(marker, " " * len(marker))
    return blob


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` sorted, overlapping ones joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


_NUMERIC = re.compile(r"[0-9 +().-]+")
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")


def _digit_edges_ok(blob: str, start: int, end: int) -> bool:
    """A needle that starts or ends with a digit must not sit inside a longer number
    (the digit of a percent-escape before it, ``%20`` in a URL, is not a number)."""
    escaped = start > 2 and blob[start - 3] == "%" and blob[start - 2] in _HEX
    if blob[start] in _DIGITS and start > 0 and blob[start - 1] in _DIGITS and not escaped:
        return False
    return not (blob[end - 1] in _DIGITS and end < len(blob) and blob[end] in _DIGITS)


def _mask_spans(text: str, spans: Sequence[tuple[int, int, str]]) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with each span replaced by its masked form, and where each span now is."""
    out: list[str] = []
    positions = []
    cursor = 0
    length = 0
    for start, end, kind in spans:
        start = max(start, cursor)
        out.append(text[cursor:start])
        length += start - cursor
        masked = mask_pii(kind, text[start:end])
        positions.append((length, length + len(masked)))
        out.append(masked)
        length += len(masked)
        cursor = max(cursor, end)
    out.append(text[cursor:])
    return "".join(out), positions


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """A location or field path with anything found in it masked (label names can leak too)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, mask_value(secret))
    return text


_EXPOSITION_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def _json_path(node: Any, value: str, path: str, skip: list[int], key: str = "") -> tuple[str, str] | None:
    """Path and key of the leaf holding the occurrence of ``value`` after ``skip[0]`` earlier ones."""

    def here(text: str) -> bool:
        count = text.count(value)
        if count > skip[0]:
            return True
        skip[0] -= count
        return False

    if isinstance(node, str):
        return (path, key) if here(node) else None
    if isinstance(node, Mapping):
        for k, v in node.items():
            if here(str(k)):
                return f"key {path}.{k}", str(k)
            found = _json_path(v, value, f"{path}.{k}", skip, str(k))
            if found is not None:
                return found
        return None
    if isinstance(node, list):
        for i, v in enumerate(node):
            found = _json_path(v, value, f"{path}[{i}]", skip, key)
            if found is not None:
                return found
        return None
    if node is not None and not isinstance(node, bool) and here(str(node)):
        return path, key
    return None


def _exposition_field(line: str, value: str) -> tuple[str, str]:
    if line.startswith("#"):
        parts = line.split(None, 3)
        what = parts[1] if len(parts) > 1 else "comment"
        name = parts[2] if len(parts) > 2 else ""
        return f"{what} of {name}", what
    name = re.split(r"[{\s]", line, maxsplit=1)[0]
    if value in name:
        return "metric name", "__name__"
    for m in _EXPOSITION_LABEL.finditer(line):
        if value in m.group(2):
            return f"{name}{{{m.group(1)}}} label value", m.group(1)
        if value in m.group(1):
            return f"label name in {name}", m.group(1)
    return f"sample of {name}", ""


# --------------------------------------------------------------------------- findings


def _describe_shape(hit: Hit) -> str:
    shape = hit.shape
    if shape == "exact":
        return "verbatim"
    if shape == "formatted:reformatted":
        return "written differently (found by the detectors)"
    if shape.startswith("formatted:"):
        return f"written as {shape.partition(':')[2]}"
    if shape.startswith("sent:"):
        return f"in the form the harness sent it ({shape.partition(':')[2]})"
    return shape.partition(":")[2]


def _grouped(hits: Iterable[Hit]) -> list[tuple[Hit, int]]:
    """One entry per (channel, canary or value, shape, field) with its count, first occurrence first."""
    groups: dict[tuple[str, str, str, str], list[Hit]] = {}
    for hit in hits:
        who = hit.canary.id if hit.canary is not None else f"{hit.kind}:{hit.text}"
        groups.setdefault((hit.channel, who, hit.shape, hit.field), []).append(hit)
    return [(found[0], len(found)) for found in groups.values()]


def _evidence(hit: Hit, count: int, registry: CanaryRegistry | None) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "channel": hit.channel,
        "location": hit.location,
        "field": hit.field,
        "kind": hit.kind,
        "found": hit.masked,
        "shape": hit.shape,
        "occurrences": count,
        "excerpt": hit.excerpt,
    }
    if hit.canary is not None:
        evidence["canary"] = hit.canary.id
        evidence["sent_in"] = hit.canary.where()
        if hit.shape.startswith("sent:"):
            evidence["sent_as"] = hit.shape.partition(":")[2]
        note = registry.request_note(hit.canary) if registry is not None else ""
        if note:
            evidence["note"] = note + "; a canary must not leak even so"
    return evidence


def _times(count: int) -> str:
    return f" ({count} times)" if count > 1 else ""


@dataclass(frozen=True, slots=True)
class AfterPipeline:
    """What left the team's collector pipeline, searched with the same scanner as what
    left the service: ``hits`` in its texts, which channels it carries (``processors``:
    channel → the processors of its pipelines, in order), what was searched there
    (``searched``: channel → "41 spans"), and the team's config file name (``config``)."""

    config: str
    processors: Mapping[str, Sequence[str]]
    hits: Sequence[Hit] = ()
    searched: Mapping[str, str] = dataclass_field(default_factory=dict)

    def covers(self, channel: str) -> bool:
        return channel in self.processors

    def describe(self, channel: str) -> str:
        processors = ", ".join(self.processors.get(channel, ())) or "none"
        return f"the team's collector pipeline ({self.config}; processors: {processors})"


#: ``view`` in the evidence of a finding made with a team pipeline in the run.
VIEW_SERVICE = "at the service"
VIEW_BOTH = "at the service and after the team's collector pipeline"
VIEW_REMOVED = "at the service; removed by the team's collector pipeline"
VIEW_ADDED = "after the team's collector pipeline only"


def _who(hit: Hit) -> tuple[str, str]:
    return hit.channel, hit.canary.id if hit.canary is not None else f"{hit.kind}:{hit.text}"


def _findings(
    hits: Iterable[Hit],
    after: Iterable[Hit],
    pipeline: AfterPipeline | None,
    make: Callable[[Hit, int], Finding],
) -> list[Finding]:
    """One finding per group of ``hits`` (at the service), placed in the team pipeline's
    views when it carries the channel; then the groups found only after the pipeline.
    ``after`` holds the after-pipeline hits the same check selects."""
    if pipeline is None:
        return [make(hit, count) for hit, count in _grouped(hits)]
    after_by_who: dict[tuple[str, str], list[Hit]] = {}
    for hit in after:
        after_by_who.setdefault(_who(hit), []).append(hit)
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for hit, count in _grouped(hits):
        finding = make(hit, count)
        who = _who(hit)
        seen.add(who)
        if not pipeline.covers(hit.channel):
            findings.append(finding)
            continue
        still = after_by_who.get(who, [])
        through = pipeline.describe(hit.channel)
        if still:
            first = still[0]
            message = f"{finding.message}; still there after {through}"
            after_evidence: dict[str, Any] = {
                "found": first.masked,
                "location": first.location,
                "field": first.field,
                "occurrences": len(still),
            }
            view = VIEW_BOTH
        else:
            message = f"{finding.message}; {through} removes it: the service leaks it, the collector hides it"
            after_evidence = {
                "found": None,
                "searched": pipeline.searched.get(hit.channel, ""),
                "processors": list(pipeline.processors[hit.channel]),
            }
            view = VIEW_REMOVED
        evidence = {**finding.evidence, "view": view, "after_pipeline": after_evidence}
        findings.append(Finding(finding.requirement_id, message, evidence))
    added = [hit for who, group in after_by_who.items() if who not in seen for hit in group]
    for hit, count in _grouped(added):
        finding = make(hit, count)
        channel = CHANNELS[hit.channel]
        body = finding.message.removeprefix(f"{channel}: ")
        message = (
            f"{channel}: after {pipeline.describe(hit.channel)} only: {body}; the service does not emit it, "
            "the pipeline adds it"
        )
        evidence = {**finding.evidence, "view": VIEW_ADDED, "config": pipeline.config}
        findings.append(Finding(finding.requirement_id, message, evidence))
    return findings


def check_canary_leaks(
    hits: Iterable[Hit],
    channel: str,
    registry: CanaryRegistry | None = None,
    *,
    pipeline: AfterPipeline | None = None,
) -> list[Finding]:
    """PII-001 … PII-004: a canary, whole (verbatim or reformatted), in ``channel``
    (and, with ``pipeline``, in what left the team's collector pipeline)."""
    req = _CANARY_REQUIREMENTS[channel]

    def make(hit: Hit, count: int) -> Finding:
        assert hit.canary is not None
        return Finding(
            req.id,
            f"{CHANNELS[channel]}: the {hit.kind} canary sent in {hit.canary.where()} appears "
            f"{_describe_shape(hit)} in {hit.location} at {hit.field} as {hit.masked}{_times(count)}",
            _evidence(hit, count, registry),
        )

    def selected(found: Iterable[Hit]) -> list[Hit]:
        return [h for h in found if h.channel == channel and h.full]

    return _findings(selected(hits), selected(pipeline.hits if pipeline else ()), pipeline, make)


def check_partial_leaks(
    hits: Iterable[Hit], registry: CanaryRegistry | None = None, *, pipeline: AfterPipeline | None = None
) -> list[Finding]:
    """PII-005: a fragment or an encoding of a canary, in any channel."""

    def make(hit: Hit, count: int) -> Finding:
        assert hit.canary is not None
        return Finding(
            PII_005.id,
            f"{CHANNELS[hit.channel]}: {_describe_shape(hit)} of the {hit.kind} canary sent in "
            f"{hit.canary.where()} appears in {hit.location} at {hit.field} as "
            f"{hit.masked}{_times(count)}",
            _evidence(hit, count, registry),
        )

    def selected(found: Iterable[Hit]) -> list[Hit]:
        return [h for h in found if h.canary is not None and not h.full]

    return _findings(selected(hits), selected(pipeline.hits if pipeline else ()), pipeline, make)


def check_unknown_pii(hits: Iterable[Hit], *, pipeline: AfterPipeline | None = None) -> list[Finding]:
    """PII-006: a validated PII shape the harness did not send, in any channel."""

    def make(hit: Hit, count: int) -> Finding:
        return Finding(
            PII_006.id,
            f"{CHANNELS[hit.channel]}: {_KIND_NAMES.get(hit.kind, hit.kind)} the harness did not send "
            f"appears in {hit.location} at {hit.field} as "
            f"{hit.masked}{_times(count)}",
            _evidence(hit, count, None),
        )

    def selected(found: Iterable[Hit]) -> list[Hit]:
        return [h for h in found if h.canary is None]

    return _findings(selected(hits), selected(pipeline.hits if pipeline else ()), pipeline, make)


_KIND_NAMES = {
    "email": "an email address",
    "phone": "a phone number",
    "card": "a card number",
    "ssn": "an SSN",
    "jwt": "a JWT",
    "bearer": "a Bearer/Basic credential",
    "api_key": "an API key",
}


def handled_requests(
    registry: CanaryRegistry, endpoint: str, expected_statuses: Mapping[str, Sequence[int]]
) -> list[tuple[int, HttpExchange]]:
    """(index, exchange) of the canary requests to ``endpoint`` the service handled: answered
    with one of the endpoint's expected statuses (200 unless the mapping says otherwise)."""
    statuses = expected_statuses.get(endpoint, (200,))
    return [
        (i, x)
        for i, x in enumerate(registry.exchanges)
        if x.endpoint == endpoint and x.status_code in statuses
    ]


def check_redaction_present(
    registry: CanaryRegistry,
    parsed: Sequence[ParsedLogLine],
    rules: Sequence[RedactedField],
    *,
    correlation_header: str,
    expected_statuses: Mapping[str, Sequence[int]],
) -> list[Finding]:
    """PII-007: for each rule and each canary request to its endpoint that the
    service handled (answered with one of the endpoint's expected statuses),
    the request's ``message`` record carries ``field`` with every marker.

    A request's records are those with its correlation id (the response
    header) or its trace id (the ``traceparent`` it was sent). Raises
    :class:`HarnessError` for a rule none of whose requests was handled.
    """
    by_correlation: dict[str, list[ParsedLogLine]] = {}
    by_trace: dict[str, list[ParsedLogLine]] = {}
    for p in parsed:
        if p.record is None:
            continue
        if p.record.get("correlation_id"):
            by_correlation.setdefault(str(p.record["correlation_id"]), []).append(p)
        if p.record.get("trace_id"):
            by_trace.setdefault(str(p.record["trace_id"]).lower()[-32:], []).append(p)
    secrets = sorted({f.text for c in registry.canaries for f in c.forms() if f.full}, key=len, reverse=True)
    findings: list[Finding] = []
    for rule in rules:
        sent = [(i, x) for i, x in enumerate(registry.exchanges) if x.endpoint == rule.endpoint]
        handled = handled_requests(registry, rule.endpoint, expected_statuses)
        if not handled:
            statuses = ", ".join(str(x.status_code or x.error[:40]) for _, x in sent) or "none sent"
            raise HarnessError(
                f"no canary request to {rule.endpoint!r} was handled (answers: {statuses}), so whether "
                f"{rule.message}.{rule.field} is logged redacted cannot be judged"
            )
        for index, exchange in handled:
            cid = exchange.response_header(correlation_header) or ""
            parts = exchange.sent_traceparent.split("-")
            trace_id = parts[1] if len(parts) == 4 else ""
            candidates = by_correlation.get(cid, []) if cid else []
            candidates = candidates or by_trace.get(trace_id, [])
            records = [
                p for p in candidates if p.record is not None and p.record.get("message") == rule.message
            ]
            what = f"canary request {index} ({exchange.method} {rule.endpoint} -> {exchange.status_code})"
            evidence: dict[str, Any] = {"endpoint": rule.endpoint, "request": index, "message": rule.message,
                                        "field": rule.field, "correlation_id": cid}  # fmt: skip
            if not records:
                findings.append(
                    Finding(
                        PII_007.id,
                        f"logs: no {rule.message!r} record for {what}: the event was not logged, so its "
                        "redaction is not shown",
                        evidence,
                    )
                )
                continue
            for p in records:
                raw = p.raw_record or {}
                value = get_field(raw, rule.field)
                where = {**evidence, "location": p.line.place}
                if value is None:
                    findings.append(
                        Finding(
                            PII_007.id,
                            f"logs: {rule.message!r} of {what} ({p.line.place}) has no field {rule.field!r}",
                            where,
                        )
                    )
                    continue
                text = _text_of(value)
                missing = [marker for marker in rule.markers if marker not in text]
                if missing:
                    shown = excerpt(_scrub(text, secrets), 160)
                    findings.append(
                        Finding(
                            PII_007.id,
                            f"logs: {rule.message}.{rule.field} of {what} ({p.line.place}) "
                            f"lacks {', '.join(missing)}; it reads {shown!r}",
                            {**where, "missing": missing, "excerpt": shown},
                        )
                    )
    return findings
