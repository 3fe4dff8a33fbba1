"""Canaries: synthetic PII made unique per run, sent into every input of the service.

Scanning output for "anything that looks like an email" after the fact misses
leaks that take another shape and flags harmless look-alikes. Instead every
input channel gets its own unique, realistic and valid value, and the PII
family searches every output channel for exactly those values
(``conformance.checks.pii``).

* :class:`CanaryGenerator` is pure: one seed (the run id) gives the same
  canaries in the same order, so a test can regenerate a run's canaries from
  the seed in its report and prove the report does not contain them.
* :func:`plan_injection` is pure too: every endpoint of the profile, ``rounds``
  times, with canaries in JSON body fields (by field name: ``email``,
  ``password``, free text such as ``content`` …), the query string, path
  parameters, ``Authorization`` (a JWT in even rounds, an opaque bearer token in
  odd ones), ``Cookie``, custom headers and the ``User-Agent``. Each canary
  records where it went (:class:`Canary`).
* :func:`inject_canaries` sends the plan, round ``r`` on client identity
  ``r % clients`` (``session.client("pii-<n>")``, i.e. its own rate-limit key),
  and records with each canary the form its request carried it in where that
  differs from the value (URL-encoded in a query string or a path,
  :func:`with_sent_forms`): that form is the canary itself, not an encoding
  the service made. :func:`gather_channels` waits, bounded, for what the service made of it:
  the requests' log records and SERVER spans and a Prometheus scrape that began
  after the traffic; then reads logs (both streams), spans, ``/metrics`` and the
  Prometheus series and label values API.

Kinds and their shapes: ``email`` (``first.last.<token>@example.net``, RFC 2606
domains), ``phone`` (E.164 ``+1 NPA 555 01XX``, the North American numbers
reserved for fiction), ``card`` (16 Luhn-valid digits under a test BIN),
``ssn`` (``666-GG-SSSS`` or ``9XX-GG-SSSS``: well formed, never issued),
``jwt`` (HS256 header, a payload with a random ``jti``, a 256-bit signature),
``bearer`` (an opaque access token), ``api_key`` (``sk-proj-…``),
``session_cookie`` (a 256-bit URL-safe token), ``password``. ``text`` is a
sentence that carries one each of email, phone, card (grouped in fours), SSN,
JWT and API key, as a user would paste them into a chat prompt.
"""

from __future__ import annotations

import base64
import json
import math
import random
import string
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpx

from conformance._exceptions import HarnessError, WaitTimeout
from conformance._mask import luhn_check_digit
from conformance._profile import Endpoint
from conformance._sections.pii import InjectionSettings
from conformance._wait import wait_until
from conformance.collect._prometheus_api import PrometheusClient, wait_for_target_up
from conformance.collect._scrape import Exposition
from conformance.collect._traces import TraceStore
from conformance.collect._traffic import send
from conformance.telemetry import HttpExchange, LogLine, Span

__all__ = [
    "CANARY_KINDS",
    "INPUT_KINDS",
    "Canary",
    "CanaryForm",
    "CanaryGenerator",
    "CanaryRegistry",
    "InjectionPlan",
    "PiiChannels",
    "PlannedRequest",
    "body_field_kind",
    "full_shape",
    "gather_channels",
    "inject_canaries",
    "plan_injection",
    "request_url",
    "with_sent_forms",
]

#: Kinds of single canary values.
CANARY_KINDS = (
    "email",
    "phone",
    "card",
    "ssn",
    "jwt",
    "bearer",
    "api_key",
    "session_cookie",
    "password",
)
#: What an input slot can be given: a single canary, or ``text`` (several canaries in a sentence).
INPUT_KINDS = (*CANARY_KINDS, "text")
#: The kinds a ``text`` slot carries, in order.
TEXT_KINDS = ("email", "phone", "card", "ssn", "jwt", "api_key")

_FIRST = ("ava", "liam", "maya", "noah", "zoe", "omar", "lena", "ivan", "nora", "theo", "aisha", "ravi")
_LAST = ("okafor", "lindqvist", "moreau", "tanaka", "novak", "garcia", "haddad", "kowalski", "reyes")
_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")
#: Test BINs: Visa 4000 00, Mastercard 5555 55 and its 2-series test range 2223 00.
_CARD_PREFIXES = ("400000", "555555", "222300")
_BASE62 = string.ascii_letters + string.digits
_BASE64URL = _BASE62 + "-_"
#: Shortest base64 fragment worth searching for (shorter ones match by chance).
_MIN_ENCODED = 8

