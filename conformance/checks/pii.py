"""PII-*: no PII in logs, traces or metrics, proven with canaries.

Pure: the canary registry (which unique synthetic value went into which input,
``conformance.collect._canaries``) and the contents of every output channel
in, findings out.

One scan (:class:`PiiScanner`) searches every channel text for

* every **form of every canary**: the value, the same value written another
  way (a card in groups, a phone in national format), and its fragments and
  encodings (an email's local part, a card's last 8 digits, a JWT's payload
  or signature segment, an API key without its prefix, URL-encoded and base64
  forms at any alignment). The texts are compiled into tries, one regex per
  first character (so the regex engine can jump from one candidate to the
  next), and the leftmost-longest match wins, so a full leak is never also
  reported as its own fragment;
* **PII the harness did not send** (detectors): emails, phones (E.164 and
  North American formats), Luhn-valid card numbers with a card-network first
  digit, SSNs in issued ranges, JWTs whose header decodes, Bearer/Basic
  credentials and API keys. The patterns are ``_mask.PII_PATTERNS``, run in
  spellings anchored on a literal (``@``, ``eyJ``, ``-dd-dddd``) that a property
  test holds to the same matches. Text a canary form covers and the redaction
  markers are blanked first; a detected value that normalises to a canary
  (an email upper-cased, a card with other separators) is that canary's leak
  in another shape.

Hits become findings by requirement: a full canary leak under its channel's
id (PII-001 logs, PII-002 spans, PII-003 ``/metrics``, PII-004 Prometheus),
fragments and encodings under PII-005, detector hits under PII-006.
PII-007 checks the other side: where the profile says a field is logged
redacted, the event is logged and the field carries the marker.

Evidence never carries what was found: the channel, the location, the field
path and a masked form (``j***@e***.net``, ``40***97``), and an excerpt in
which every hit is replaced by its masked form before ``_mask.excerpt``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from conformance.collect._canaries import Canary, CanaryForm, CanaryRegistry, normalise
from conformance.collect._scrape import Exposition
from conformance.telemetry import LogLine, Span

__all__ = [
    "CHANNELS",
    "PII_001",
    "PII_002",
    "PII_003",
    "PII_004",
    "PII_005",
    "PII_006",
    "PII_007",
    "ChannelText",
    "Hit",
    "PiiScanner",
    "baseline_values",
    "check_canary_leaks",
    "check_partial_leaks",
    "check_redaction_present",
    "check_unknown_pii",
    "detect",
    "exposition_texts",
    "log_texts",
    "prometheus_texts",
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
    "metrics": "metrics (/metrics exposition)",
    "prometheus": "Prometheus (series, label values API)",
}
_CANARY_REQUIREMENTS = {"logs": PII_001, "traces": PII_002, "metrics": PII_003, "prometheus": PII_004}

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
    """

    channel: str
    location: str
    text: str
    field: str = ""
    key: str = ""


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
        return mask_pii(self.kind, self.text)

    @property
    def full(self) -> bool:
        return self.canary is not None and (self.shape == "exact" or self.shape.startswith("formatted"))


# --------------------------------------------------------------------------- channel texts


def log_texts(lines: Iterable[LogLine]) -> list[ChannelText]:
    """Each captured line as raw text (decoded leniently): leaks hide outside parsed fields too."""
    return [ChannelText("logs", f"{line.stream} line {line.number}", line.text()) for line in lines]


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return ", ".join(_text_of(v) for v in value)
    return str(value)


