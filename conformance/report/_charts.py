"""Inline SVG charts for the HTML report, drawn from the JSON report's evidence.

Each chart is optional: it appears only when some result carries evidence of
its shape (found anywhere inside a result's evidence, a few levels deep):

* latency percentiles per endpoint (the load gate's PERF evidence)::

      {"endpoint": "POST /chat/completions", "p50_ms": 120, "p95_ms": 480, "p99_ms": 900,
       "rps": 41.5, "p95_target_ms": 2000}          # rps and p95_target_ms optional

* series growth under the cardinality probe (MET evidence)::

      {"metric": "http_requests_total", "series_before": 40, "series_after_first_half": 52,
       "series_after": 52, "source": "/metrics"}    # first half and source optional

  A bounded metric gains series while the probe first reaches each route and
  status, then stops; growth in the second half is what grows without bound,
  so that is what the chart colours red.

Everything drawn is escaped: metric and endpoint names come from the service.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

__all__ = [
    "GrowthRow",
    "LatencyRow",
    "find_growth",
    "find_latency",
    "growth_svg",
    "latency_svg",
    "status_bar_svg",
]

MAX_ROWS = 15
_WIDTH = 960
_LABEL_W = 300
_SEARCH_DEPTH = 4


@dataclass(frozen=True, slots=True)
class LatencyRow:
    endpoint: str
    p50: float | None
    p95: float | None
    p99: float | None
    rps: float | None = None
    p95_target: float | None = None
    requirement: str = ""


@dataclass(frozen=True, slots=True)
class GrowthRow:
    metric: str
    before: int
    after: int
    source: str = ""
    requirement: str = ""
    #: Series after the first half of the probe, when the evidence has it.
    mid: int | None = None

    @property
    def growth(self) -> int:
        return self.after - self.before

    @property
    def late_growth(self) -> int:
        """New series in the second half (the whole probe when the halves are unknown)."""
        return self.after - (self.mid if self.mid is not None else self.before)


def _walk(node: Any, depth: int = 0) -> Iterator[Mapping[str, Any]]:
    if depth > _SEARCH_DEPTH:
        return
    if isinstance(node, Mapping):
        yield node
        for value in node.values():
            yield from _walk(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, depth + 1)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def find_latency(report: Mapping[str, Any]) -> list[LatencyRow]:
    """Latency rows (one per endpoint, first seen wins), PERF results first."""
    rows: dict[str, LatencyRow] = {}
    results = sorted(report.get("results", []), key=lambda r: 0 if r.get("area") == "Load" else 1)
    for result in results:
        for item in _walk(result.get("evidence", [])):
            endpoint = item.get("endpoint")
            if not isinstance(endpoint, str) or endpoint in rows:
                continue
            p50, p95, p99 = (_number(item.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms"))
            if p50 is None and p95 is None and p99 is None:
                continue
            rows[endpoint] = LatencyRow(
                endpoint,
                p50,
                p95,
                p99,
                _number(item.get("rps")),
                _number(item.get("p95_target_ms")),
                str(result.get("id", "")),
            )
    return list(rows.values())


def find_growth(report: Mapping[str, Any]) -> list[GrowthRow]:
    """Series-growth rows (one per metric and source), biggest growth first."""
    rows: dict[tuple[str, str], GrowthRow] = {}
    for result in report.get("results", []):
        for item in _walk(result.get("evidence", [])):
            metric = item.get("metric")
            before, after = _number(item.get("series_before")), _number(item.get("series_after"))
            if not isinstance(metric, str) or before is None or after is None:
                continue
            source = str(item.get("source", ""))
            mid = _number(item.get("series_after_first_half"))
            rows.setdefault(
                (metric, source),
                GrowthRow(
                    metric,
                    int(before),
                    int(after),
                    source,
                    str(result.get("id", "")),
                    None if mid is None else int(mid),
                ),
            )
    return sorted(rows.values(), key=lambda r: (-r.late_growth, -r.growth, -r.after, r.metric, r.source))


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return float(candidate)
    return float(10 ** (exponent + 1))


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _axis(top: float, height: float, x0: float, width: float, unit: str) -> list[str]:
    parts = []
    for i in range(5):
        value = top * i / 4
        x = x0 + width * i / 4
        parts.append(f'<line x1="{x:.1f}" y1="24" x2="{x:.1f}" y2="{height - 18:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{height - 4:.1f}" text-anchor="middle" class="tick">'
            f"{escape(_fmt(value))}{escape(unit)}</text>"
        )
    return parts


_SERIES = (("p50", "p50", "#9ecae1"), ("p95", "p95", "#4292c6"), ("p99", "p99", "#08519c"))


def latency_svg(rows: list[LatencyRow]) -> str:
    """Grouped horizontal bars: p50/p95/p99 per endpoint, a red tick at the p95 target."""
    rows = rows[:MAX_ROWS]
    bar, gap = 9, 14
    group = bar * 3 + gap
    plot_x, plot_w = _LABEL_W, _WIDTH - _LABEL_W - 110
    height = 24 + group * len(rows) + 22
    values = [v for r in rows for v in (r.p50, r.p95, r.p99, r.p95_target) if v is not None]
    top = _nice_max(max(values, default=1.0))
    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {height}" width="100%" role="img" '
        f'aria-label="Latency percentiles per endpoint" xmlns="http://www.w3.org/2000/svg">',
        *_axis(top, height, plot_x, plot_w, " ms"),
    ]
    for i, (label, _, color) in enumerate(_SERIES):
        lx = plot_x + i * 70
        parts.append(f'<rect x="{lx}" y="4" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{lx + 14}" y="13" class="legend">{label}</text>')
    parts.append(f'<text x="{plot_x + 220}" y="13" class="legend target">| p95 target</text>')
    for n, row in enumerate(rows):
        y0 = 24 + n * group + gap / 2
        parts.append(
            f'<text x="{plot_x - 8}" y="{y0 + bar * 1.5 + 4:.1f}" text-anchor="end" class="label">'
            f"<title>{escape(row.endpoint)}</title>{escape(_clip(row.endpoint))}</text>"
        )
        for k, (label, attr, color) in enumerate(_SERIES):
            value = getattr(row, attr)
            if value is None:
                continue
            w = max(1.0, plot_w * value / top)
            y = y0 + k * bar
            parts.append(
                f'<rect x="{plot_x}" y="{y:.1f}" width="{w:.1f}" height="{bar - 1}" fill="{color}">'
                f"<title>{escape(row.endpoint)} {label}: {escape(_fmt(value))} ms</title></rect>"
            )
            parts.append(
                f'<text x="{plot_x + w + 4:.1f}" y="{y + bar - 1.5:.1f}" class="value">'
                f"{escape(_fmt(value))}</text>"
            )
        if row.p95_target is not None:
            tx = plot_x + plot_w * row.p95_target / top
            parts.append(
                f'<line x1="{tx:.1f}" y1="{y0 - 2:.1f}" x2="{tx:.1f}" y2="{y0 + bar * 3 + 2:.1f}" '
                'class="target">'
                f"<title>p95 target {escape(_fmt(row.p95_target))} ms</title></line>"
            )
        if row.rps is not None:
            parts.append(
                f'<text x="{_WIDTH - 4}" y="{y0 + bar * 1.5 + 4:.1f}" text-anchor="end" class="value">'
                f"{escape(_fmt(row.rps))} req/s</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def growth_svg(rows: list[GrowthRow]) -> str:
    """A dumbbell per metric: series before (grey) → after the first half (tick) → after
    the probe (green when the second half added none, red when it did)."""
    rows = rows[:MAX_ROWS]
    step = 22
    plot_x, plot_w = _LABEL_W, _WIDTH - _LABEL_W - 140
    height = 24 + step * len(rows) + 24
    top = _nice_max(max((max(r.before, r.after) for r in rows), default=1))
    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {height}" width="100%" role="img" '
        f'aria-label="Series per metric before and after the cardinality probe" '
        f'xmlns="http://www.w3.org/2000/svg">',
        *_axis(top, height, plot_x, plot_w, ""),
        f'<circle cx="{plot_x + 5}" cy="9" r="4.5" class="before"/>'
        f'<text x="{plot_x + 14}" y="13" class="legend">before</text>'
        f'<line x1="{plot_x + 70}" y1="3" x2="{plot_x + 70}" y2="15" class="mid"/>'
        f'<text x="{plot_x + 76}" y="13" class="legend">after 1st half</text>'
        f'<circle cx="{plot_x + 180}" cy="9" r="4.5" class="after"/>'
        f'<text x="{plot_x + 189}" y="13" class="legend">after: bounded</text>'
        f'<circle cx="{plot_x + 300}" cy="9" r="4.5" class="after grew"/>'
        f'<text x="{plot_x + 309}" y="13" class="legend">after: still growing in the 2nd half</text>',
    ]
    for n, row in enumerate(rows):
        y = 24 + n * step + step / 2
        label = row.metric + (f" · {row.source}" if row.source else "")
        bx = plot_x + plot_w * row.before / top
        ax = plot_x + plot_w * row.after / top
        grew = "grew" if row.late_growth > 0 else ""
        if row.mid is not None:
            mx = plot_x + plot_w * row.mid / top
            path = f"{row.before} → {row.mid} → {row.after}"
            mid = f'<line x1="{mx:.1f}" y1="{y - 6:.1f}" x2="{mx:.1f}" y2="{y + 6:.1f}" class="mid"/>'
        else:
            path, mid = f"{row.before} → {row.after}", ""
        parts.append(
            f'<text x="{plot_x - 8}" y="{y + 4:.1f}" text-anchor="end" class="label">'
            f"<title>{escape(label)}</title>{escape(_clip(label))}</text>"
            f'<line x1="{bx:.1f}" y1="{y:.1f}" x2="{ax:.1f}" y2="{y:.1f}" class="span {grew}"/>'
            f'<circle cx="{bx:.1f}" cy="{y:.1f}" r="4.5" class="before"/>{mid}'
            f'<circle cx="{ax:.1f}" cy="{y:.1f}" r="4.5" class="after {grew}">'
            f"<title>{escape(label)}: {path} series</title></circle>"
            f'<text x="{_WIDTH - 4}" y="{y + 4:.1f}" text-anchor="end" class="value {grew}">'
            f"{escape(path)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


STATUS_COLORS = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#bf8700", "skipped": "#8c959f"}


def status_bar_svg(counts: Mapping[str, int]) -> str:
    """One stacked bar of the statuses' shares."""
    total = sum(counts.get(s, 0) for s in STATUS_COLORS) or 1
    x = 0.0
    parts = [
        '<svg class="statusbar" viewBox="0 0 1000 14" preserveAspectRatio="none" width="100%" height="14" '
        'role="img" aria-label="share of statuses" xmlns="http://www.w3.org/2000/svg">'
    ]
    for status, color in STATUS_COLORS.items():
        n = counts.get(status, 0)
        if not n:
            continue
        w = 1000 * n / total
        parts.append(
            f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="14" fill="{color}">'
            f"<title>{n} {status}</title></rect>"
        )
        x += w
    parts.append("</svg>")
    return "".join(parts)