# Body field names (lowercase, ``-`` as ``_``) → kind; anything else is left as the profile has it.
_FIELD_KINDS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"email", "e_mail", "mail", "email_address", "user_email"}), "email"),
    (frozenset({"phone", "phone_number", "mobile", "tel", "telephone"}), "phone"),
    (frozenset({"card", "card_number", "cc", "cc_number", "credit_card", "pan"}), "card"),
    (frozenset({"ssn", "social_security_number"}), "ssn"),
    (frozenset({"password", "passwd", "pass", "passphrase", "secret", "pin"}), "password"),
    (frozenset({"token", "access_token", "id_token", "refresh_token", "jwt"}), "jwt"),
    (frozenset({"api_key", "apikey", "key", "secret_key"}), "api_key"),
    (frozenset({"content", "prompt", "text", "message", "input", "query", "description", "comment"}), "text"),
)


def body_field_kind(key: str, overrides: Mapping[str, str] | None = None) -> str | None:
    """The kind a JSON body field named ``key`` gets, or ``None`` to leave it alone.

    ``overrides`` (the profile's ``pii.body_fields``) win; ``keep`` there means
    "leave this field alone".
    """
    normal = key.lower().replace("-", "_")
    for name, kind in (overrides or {}).items():
        if name.lower().replace("-", "_") == normal:
            return None if kind == "keep" else kind
    for names, kind in _FIELD_KINDS:
        if normal in names:
            return kind
    return None


def full_shape(shape: str) -> bool:
    """Whether a form of this shape is the whole canary: the value (``exact``), the value
    written differently (``formatted:…``) or the form in which the harness transmitted
    it (``sent:…``, URL-encoded in a query string or a path)."""
    return shape == "exact" or shape.startswith(("formatted:", "sent:"))


@dataclass(frozen=True, slots=True)
class CanaryForm:
    """One way a canary can show up in output.

    ``shape`` is ``exact``, ``formatted:<how>`` (the whole value written
    differently: a card in groups, a phone in national format), ``sent:<how>``
    (the form the harness put on the wire: URL-encoded in the query string or
    the path) — all full leaks — or ``fragment:<what>`` / ``encoded:<how>`` (a
    partial leak, or an encoding the service made).
    """

    text: str = field(repr=False)  # never in a traceback or a report
    shape: str

    @property
    def full(self) -> bool:
        return full_shape(self.shape)


@dataclass(frozen=True, slots=True)
class Canary:
    """A unique synthetic value and where it was sent.

    ``slot`` names the input: ``json $.email``, ``query email``, ``path {user_id}``,
    ``header Authorization``, ``header Cookie``, ``header X-User-Email``,
    ``user-agent``. ``request`` indexes :attr:`CanaryRegistry.exchanges`.
    """

    id: str
    kind: str
    value: str = field(repr=False)  # never in a traceback or a report
    endpoint: str = ""
    slot: str = ""
    request: int = -1
    #: A value of the profile's own requests (the baseline traffic), not unique to the run:
    #: only its full forms are searched, since its fragments are not distinctive.
    baseline: bool = False
    #: ``(how, text)``: the forms in which the request carried the value where they differ
    #: from it (URL-encoded in the query string or the path; :func:`with_sent_forms`).
    sent: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def where(self) -> str:
        """``json $.email of login (request 3)``: the input, never the value."""
        if not self.endpoint:
            return self.slot or "(not sent)"
        if self.baseline:
            return f"{self.slot} of {self.endpoint} (the profile's baseline traffic)"
        return f"{self.slot} of {self.endpoint} (request {self.request})"

    def normalised(self) -> str:
        """The value as the PII detectors normalise what they find (lowercase email, bare digits)."""
        return normalise(self.kind, self.value)

    def forms(self) -> list[CanaryForm]:
        """Every text to search for: the value, its other spellings, fragments and encodings."""
        forms = [CanaryForm(self.value, "exact")]
        forms += [CanaryForm(text, f"formatted:{how}") for how, text in _formatted(self.kind, self.value)]
        # Before the encodings: the URL-encoding the harness did is the canary itself.
        forms += [CanaryForm(text, f"sent:{how}") for how, text in self.sent]
        if not self.baseline:
            forms += [
                CanaryForm(text, f"fragment:{what}") for what, text in _fragments(self.kind, self.value)
            ]
            forms += [CanaryForm(text, f"encoded:{how}") for how, text in _encodings(self.value)]
        seen: set[str] = set()
        unique = []
        for form in forms:
            if form.text and form.text not in seen:
                seen.add(form.text)
                unique.append(form)
        return unique