def span_texts(spans: Iterable[Span]) -> list[ChannelText]:
    """Span names, attributes, event names and attributes, and each distinct resource once."""
    out: list[ChannelText] = []
    resources: set[tuple[tuple[str, str], ...]] = set()
    for span in spans:
        where = f"{span.kind} span {span.span_id} in trace {span.trace_id}"
        out.append(ChannelText("traces", where, span.name, "name", "name"))
        if span.status_message:
            out.append(ChannelText("traces", where, span.status_message, "status.message", "status.message"))
        for key, value in span.attributes.items():
            out.append(ChannelText("traces", where, _text_of(value), f'attributes["{key}"]', key))
        for i, event in enumerate(span.events):
            out.append(ChannelText("traces", where, event.name, f"events[{i}].name", "name"))
            for key, value in event.attributes.items():
                out.append(
                    ChannelText("traces", where, _text_of(value), f'events[{i}].attributes["{key}"]', key)
                )
        resource = tuple(sorted((str(k), _text_of(v)) for k, v in span.resource_attributes.items()))
        if resource not in resources:
            resources.add(resource)
            for key, value in resource:
                out.append(ChannelText("traces", f"resource of {where}", value, f'resource["{key}"]', key))
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


#: Where shapes overlap at one position the earlier one here wins: an SSN or a
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
    "bearer": (re.compile(r"(?i:b(?<!\wb)(?:earer|asic)\s+[A-Za-z0-9._~+/=-]{6,})"), 0),
    "api_key": (re.compile(r"k-(?<=(?<!\w)[spr]k-)[A-Za-z0-9_-]{8,}"), -1),
    "ssn": (re.compile(r"-\d\d-\d{4}(?![\w-])(?<=(?<![\w-])\d\d\d-\d\d-\d\d\d\d)"), -3),
    "digits": (re.compile(r"(?=[+\d])" + PII_PATTERNS["digits"].pattern), 0),
}
# Every North American number ends in a separator and four digits: those are found by
# literal, then the whole number in the few characters before them.
_US_PHONE_ANCHORS = tuple(re.compile(sep + r"\d{4}(?![\w-])") for sep in (" ", r"\.", "-"))
#: The longest North American number PII_PATTERNS["us_phone"] matches: +1 (202) 555-0147.
_US_PHONE_MAX = 18


def _passes(kinds: Iterable[str]) -> tuple[str, ...]:
    wanted = set(kinds)
    names: list[str] = [name for name in ("email", "jwt", "bearer", "api_key", "ssn") if name in wanted]
    if "phone" in wanted:
        names.append("us_phone")
    if wanted & {"phone", "card"}:
        names.append("digits")
    return tuple(names)


def _detect_pass(name: str, text: str) -> Iterable[tuple[int, int]]:
    """(start, end) of each match of the detector ``name`` in ``text``, as PII_PATTERNS[name] finds them."""
    if name == "us_phone":
        for anchor in _US_PHONE_ANCHORS:
            for m in anchor.finditer(text):
                window = max(0, m.end() - _US_PHONE_MAX)
                for phone in PII_PATTERNS["us_phone"].finditer(text, window, min(len(text), m.end() + 1)):
                    if phone.end() == m.end():
                        yield phone.start(), phone.end()
                        break
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


_Pass = Callable[[str, str], Iterable[tuple[int, int]]]


def _candidates(text: str, passes: Sequence[str], find: _Pass = _detect_pass) -> list[tuple[str, int, int]]:
    """Every pass's matches, leftmost first, overlapping ones dropped (the earlier pass wins a tie)."""
    found = [(start, _PRIORITY.index(name), end, name) for name in passes for start, end in find(name, text)]
    found.sort()
    kept: list[tuple[str, int, int]] = []
    last_end = -1
    for start, _, end, name in found:
        if start >= last_end:
            kept.append((name, start, end))
            last_end = end
    return kept


def _reference_pass(name: str, text: str) -> Iterable[tuple[int, int]]:
    """The same pass with the plain PII_PATTERNS (slower; the fast spellings are tested against it)."""
    return ((m.start(), m.end()) for m in PII_PATTERNS[name].finditer(text))


def _b64_json_object(segment: str) -> Any:
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(data)
    except (binascii.Error, ValueError):
        return None


def _valid_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and len(set(digits)) > 1 and luhn_valid(digits)


