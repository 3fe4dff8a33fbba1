"""Links from the report's trace ids to the trace in Jaeger's UI.

When Jaeger ran (local or container mode: the report's ``stack.components``
lists ``jaeger`` with its ``url``) or the profile names the team's Jaeger in
external mode (``containers.external.jaeger_ui_url``, else the Jaeger trace
store's URL: the trace-store component's ``ui_url``), every trace id in the
evidence is linked to ``{jaeger_ui}/trace/{trace_id}``, the route of Jaeger's
UI for one trace. A Jaeger whose component says ``"ui": false`` (a binary built
without the UI assets serves a placeholder page there, as the one
scripts/build-telemetry builds does) is linked at ``{jaeger}/api/traces/{trace_id}``
instead: the query service's JSON of that trace, the API the UI itself reads.
Pure: the report dict in, URLs and rewritten text out; the renderers escape
what they embed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["TRACE_KEYS", "TraceLinks", "jaeger_link_base", "jaeger_ui_url", "trace_ids_in", "trace_links"]

#: Evidence keys whose values are trace ids (a string, or a list of them).
TRACE_KEYS = frozenset({"trace_id", "trace_ids", "expected_trace_id", "traces"})
#: A W3C trace id as the report writes it: 32 lowercase hex digits, not all zero.
_TRACE_ID = re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{32}(?![0-9a-fA-F])")
#: Component states in which Jaeger was not there to link to.
_ABSENT = frozenset({"not running", "not available", "not configured", "failed"})
_MAX_DEPTH = 8
#: What a base URL may contain: nothing that ends a Markdown link, an HTML attribute or a table cell.
_SAFE_URL = re.compile(r"[A-Za-z0-9._~:/?#\[\]!$&*+,;=%-]+")


def _is_trace_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_TRACE_ID.fullmatch(value)) and value != "0" * 32


def _http_url(value: Any) -> str:
    """``value`` without a trailing slash if it is an absolute http(s) URL, else ``""``."""
    if not isinstance(value, str) or not value.strip():
        return ""
    url = value.strip().rstrip("/")
    if not _SAFE_URL.fullmatch(url):
        return ""
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else ""


def jaeger_link_base(stack: Mapping[str, Any]) -> tuple[str, bool]:
    """(Jaeger's base URL, whether it serves its UI) from the report's ``stack`` section;
    ``("", False)`` when no Jaeger ran or was named."""
    components = stack.get("components")
    if not isinstance(components, list):
        return "", False
    for c in components:
        if not isinstance(c, Mapping) or c.get("status") in _ABSENT:
            continue
        if c.get("name") == "jaeger" and (url := _http_url(c.get("url"))):
            return url, c.get("ui") is not False
        if c.get("name") == "trace-store" and (url := _http_url(c.get("ui_url"))):
            return url, True
    return "", False


def jaeger_ui_url(stack: Mapping[str, Any]) -> str:
    """The Jaeger UI's base URL from the report's ``stack`` section, or ``""`` (also for a
    Jaeger without its UI)."""
    base, ui = jaeger_link_base(stack)
    return base if ui else ""


@dataclass(frozen=True, slots=True)
class TraceLinks:
    """Jaeger links for one report (``base``: Jaeger's URL, no trailing slash; ``ui``: link
    the UI's trace page, else the query API's JSON of the trace)."""

    base: str
    ui: bool = True

    def url(self, trace_id: Any) -> str | None:
        """The trace's page, or ``None`` for anything that is not a trace id."""
        if not _is_trace_id(trace_id):
            return None
        return f"{self.base}/{'trace' if self.ui else 'api/traces'}/{quote(trace_id)}"

    def rewrite(self, text: str, known: Iterable[str], link: Callable[[str, str], str]) -> str:
        """``text`` with every trace id of ``known`` in it replaced by ``link(trace_id, url)``.

        Only ids the evidence names as trace ids are linked: a hex string in a
        message may be something else (a span id pair, a canary)."""
        wanted = {t for t in known if _is_trace_id(t)}
        if not wanted:
            return text

        def replace(m: re.Match[str]) -> str:
            tid = m.group(0)
            url = self.url(tid) if tid in wanted else None
            return link(tid, url) if url else tid

        return _TRACE_ID.sub(replace, text)


def trace_links(report: Mapping[str, Any]) -> TraceLinks | None:
    """The report's trace links, or ``None`` when no Jaeger UI is known."""
    stack = report.get("stack")
    base, ui = jaeger_link_base(stack) if isinstance(stack, Mapping) else ("", False)
    return TraceLinks(base, ui) if base else None


def trace_ids_in(node: Any, key: str = "", depth: int = 0) -> list[str]:
    """Every trace id under a :data:`TRACE_KEYS` key in ``node`` (evidence, nested), first seen first."""
    found: dict[str, None] = {}

    def walk(value: Any, key: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, str(k), depth + 1)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v, key, depth + 1)
        elif key in TRACE_KEYS and _is_trace_id(value):
            found.setdefault(value)

    walk(node, key, depth)
    return list(found)