def normalise(kind: str, value: str) -> str:
    """How a value compares across spellings: emails lowercased, numbers as bare digits."""
    if kind == "email":
        return value.lower()
    if kind in ("phone", "card", "ssn"):
        digits = "".join(c for c in value if c.isdigit())
        # A North American number written without its country code is the same number.
        return "1" + digits if kind == "phone" and len(digits) == 10 else digits
    return value


#: Characters a URL path carries as they are (RFC 3986 pchar).
_PATH_SAFE = "!$&'()*+,;=:@"
#: The ways an HTTP client percent-encodes a value in a URL: form encoding (a query
#: string, as httpx does it), everything encoded, a path segment.
_URL_ENCODINGS: tuple[Callable[[str], str], ...] = (
    quote_plus,
    lambda text: quote(text, safe=""),
    lambda text: quote(text, safe=_PATH_SAFE),
)


def with_sent_forms(canary: Canary, url: str) -> Canary:
    """``canary`` with the forms in which ``url``, the request as sent, carried it.

    A value in the query string or the path goes out URL-encoded
    (``first.last%40example.net``); the service that logs its URL logs that
    form, which is the canary itself (a full leak in its channel), not an
    encoding the service made (PII-005). Only encodings that appear in the
    query string (or path) of ``url`` are kept.
    """
    parts = urlsplit(url)
    if canary.slot.startswith("query "):
        where, carried = "query string", parts.query
    elif canary.slot.startswith("path "):
        where, carried = "path", parts.path
    else:
        return canary
    whole = [("", canary.value), *_formatted(canary.kind, canary.value)]
    sent: list[tuple[str, str]] = []
    for written, text in whole:
        for encode in _URL_ENCODINGS:
            encoded = encode(text)
            how = f"URL-encoded in the {where}" + (f", {written}" if written else "")
            if encoded != text and encoded in carried and all(encoded != t for _, t in sent):
                sent.append((how, encoded))
    return replace(canary, sent=tuple(sent))


def request_url(endpoint: Endpoint) -> str:
    """The URL (path and query string, encoded) of a request to ``endpoint`` as
    :func:`~conformance.collect._traffic.send` makes it; empty if it cannot be built."""
    try:
        request = httpx.Request(
            endpoint.method,
            "http://127.0.0.1" + endpoint.concrete_path(),
            params=dict(endpoint.query) or None,
        )
    except (httpx.InvalidURL, ValueError, TypeError):
        return ""
    return str(request.url)


def _formatted(kind: str, value: str) -> list[tuple[str, str]]:
    if kind == "card":
        groups = [value[i : i + 4] for i in range(0, len(value), 4)]
        return [("groups of 4 with spaces", " ".join(groups)), ("groups of 4 with dashes", "-".join(groups))]
    if kind == "phone" and value.startswith("+1") and len(value) == 12:
        area, exchange, line = value[2:5], value[5:8], value[8:]
        return [
            ("national digits", value[2:]),
            ("(NPA) NXX-XXXX", f"({area}) {exchange}-{line}"),
            ("NPA-NXX-XXXX", f"{area}-{exchange}-{line}"),
            ("NPA.NXX.XXXX", f"{area}.{exchange}.{line}"),
            ("+1 NPA NXX XXXX", f"+1 {area} {exchange} {line}"),
            ("+1 NPA-NXX-XXXX", f"+1 {area}-{exchange}-{line}"),
        ]
    return []


def _fragments(kind: str, value: str) -> list[tuple[str, str]]:
    if kind == "email":
        return [("local part", value.partition("@")[0])]
    if kind == "card":
        last = value[-8:]
        return [
            ("last 8 digits", last),
            ("last 8 digits grouped", f"{last[:4]} {last[4:]}"),
            ("last 8 digits grouped", f"{last[:4]}-{last[4:]}"),
        ]
    if kind == "jwt":
        _, payload, signature = value.split(".")
        return [("JWT payload segment", payload), ("JWT signature segment", signature)]
    if kind == "api_key":
        return [("key without its prefix", value.removeprefix("sk-proj-"))]
    return []


