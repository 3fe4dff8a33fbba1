"""Scrape a ``/metrics`` endpoint directly and parse it with prometheus-client.

This is the harness's own view of an exposition, independent of Prometheus:
the checks need the exact bytes the service served (HELP/TYPE lines, names,
the negotiated format), which Prometheus's storage no longer shows.

A malformed, oversized or non-200 exposition is the *service's* problem, so it
never raises: :attr:`Exposition.parse_error` says what is wrong and the checks
turn it into a finding. Only a failure to reach the endpoint at all (connection
refused, DNS, timeout) raises :class:`~conformance._exceptions.HarnessError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, cast

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser

from conformance._exceptions import HarnessError, LimitExceeded
from conformance.collect._textformat import parse_prometheus_text as _parse_prometheus_text

__all__ = [
    "ACCEPT_OPENMETRICS",
    "ACCEPT_PROMETHEUS_TEXT",
    "DEFAULT_MAX_BYTES",
    "Exposition",
    "ExpositionFormat",
    "parse_exposition",
    "scrape_metrics",
]

ExpositionFormat = Literal["prometheus-text", "openmetrics"]

#: Bodies larger than this are not parsed; a service exposing 50 MiB of metrics has a cardinality problem.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

#: What Prometheus itself sends when OpenMetrics is wanted (preferred, text as fallback).
ACCEPT_OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
#: The classic text format only.
ACCEPT_PROMETHEUS_TEXT = "text/plain;version=0.0.4"

_OPENMETRICS_MEDIA_TYPE = "application/openmetrics-text"
_PROTOBUF_MEDIA_TYPE = "application/vnd.google.protobuf"

# The OpenMetrics parser module carries no annotations; pin the type we rely on.
_parse_openmetrics_text = cast(
    Callable[[str], Iterable[Metric]], openmetrics_parser.text_string_to_metric_families
)


@dataclass(frozen=True, slots=True)
class Exposition:
    """One scrape of a metrics endpoint, as served and as parsed.

    ``parse_error`` is empty when the body parsed cleanly; otherwise it says why
    ``families`` is empty (HTTP status, oversized body, invalid UTF-8, or the
    parser's own message).
    """

    url: str
    status_code: int
    content_type: str
    text: str
    families: tuple[Metric, ...]
    format: ExpositionFormat
    parse_error: str = ""

    @property
    def ok(self) -> bool:
        return not self.parse_error

    def family(self, name: str) -> Metric | None:
        """The family called ``name`` (as the parser names it, e.g. without ``_total``)."""
        return next((f for f in self.families if f.name == name), None)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def parse_exposition(text: str, content_type: str) -> tuple[tuple[Metric, ...], ExpositionFormat, str]:
    """Parse ``text`` with the parser the ``content_type`` calls for: prometheus-client's
    OpenMetrics parser, or for the text format :func:`parse_prometheus_text` (the same
    result as prometheus-client's text parser, faster).

    Returns ``(families, format, parse_error)`` and never raises: an empty or
    missing content type means the classic text format, as it does for
    Prometheus; a protobuf content type is reported as unsupported.
    """
    mt = _media_type(content_type)
    if mt == _OPENMETRICS_MEDIA_TYPE:
        fmt: ExpositionFormat = "openmetrics"
        parse = _parse_openmetrics_text
    else:
        fmt = "prometheus-text"
        parse = _parse_prometheus_text
    if mt == _PROTOBUF_MEDIA_TYPE:
        return (), fmt, f"unsupported exposition content type {content_type!r} (protobuf)"
    try:
        families = tuple(parse(text))
    # The parsers' failure modes are not part of their contract (ValueError mostly, but also
    # IndexError/KeyError/TypeError on odd input); any of them means "not a valid exposition".
    except Exception as exc:
        return (), fmt, f"{fmt} parser: {type(exc).__name__}: {exc}"[:2000]
    return families, fmt, ""


def scrape_metrics(
    url: str,
    *,
    client: httpx.Client,
    accept_openmetrics: bool = False,
    timeout: float = 5.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    sample_limit: int = 0,
    limits_raise: bool = False,
) -> Exposition:
    """GET ``url`` and parse the exposition it serves.

    The body is streamed and reading stops after ``max_bytes``, so a runaway
    endpoint cannot exhaust memory; such a body is kept (truncated) in ``text``
    but not parsed. ``timeout`` bounds the whole transfer, headers to last
    byte, as Prometheus's ``scrape_timeout`` does, so an endpoint that trickles
    its body forever cannot hold the run. Raises :class:`HarnessError` naming
    ``url`` when the endpoint cannot be reached or the transfer fails, and
    :class:`LimitExceeded` when it runs out of time; with ``limits_raise`` also
    when the body passes ``max_bytes`` or (``sample_limit`` > 0) carries more
    samples than that, the way Prometheus fails such a scrape.
    """
    accept = ACCEPT_OPENMETRICS if accept_openmetrics else ACCEPT_PROMETHEUS_TEXT
    started = time.monotonic()
    try:
        with client.stream("GET", url, headers={"Accept": accept}, timeout=timeout) as response:
            body, overflow = _read_capped(response, max_bytes, started + timeout, sample_limit)
            status = response.status_code
            content_type = response.headers.get("content-type", "")
    except httpx.TimeoutException as exc:
        raise _scrape_timeout(url, timeout, time.monotonic() - started, f"{type(exc).__name__}") from exc
    except _Deadline as exc:
        elapsed = time.monotonic() - started
        raise _scrape_timeout(url, timeout, elapsed, f"{exc.received} bytes received") from None
    except httpx.HTTPError as exc:
        raise HarnessError(
            f"could not scrape {url}: {type(exc).__name__}: {exc}",
            hint="is the service running and listening on that address?",
        ) from exc

    try:
        text = body.decode("utf-8")
        decode_error = ""
    except UnicodeDecodeError as exc:
        text = body.decode("utf-8", errors="replace")
        decode_error = f"body is not valid UTF-8: {exc}"

    fmt: ExpositionFormat = (
        "openmetrics" if _media_type(content_type) == _OPENMETRICS_MEDIA_TYPE else "prometheus-text"
    )
    oversized = overflow == "bytes"
    if status == 200 and overflow and limits_raise:
        if oversized:
            raise LimitExceeded(
                f"/metrics at {url}",
                limit_key="prometheus.body_size_limit",
                limit=_size(max_bytes),
                seen=f"read stopped at {_size(len(body))}",
                fix="reduce what the endpoint serves",
            )
        raise LimitExceeded(
            f"/metrics at {url}",
            limit_key="prometheus.sample_limit",
            limit=f"{sample_limit} samples",
            seen=f"more than {sample_limit} sample lines in the first {_size(len(body))}",
            fix="reduce the series the service exposes",
        )
    if status != 200:
        error = f"HTTP {status} from {url}"
    elif oversized:
        error = f"exposition larger than {max_bytes} bytes; read stopped there and the body was not parsed"
    elif decode_error:
        error = decode_error
    else:
        families, fmt, error = parse_exposition(text, content_type)
        return Exposition(url, status, content_type, text, families, fmt, error)
    return Exposition(url, status, content_type, text, (), fmt, error)


class _Deadline(Exception):
    def __init__(self, received: int) -> None:
        self.received = received


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}".removesuffix(".0") + " MiB" if n >= 1024 * 1024 else f"{n} bytes"


def _scrape_timeout(url: str, timeout: float, elapsed: float, seen: str) -> LimitExceeded:
    return LimitExceeded(
        f"scrape of {url}",
        limit_key="prometheus.scrape_timeout",
        limit=f"its {timeout:g} s deadline",
        seen=seen,
        after=elapsed,
        fix="make the endpoint answer in time",
    )


def _read_capped(
    response: httpx.Response, max_bytes: int, deadline: float = float("inf"), sample_limit: int = 0
) -> tuple[bytearray, str]:
    """Up to ``max_bytes`` of the body, and why reading stopped early: ``""`` (it did not),
    ``"bytes"`` (there was more) or ``"samples"`` (more than ``sample_limit`` sample lines).

    Raises ``_Deadline`` once ``deadline`` (monotonic) passes. Sample lines are counted as
    lines that are neither comments nor empty, chunk by chunk, so a body of millions of
    series stops being read as soon as it passes the limit, without parsing it.
    """
    # One growing buffer, not a list joined at the end: a body at the cap is held once, not twice.
    body = bytearray()
    samples = 0
    previous = b"\n"
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise _Deadline(len(body))
        room = max_bytes - len(body)
        if len(chunk) > room:
            body += chunk[:room]
            return body, "bytes"
        body += chunk
        if sample_limit:
            joined = previous + chunk
            # Line starts in this chunk, minus those that start a comment or an empty line.
            samples += joined.count(b"\n", 0, len(joined) - 1) - joined.count(b"\n#") - joined.count(b"\n\n")
            previous = chunk[-1:]
            if samples > sample_limit:
                return body, "samples"
    return body, ""