def _valid_ssn(text: str) -> bool:
    area, group, serial = text.split("-")
    return area not in ("000", "666") and area < "900" and group != "00" and serial != "0000"


def _valid_nanp(text: str) -> bool:
    digits = "".join(c for c in text if c.isdigit())
    national = digits[1:] if len(digits) == 11 else digits
    return len(national) == 10 and national[0] in "23456789" and national[3] in "23456789"


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


def _digit_groups(text: str, offset: int, kinds: Iterable[str]) -> list[tuple[str, int, int]]:
    """Split a run of digit groups into an E.164 phone (from a leading ``+``) and card numbers.

    Every window of whole groups is tried for a card, so a card next to other
    numbers is still found (as the reference service's redaction does).
    """
    groups = [(m.start(), m.end()) for m in re.finditer(r"\+?\d+", text)]
    found: list[tuple[str, int, int]] = []
    first = 0
    if groups and text.startswith("+"):
        count = 0
        end = 0
        for i, (start, stop) in enumerate(groups):
            size = stop - start - (1 if i == 0 else 0)
            if i > 0 and (size > 4 or count + size > 15):
                break
            count += size
            end = i + 1
            if i == 0 and count >= 8:
                break
        if 8 <= count <= 15:
            if "phone" in kinds:
                found.append(("phone", offset + groups[0][0], offset + groups[end - 1][1]))
            first = end
    if "card" not in kinds:
        return found
    i = first
    while i < len(groups):
        best = None
        digits = ""
        for j in range(i, len(groups)):
            digits += text[groups[j][0] : groups[j][1]].lstrip("+")
            if len(digits) > 19:
                break
            if _valid_card(digits):
                best = j
        if best is None:
            i += 1
            continue
        found.append(("card", offset + groups[i][0], offset + groups[best][1]))
        i = best + 1
    return found


def detect(text: str, kinds: Iterable[str] = DETECTOR_KINDS) -> list[tuple[str, int, int]]:
    """``(kind, start, end)`` of every validated PII shape in ``text`` (nothing blanked or allowed)."""
    kinds = frozenset(kinds)
    return _detect_with(_passes(kinds), text, kinds)


def _detect_with(
    passes: Sequence[str], text: str, kinds: frozenset[str], find: _Pass = _detect_pass
) -> list[tuple[str, int, int]]:
    found: list[tuple[str, int, int]] = []
    for name, start, end in _candidates(text, passes, find):
        value = text[start:end]
        if "\n" in value:
            continue
        if name == "digits":
            found += _digit_groups(value, start, kinds)
        elif name == "us_phone":
            if _valid_nanp(value):
                found.append(("phone", start, end))
        elif name == "ssn":
            if _valid_ssn(value):
                found.append(("ssn", start, end))
        elif name == "jwt":
            header = _b64_json_object(value.split(".", 1)[0])
            if isinstance(header, dict) and "alg" in header:
                found.append(("jwt", start, end))
        elif name == "bearer":
            if _valid_bearer(value):
                found.append(("bearer", start, end))
        elif name == "api_key":
            body = value.split("-", 1)[1]
            mixed = any(c.isdigit() for c in body) and any(c.isalpha() for c in body)
            if len(body) >= 16 and (mixed or len(body) >= 32):
                found.append(("api_key", start, end))
        elif name == "email":
            found.append(("email", start, end))
    return found


def baseline_values(endpoints: Iterable[Endpoint]) -> list[Canary]:
    """PII-shaped values in the profile's own requests, which the baseline traffic sends.

    The harness sent them, so a leak of one is reported like a canary's, under
    its channel's id (full forms only: ``conformance@example.com`` is not
    distinctive enough for its fragments to mean anything), never as PII
    nobody sent.
    """
    found: list[Canary] = []
    seen: set[tuple[str, str]] = set()

    def add(endpoint: str, slot: str, text: str) -> None:
        for kind, start, end in detect(text):
            value = text[start:end]
            if (kind, value) not in seen:
                seen.add((kind, value))
                found.append(Canary(f"b{len(found) + 1:03d}", kind, value, endpoint, slot, baseline=True))

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
            found += self._detections(_blank(blob, covered, self.detectors.markers), starts, located)
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