def _encodings(value: str) -> list[tuple[str, str]]:
    out = [("URL-encoded", quote(value, safe="")), ("URL-encoded (form)", quote_plus(value))]
    out = [(how, text) for how, text in out if text != value]
    raw = value.encode()
    for offset in range(3):
        # The value's base64 wherever it sits in a longer encoded string: encode it
        # behind ``offset`` filler bytes and keep only the characters that depend on
        # nothing but the value.
        encoded = base64.b64encode(bytes(offset) + raw).decode()
        first = -(-8 * offset // 6)
        last = (8 * (offset + len(raw))) // 6
        inner = encoded[first:last]
        if len(inner) >= _MIN_ENCODED:
            out.append((f"base64 (offset {offset})", inner))
            urlsafe = inner.replace("+", "-").replace("/", "_")
            if urlsafe != inner:
                out.append((f"base64url (offset {offset})", urlsafe))
    return out


class CanaryGenerator:
    """Unique canaries of every kind from one seed; pure and deterministic.

    The same seed gives the same values in the same order of calls, so a run
    records only its seed.
    """

    def __init__(self, seed: str) -> None:
        self.seed = seed
        # Reproducible from the seed on purpose: canaries are synthetic, not secrets.
        self._rng = random.Random(f"obsconform-pii:{seed}")  # noqa: S311
        self._issued: set[str] = set()
        self._count = 0

    def new(self, kind: str, *, endpoint: str = "", slot: str = "", request: int = -1) -> Canary:
        """A canary of ``kind`` not issued before by this generator."""
        make = self._makers().get(kind)
        if make is None:
            raise ValueError(f"unknown canary kind {kind!r}; known: {', '.join(CANARY_KINDS)}")
        for _ in range(1000):
            value = make()
            if value not in self._issued:
                break
        else:  # pragma: no cover - needs a broken random source
            raise RuntimeError(f"could not make a fresh {kind} canary")
        self._issued.add(value)
        self._count += 1
        return Canary(f"c{self._count:03d}", kind, value, endpoint, slot, request)

    def _makers(self) -> dict[str, Callable[[], str]]:
        return {
            "email": self.email,
            "phone": self.phone,
            "card": self.card,
            "ssn": self.ssn,
            "jwt": self.jwt,
            "bearer": self.bearer,
            "api_key": self.api_key,
            "session_cookie": self.session_cookie,
            "password": self.password,
        }

    def _token(self, n: int, alphabet: str = _BASE62) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    def email(self) -> str:
        token = self._token(6, string.ascii_lowercase + string.digits)
        first, last = self._rng.choice(_FIRST), self._rng.choice(_LAST)
        return f"{first}.{last}.{token}@{self._rng.choice(_DOMAINS)}"

    def phone(self) -> str:
        area = f"{self._rng.randint(2, 9)}{self._rng.randint(0, 9)}{self._rng.randint(0, 9)}"
        return f"+1{area}55501{self._rng.randint(0, 99):02d}"

    def card(self) -> str:
        prefix = self._rng.choice(_CARD_PREFIXES)
        body = prefix + "".join(str(self._rng.randint(0, 9)) for _ in range(15 - len(prefix)))
        return body + luhn_check_digit(body)

    def ssn(self) -> str:
        area = self._rng.choice(("666", str(self._rng.randint(900, 999))))
        return f"{area}-{self._rng.randint(1, 99):02d}-{self._rng.randint(1, 9999):04d}"

    def jwt(self) -> str:
        def segment(data: Mapping[str, Any]) -> str:
            text = json.dumps(data, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(text).rstrip(b"=").decode()

        payload = {
            "sub": f"usr_{self._token(12)}",
            "name": f"{self._rng.choice(_FIRST).title()} {self._rng.choice(_LAST).title()}",
            "iat": 1_700_000_000 + self._rng.randint(0, 99_999_999),
            "jti": self._token(16, string.hexdigits.lower()[:16]),
        }
        signature = base64.urlsafe_b64encode(self._rng.randbytes(32)).rstrip(b"=").decode()
        return f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(payload)}.{signature}"

    def bearer(self) -> str:
        return f"at_{self._token(36)}"

    def api_key(self) -> str:
        return f"sk-proj-{self._token(40)}"

    def session_cookie(self) -> str:
        return self._token(43, _BASE64URL)

    def password(self) -> str:
        word = self._rng.choice(("Harbor", "Maple", "Quartz", "Saffron", "Tundra", "Violet"))
        return f"{word}-{self._token(10)}!"


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One canary-carrying request: the profile endpoint with its inputs replaced."""

    index: int
    lane: int
    endpoint: Endpoint
    extra_headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class InjectionPlan:
    seed: str
    requests: tuple[PlannedRequest, ...]
    canaries: tuple[Canary, ...]


def plan_injection(
    endpoints: Sequence[Endpoint], settings: InjectionSettings, generator: CanaryGenerator
) -> InjectionPlan:
    """Every selected endpoint, ``settings.rounds`` times, each input holding a fresh canary."""
    selected = [ep for ep in endpoints if not settings.endpoints or ep.name in settings.endpoints]
    requests: list[PlannedRequest] = []
    canaries: list[Canary] = []
    for round_ in range(settings.rounds):
        for ep in selected:
            index = len(requests)

            def new(kind: str, slot: str, ep: Endpoint = ep, index: int = index) -> Canary:
                canary = generator.new(kind, endpoint=ep.name, slot=slot, request=index)
                canaries.append(canary)
                return canary

            def fill(kind: str, slot: str) -> str:
                if kind == "text":
                    return _sentence({k: new(k, slot).value for k in TEXT_KINDS})
                return new(kind, slot).value

            path_params = {
                name: fill(settings.path_params.get(name, settings.path_param_kind), f"path {{{name}}}")
                for name in ep.path_params
            }
            query = {**ep.query}
            for name, kind in settings.query.items():
                query[name] = fill(kind, f"query {name}")
            body = ep.json
            if ep.has_json:
                body = _fill_body(ep.json, "$", None, settings.body_fields, fill)
            headers: list[tuple[str, str]] = []
            if settings.authorization:
                kind = "jwt" if round_ % 2 == 0 else "bearer"
                headers.append(("Authorization", f"Bearer {new(kind, 'header Authorization').value}"))
            if settings.cookie:
                token = new("session_cookie", "header Cookie").value
                headers.append(("Cookie", f"{settings.cookie}={token}; theme=dark"))
            for name, kind in settings.headers.items():
                headers.append((name, fill(kind, f"header {name}")))
            if settings.user_agent:
                email, phone = new("email", "user-agent").value, new("phone", "user-agent").value
                headers.append(("User-Agent", f"obsconform-pii/1.0 (contact {email}; tel {phone})"))
            variant = replace(ep, path_params=path_params, query=query, json=body)
            requests.append(PlannedRequest(index, round_ % max(1, settings.clients), variant, tuple(headers)))
    return InjectionPlan(generator.seed, tuple(requests), tuple(canaries))


def _sentence(values: Mapping[str, str]) -> str:
    card = values["card"]
    grouped = " ".join(card[i : i + 4] for i in range(0, len(card), 4))
    return (
        f"Hi, I'm {values['email']}, call me on {values['phone']}. My card is {grouped} and my SSN "
        f"is {values['ssn']}. My session token is {values['jwt']} and my key is {values['api_key']}."
    )


def _fill_body(
    value: Any, path: str, key: str | None, overrides: Mapping[str, str], fill: Callable[[str, str], str]
) -> Any:
    if isinstance(value, Mapping):
        return {k: _fill_body(v, f"{path}.{k}", str(k), overrides, fill) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_body(v, f"{path}[{i}]", key, overrides, fill) for i, v in enumerate(value)]
    if isinstance(value, str) and key is not None:
        kind = body_field_kind(key, overrides)
        if kind is not None:
            return fill(kind, f"json {path}")
    return value


@dataclass(frozen=True, slots=True)
class CanaryRegistry:
    """Which canary went where, and what each carrying request got back."""

    seed: str
    canaries: tuple[Canary, ...]
    #: Their URLs and headers carry canaries: not in the repr (tracebacks reach reports).
    exchanges: tuple[HttpExchange, ...] = field(default=(), repr=False)

    def exchange_of(self, canary: Canary) -> HttpExchange | None:
        if 0 <= canary.request < len(self.exchanges):
            return self.exchanges[canary.request]
        return None

    def request_note(self, canary: Canary) -> str:
        """What the carrying request proves: a 429 or a transport error means it was never handled."""
        exchange = self.exchange_of(canary)
        if exchange is None:
            return ""
        if exchange.status_code is None:
            return f"the request failed ({exchange.error[:80]}): the service may never have handled it"
        if exchange.status_code == 429:
            return "the request was answered 429: the service rejected it before handling it"
        return ""

    def summary(self) -> list[dict[str, Any]]:
        """Per request: endpoint, status and the kinds in each input; never a value."""
        rows: dict[int, dict[str, Any]] = {}
        for canary in self.canaries:
            exchange = self.exchange_of(canary)
            row = rows.setdefault(
                canary.request,
                {
                    "request": canary.request,
                    "endpoint": canary.endpoint,
                    "status": exchange.status_code if exchange else None,
                    "inputs": {},
                },
            )
            row["inputs"].setdefault(canary.slot, []).append(canary.kind)
        return [rows[i] for i in sorted(rows)]


def inject_canaries(plan: InjectionPlan, clients: Sequence[httpx.Client]) -> CanaryRegistry:
    """Send every planned request on its lane's client; transport errors are recorded, not raised.

    Raises :class:`HarnessError` when no request got an answer at all.
    """
    if not clients:
        raise ValueError("inject_canaries needs at least one client")
    exchanges = []
    for planned in plan.requests:
        client = clients[planned.lane % len(clients)]
        exchanges.append(send(client, planned.endpoint, extra_headers=dict(planned.extra_headers)))
    if exchanges and all(x.status_code is None for x in exchanges):
        raise HarnessError(
            f"none of the {len(exchanges)} canary requests got an answer; first error: {exchanges[0].error}",
            hint="is the service still running?",
        )
    canaries = tuple(
        with_sent_forms(c, exchanges[c.request].url) if 0 <= c.request < len(exchanges) else c
        for c in plan.canaries
    )
    return CanaryRegistry(plan.seed, canaries, tuple(exchanges))


@dataclass(frozen=True, slots=True, repr=False)
class PiiChannels:
    """Everything the service emitted that the PII checks search, read after the canaries.

    Its repr is counts only: the channels may hold the canaries (tracebacks reach reports).
    """

    log_lines: tuple[LogLine, ...]
    spans: tuple[Span, ...]
    exposition: Exposition
    series: tuple[Mapping[str, str], ...]
    label_values: Mapping[str, tuple[str, ...]]
    #: What the waits saw (for the report's notes).
    waits: Mapping[str, str]
    #: Names of the job's metrics Prometheus stored samples of after the canary requests
    #: (``None``: unknown).
    sampled_names: frozenset[str] | None = None

    def __repr__(self) -> str:
        return (
            f"PiiChannels(log_lines={len(self.log_lines)}, spans={len(self.spans)}, "
            f"exposition={self.exposition.url!r} ({self.exposition.status_code}), series={len(self.series)})"
        )


def _trace_id(exchange: HttpExchange) -> str:
    parts = exchange.sent_traceparent.split("-")
    return parts[1] if len(parts) == 4 else ""


#: Seconds without a new log line after which a log stream without request ids counts as complete.
LOG_QUIET_SECONDS = 0.5


class _QuietStream:
    """Whether a growing count (log lines) has stayed the same for ``period`` seconds."""

    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._period = period
        self._clock = clock
        self._count = -1
        self._since = 0.0
        self.ended_it = False

    def settled(self, count: int) -> bool:
        now = self._clock()
        if count != self._count:
            self._count, self._since = count, now
            return False
        self.ended_it = now - self._since >= self._period
        return self.ended_it


def _wait_soft(probe: Callable[[], tuple[bool | None, str]], awaited: str, timeout: float) -> str:
    """Wait like ``wait_until`` but report a timeout instead of raising: the checks then
    search what did arrive, and say what did not."""
    try:
        wait_until(probe, awaited=awaited, timeout=timeout)
    except WaitTimeout as exc:
        return f"timed out: {exc}"
    return "complete"


def gather_channels(
    registry: CanaryRegistry,
    *,
    read_logs: Callable[[], Sequence[LogLine]],
    store: TraceStore,
    prometheus: PrometheusClient,
    scrape: Callable[[], Exposition],
    correlation_header: str,
    prometheus_job: str,
    traced_endpoints: Iterable[str],
    timeout: float,
    metrics: bool = True,
) -> PiiChannels:
    """Wait (bounded) for the canary requests' telemetry, then read every output channel.

    ``metrics=False`` (the profile's ``metrics.exposed: false``): the service serves
    no Prometheus metrics, so neither ``/metrics`` nor Prometheus is read.

    Each wait that runs out is recorded in :attr:`PiiChannels.waits`, not
    raised: the checks search what did arrive and the suite says what did not.
    A request is known to be logged when its correlation id (the response's
    header) or its trace id appears in a log line.
    """
    injected_at = datetime.now(UTC)
    answered = [x for x in registry.exchanges if x.status_code is not None]
    wanted_ids = {x.response_header(correlation_header) or _trace_id(x) for x in answered} - {""}
    waits: dict[str, str] = {}

    # A service that logs neither correlation nor trace ids (seed 004) cannot be waited for by id:
    # then the wait ends once the log stream has been quiet for LOG_QUIET_SECONDS.
    quiet = _QuietStream(LOG_QUIET_SECONDS)

    def logs_arrived() -> tuple[bool | None, str]:
        lines = read_logs()
        text = "\n".join(line.text() for line in lines)
        missing = [i for i in wanted_ids if i not in text]
        seen = f"{len(wanted_ids) - len(missing)}/{len(wanted_ids)} logged"
        if not missing:
            return True, seen
        if len(missing) == len(wanted_ids) and quiet.settled(len(lines)):
            return True, "no request id in the logs; quiet"
        return None, seen

    waits["logs"] = _wait_soft(logs_arrived, "log lines of the canary requests", timeout)
    if quiet.ended_it:
        waits["logs"] = (
            f"complete by quiet period: the logs carry none of the requests' ids, so the wait ended "
            f"after {LOG_QUIET_SECONDS:g} s without new lines"
        )

    traced = set(traced_endpoints)
    wanted_traces = {_trace_id(x) for x in answered if x.endpoint in traced} - {""}

    def spans_arrived() -> tuple[bool | None, str]:
        missing = wanted_traces - {span.trace_id for span in store.spans()}
        seen = f"{len(wanted_traces) - len(missing)}/{len(wanted_traces)} traces"
        return (True if not missing else None), seen

    waits["spans"] = _wait_soft(spans_arrived, f"spans of the canary requests in {store.describe()}", timeout)
    if not metrics:
        waits["prometheus"] = "not read: the profile declares that the service serves no Prometheus metrics"
        return PiiChannels(
            log_lines=tuple(read_logs()),
            spans=tuple(store.spans()),
            exposition=Exposition("", 0, "", "", (), "prometheus-text", "metrics.exposed: false"),
            series=(),
            label_values={},
            waits=waits,
            sampled_names=frozenset(),
        )
    try:
        wait_for_target_up(prometheus, prometheus_job, timeout=timeout, since=injected_at)
        waits["prometheus"] = "complete: scraped after the canary requests"
    except WaitTimeout as exc:
        waits["prometheus"] = f"timed out: {exc}"
    series, label_values = _read_prometheus(prometheus, prometheus_job)
    sampled = _sampled_names(prometheus, prometheus_job, since=injected_at, waits=waits)
    return PiiChannels(
        log_lines=tuple(read_logs()),
        spans=tuple(store.spans()),
        exposition=scrape(),
        series=tuple(series),
        label_values=label_values,
        waits=waits,
        sampled_names=sampled,
    )


def _read_prometheus(
    prometheus: PrometheusClient, job: str
) -> tuple[list[dict[str, str]], dict[str, tuple[str, ...]]]:
    """The job's series, and every value of every label name they use (label values API)."""
    series = prometheus.series([f'{{job="{job}"}}'])
    names = sorted({name for labels in series for name in labels})
    return series, {name: tuple(prometheus.label_values(name)) for name in names}


def _sampled_names(
    prometheus: PrometheusClient, job: str, *, since: datetime, waits: dict[str, str]
) -> frozenset[str] | None:
    """Names of the job's metrics Prometheus stored samples of since ``since`` (the canary
    requests); ``None`` if it cannot say (why goes into ``waits``). The series API also
    lists what no scrape after the canaries brought: series of a target that went down
    since, and series whose samples were never stored (a scrape Prometheus drops as a
    whole leaves them)."""
    window = max(1, math.ceil((datetime.now(UTC) - since).total_seconds()) + 1)
    # last_over_time keeps the metric name (the other *_over_time functions drop it).
    expr = f'count by (__name__) (last_over_time({{job="{job}"}}[{window}s]))'
    try:
        found = prometheus.query(expr)
    except HarnessError as exc:
        waits["prometheus samples"] = f"unknown (every listed series counts): {exc}"
        return None
    return frozenset(str(row["metric"].get("__name__", "")) for row in found)