_NUMERIC = re.compile(r"[0-9 +().-]+")
_DIGITS = frozenset("0123456789")


def _digit_edges_ok(blob: str, start: int, end: int) -> bool:
    """A needle that starts or ends with a digit must not sit inside a longer number."""
    if blob[start] in _DIGITS and start > 0 and blob[start - 1] in _DIGITS:
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
        note = registry.request_note(hit.canary) if registry is not None else ""
        if note:
            evidence["note"] = note + "; a canary must not leak even so"
    return evidence


def _times(count: int) -> str:
    return f" ({count} times)" if count > 1 else ""


def check_canary_leaks(
    hits: Iterable[Hit], channel: str, registry: CanaryRegistry | None = None
) -> list[Finding]:
    """PII-001 … PII-004: a canary, whole (verbatim or reformatted), in ``channel``."""
    req = _CANARY_REQUIREMENTS[channel]
    findings = []
    for hit, count in _grouped(h for h in hits if h.channel == channel and h.full):
        assert hit.canary is not None
        findings.append(
            Finding(
                req.id,
                f"{CHANNELS[channel]}: the {hit.kind} canary sent in {hit.canary.where()} appears "
                f"{_describe_shape(hit)} in {hit.location} at {hit.field} as {hit.masked}{_times(count)}",
                _evidence(hit, count, registry),
            )
        )
    return findings


def check_partial_leaks(hits: Iterable[Hit], registry: CanaryRegistry | None = None) -> list[Finding]:
    """PII-005: a fragment or an encoding of a canary, in any channel."""
    findings = []
    for hit, count in _grouped(h for h in hits if h.canary is not None and not h.full):
        assert hit.canary is not None
        findings.append(
            Finding(
                PII_005.id,
                f"{CHANNELS[hit.channel]}: {_describe_shape(hit)} of the {hit.kind} canary sent in "
                f"{hit.canary.where()} appears in {hit.location} at {hit.field} as "
                f"{hit.masked}{_times(count)}",
                _evidence(hit, count, registry),
            )
        )
    return findings


def check_unknown_pii(hits: Iterable[Hit]) -> list[Finding]:
    """PII-006: a validated PII shape the harness did not send, in any channel."""
    findings = []
    for hit, count in _grouped(h for h in hits if h.canary is None):
        findings.append(
            Finding(
                PII_006.id,
                f"{CHANNELS[hit.channel]}: {_KIND_NAMES.get(hit.kind, hit.kind)} the harness did not send "
                f"appears in {hit.location} at {hit.field} as "
                f"{hit.masked}{_times(count)}",
                _evidence(hit, count, None),
            )
        )
    return findings


_KIND_NAMES = {
    "email": "an email address",
    "phone": "a phone number",
    "card": "a card number",
    "ssn": "an SSN",
    "jwt": "a JWT",
    "bearer": "a Bearer/Basic credential",
    "api_key": "an API key",
}


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
        handled = [(i, x) for i, x in sent if x.status_code in expected_statuses.get(rule.endpoint, (200,))]
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
                where = {**evidence, "location": f"{p.line.stream} line {p.line.number}"}
                if value is None:
                    findings.append(
                        Finding(
                            PII_007.id,
                            f"logs: {rule.message!r} of {what} ({p.line.stream} line {p.line.number}) has no "
                            f"field {rule.field!r}",
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
                            f"logs: {rule.message}.{rule.field} of {what} ({p.line.stream} line "
                            f"{p.line.number}) lacks {', '.join(missing)}; it reads {shown!r}",
                            {**where, "missing": missing, "excerpt": shown},
                        )
                    )
    return findings
