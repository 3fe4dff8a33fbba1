"""The single-file HTML report: what a release manager reads.

Built from the JSON report dict (the source of truth), so ``conformance
report`` can re-render it from a ``conformance-report.json`` later. One file,
no external assets, no script: inline CSS and inline SVG. A
Content-Security-Policy meta tag forbids every load and every script, and
everything rendered passes through :func:`html.escape` — the evidence quotes
the service's output, which is hostile by assumption.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from html import escape
from typing import Any

from conformance.report._charts import (
    find_growth,
    find_latency,
    growth_svg,
    latency_svg,
    status_bar_svg,
)
from conformance.report._links import TRACE_KEYS, TraceLinks, trace_ids_in, trace_links

__all__ = ["render_html"]

STATUSES = ("passed", "failed", "error", "skipped")
#: Keys whose string values are identifiers, shown monospaced.
_ID_KEYS = frozenset(
    {"trace_id", "span_id", "parent_span_id", "parent_id", "correlation_id", "run_id", "expected_trace_id"}
)
_PRE_KEYS = frozenset({"output", "stdout", "stderr", "excerpt", "body", "promtool_output", "traceback"})
_MAX_ROWS = 25
_MAX_ROWS_HIDDEN = 200
_MAX_SCALARS = 40
_MAX_STRING = 4000
_MAX_DEPTH = 4
_FINDINGS_SHOWN = 10
#: The Jaeger UI links of the report being rendered (set by :func:`render_html`).
_LINKS: ContextVar[TraceLinks | None] = ContextVar("trace_links", default=None)
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

_CSS = """
:root{--pass:#1a7f37;--fail:#cf222e;--err:#9a6700;--skip:#6e7781;--base:#8250df;--ink:#1f2328;
--mute:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--card:#fff}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;
color:var(--ink);
background:var(--bg)}
main{max-width:1200px;margin:0 auto;padding:0 20px 40px}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-size:12.5px}
h2{font-size:18px;margin:28px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 8px}
header.verdict{color:#fff;padding:22px 20px 18px;margin:0 -20px 0}
header.passed{background:linear-gradient(135deg,#1a7f37,#2da44e)}
header.failed{background:linear-gradient(135deg,#a40e26,#cf222e)}
header.error{background:linear-gradient(135deg,#7d4e00,#bf8700)}
header .kicker{opacity:.85;font-size:13px;letter-spacing:.04em;text-transform:uppercase}
header h1{margin:2px 0 4px;font-size:30px;line-height:1.15}
header .why{font-size:16px;margin:4px 0 10px}
header .meta{display:flex;flex-wrap:wrap;gap:4px 18px;font-size:12.5px;opacity:.92}
header .meta b{font-weight:600}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:10px;margin:16px 0 8px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.tile .n{font-size:26px;font-weight:650}.tile .l{color:var(--mute);font-size:12.5px}
.tile.passed .n{color:var(--pass)}.tile.failed .n{color:var(--fail)}.tile.error .n{color:var(--err)}
.tile.skipped .n{color:var(--skip)}.tile.baselined .n{color:var(--base)}
.statusbar{display:block;border-radius:4px;overflow:hidden;margin:6px 0 4px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:10px 0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:5px 8px;border-bottom:1px solid var(--line)}
th{font-weight:600;color:var(--mute);font-size:12.5px;background:#f6f8fa}
.matrix td.num{text-align:center;font-weight:600;width:80px}
.matrix td.z{color:#c3c9d0;font-weight:400}
.matrix td.failed:not(.z){background:#ffebe9;color:var(--fail)}
.matrix td.error:not(.z){background:#fff8c5;color:var(--err)}
.matrix td.passed:not(.z){color:var(--pass)}
.chips{display:flex;flex-wrap:wrap;gap:3px}
.chip{display:inline-block;font:600 11px/1 ui-monospace,Menlo,Consolas,monospace;padding:4px 5px;
border-radius:4px;
color:#fff}
.chip.passed{background:var(--pass)}.chip.failed{background:var(--fail)}.chip.error{background:var(--err)}
.chip.skipped{background:var(--skip)}.chip.baselined{background:var(--base)}
.badge{display:inline-block;font-size:11px;font-weight:700;padding:2px 7px;border-radius:10px;color:#fff;
text-transform:uppercase;letter-spacing:.03em;white-space:nowrap}
.badge.passed{background:var(--pass)}.badge.failed{background:var(--fail)}.badge.error{background:var(--err)}
.badge.skipped{background:var(--skip)}.badge.baselined{background:var(--base)}
.badge.stale,.badge.expired{background:var(--fail)}.badge.matched{background:var(--base)}
.badge.unverified,.badge.not_in_run{background:var(--skip)}
.lvl{display:inline-block;font-size:11px;font-weight:700;padding:1px 6px;border-radius:4px;border:1px solid}
.lvl.MUST{color:#a40e26;border-color:#ffcecb;background:#fff5f5}
.lvl.SHOULD{color:#59636e;border-color:var(--line);background:#fff}
details.req{background:var(--card);border:1px solid var(--line);border-left:4px solid var(--skip);
border-radius:6px;margin:6px 0}
details.req.passed{border-left-color:var(--pass)}details.req.failed{border-left-color:var(--fail)}
details.req.error{border-left-color:var(--err)}details.req.baselined{border-left-color:var(--base)}
details.req>summary{cursor:pointer;padding:8px 12px;display:flex;gap:10px;align-items:baseline;
list-style:none}
details.req>summary::-webkit-details-marker{display:none}
details.req>summary .id{font-weight:700;font-family:ui-monospace,Menlo,Consolas,monospace;min-width:72px}
details.req>summary .t{flex:1}
details.req>summary .d{color:var(--mute);font-size:12px;white-space:nowrap}
.body{padding:4px 14px 12px;border-top:1px solid var(--line)}
.src{color:var(--mute);font-size:12.5px;margin:6px 0}
.msg{margin:8px 0;padding:8px 10px;border-radius:6px;background:#f6f8fa;white-space:pre-wrap;
word-break:break-word}
.failed .msg{background:#ffebe9}.error .msg{background:#fff8c5}
.baselinenote{margin:8px 0;padding:8px 10px;border-radius:6px;background:#fbefff;color:#512a97}
ol.findings{padding-left:22px;margin:6px 0}ol.findings>li{margin:6px 0}
.fmsg{font-weight:600;white-space:pre-wrap;word-break:break-word}
pre{margin:4px 0;padding:8px 10px;background:#f6f8fa;border:1px solid var(--line);border-radius:6px;
white-space:pre-wrap;word-break:break-all;max-height:320px;overflow:auto}
pre.log{background:#0d1117;color:#e6edf3;border-color:#0d1117}
pre.log .ln{color:#7d8590;user-select:none;margin-right:10px}
table.kv{width:auto;min-width:50%;margin:4px 0}
table.kv th{width:1%;white-space:nowrap;background:none}
table.kv td,table.kv th,table.rows td,table.rows th{padding:3px 8px;font-size:12.5px}
table.rows{margin:4px 0}
.more{color:var(--mute);font-size:12px}
code.id{background:#ddf4ff;color:#0a3069;padding:1px 4px;border-radius:4px;word-break:break-all}
ul.tree{list-style:none;padding-left:18px;margin:2px 0}ul.tree li{margin:2px 0}
ul.tree li::before{content:"└ ";color:var(--mute)}
.muted{color:var(--mute)}
.attention td:first-child{width:80px}.attention td:nth-child(2){white-space:nowrap}
.attention .chips{margin-top:4px}
.note{color:var(--mute);font-size:12.5px}
.toolbar{display:flex;gap:14px;align-items:center;margin:8px 0;font-size:13px}
body:has(#only-problems:checked) details.req.passed,
body:has(#only-problems:checked) details.req.skipped{display:none}
svg.chart{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px}
svg .grid{stroke:#eaeef2}svg .tick,svg .legend,svg .value{font:11px system-ui,sans-serif;fill:#59636e}
svg .label{font:12px ui-monospace,Menlo,Consolas,monospace;fill:#1f2328}
svg .target{stroke:#cf222e;stroke-width:2;fill:#cf222e}svg text.target{stroke:none}
svg .before{fill:#8c959f}svg .after{fill:#1a7f37}svg .after.grew{fill:#cf222e}
svg .span{stroke:#8c959f;stroke-width:2}svg .span.grew{stroke:#cf222e}svg .mid{stroke:#1f2328;stroke-width:2}
svg .value.grew{fill:#cf222e;font-weight:700}
footer{color:var(--mute);font-size:12px;margin-top:30px;border-top:1px solid var(--line);padding-top:10px}
@media print{body{background:#fff}details.req{break-inside:avoid}.toolbar{display:none}}
"""


def _e(value: Any) -> str:
    """HTML-escaped, with control and bidi characters (from service output) shown as ``\\xNN``."""
    text = str(value)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() or ch in "\n\t" else f"\\x{ord(ch):02x}" for ch in text)
    return escape(text, quote=True)


def _anchor(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower() or "x"


def _is_baselined(result: Mapping[str, Any]) -> bool:
    return result.get("status") == "failed" and bool(result.get("baselined"))


def _display_status(result: Mapping[str, Any]) -> str:
    return "baselined" if _is_baselined(result) else str(result.get("status", "error"))


def _duration(seconds: Any) -> str:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value // 60:.0f} min {value % 60:.0f} s"


# --------------------------------------------------------------------------- values


def _string(value: str, key: str = "") -> str:
    if len(value) > _MAX_STRING:
        value = value[:_MAX_STRING] + f"… (+{len(value) - _MAX_STRING} chars)"
    links = _LINKS.get()
    if key in TRACE_KEYS and links is not None and (url := links.url(value)):
        return _trace_link(value, url)
    if key in _ID_KEYS:
        return f'<code class="id">{_e(value)}</code>'
    if key in _PRE_KEYS or "\n" in value or len(value) > 160:
        return f"<pre>{_e(value)}</pre>"
    return _e(value)


def _trace_link(trace_id: str, url: str) -> str:
    return (
        f'<a class="trace" href="{_e(url)}" rel="noreferrer" title="open in Jaeger">'
        f'<code class="id">{_e(trace_id)}</code></a>'
    )


def _scalar(value: Any, key: str = "") -> str:
    if value is None:
        return '<span class="muted">—</span>'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _e(f"{value:g}" if isinstance(value, float) else value)
    return _string(str(value), key)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _value(value: Any, key: str = "", depth: int = 0) -> str:
    if _is_scalar(value):
        return _scalar(value, key)
    if depth >= _MAX_DEPTH:
        return f"<pre>{_e(json.dumps(value, default=str)[:_MAX_STRING])}</pre>"
    if isinstance(value, Mapping):
        if not value:
            return '<span class="muted">{}</span>'
        return _kv(value, depth + 1)
    if isinstance(value, list | tuple):
        if not value:
            return '<span class="muted">none</span>'
        if all(_is_scalar(v) for v in value):
            shown = ", ".join(_scalar(v, key) for v in value[:_MAX_SCALARS])
            more = len(value) - _MAX_SCALARS
            return shown + (f' <span class="more">… and {more} more</span>' if more > 0 else "")
        if all(isinstance(v, Mapping) for v in value):
            if _is_span_list(value):
                return _span_tree(value)
            return _rows(value, depth + 1)
        return "<br>".join(_value(v, key, depth + 1) for v in value[:_MAX_ROWS])
    return _e(value)


def _kv(mapping: Mapping[str, Any], depth: int) -> str:
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_value(v, str(k), depth)}</td></tr>" for k, v in mapping.items()
    )
    return f'<table class="kv">{rows}</table>'


def _rows(items: Sequence[Mapping[str, Any]], depth: int) -> str:
    """A list of similar objects as a table (columns = the union of keys, in first-seen order)."""
    columns: list[str] = []
    for item in items[:_MAX_ROWS_HIDDEN]:
        for k in item:
            if k not in columns:
                columns.append(str(k))
    if len(columns) > 12:
        return "".join(_kv(item, depth) for item in items[:_MAX_ROWS])

    def body(chunk: Sequence[Mapping[str, Any]]) -> str:
        return "".join(
            "<tr>" + "".join(f"<td>{_value(item.get(c), c, depth)}</td>" for c in columns) + "</tr>"
            for item in chunk
        )

    head = "<tr>" + "".join(f"<th>{_e(c)}</th>" for c in columns) + "</tr>"
    table = f'<table class="rows">{head}{body(items[:_MAX_ROWS])}</table>'
    rest = items[_MAX_ROWS:_MAX_ROWS_HIDDEN]
    if rest:
        table += (
            f'<details><summary class="more">{len(rest)} more row(s)</summary>'
            f'<table class="rows">{head}{body(rest)}</table></details>'
        )
    if len(items) > _MAX_ROWS_HIDDEN:
        table += f'<div class="more">… and {len(items) - _MAX_ROWS_HIDDEN} more (see the JSON report)</div>'
    return table


def _is_span_list(items: Sequence[Any]) -> bool:
    return all(isinstance(i, Mapping) and "span_id" in i for i in items) and any(
        "parent_span_id" in i or "parent_id" in i for i in items
    )


def _span_tree(spans: Sequence[Mapping[str, Any]]) -> str:
    """Spans (``span_id``, ``parent_span_id``, ``name``, ``kind``) as an indented tree."""
    ids = {str(s.get("span_id")) for s in spans}
    children: dict[str, list[Mapping[str, Any]]] = {}
    roots = []
    for span in spans[:_MAX_ROWS_HIDDEN]:
        parent = span.get("parent_span_id", span.get("parent_id"))
        if parent and str(parent) in ids and str(parent) != str(span.get("span_id")):
            children.setdefault(str(parent), []).append(span)
        else:
            roots.append(span)

    def node(span: Mapping[str, Any], depth: int) -> str:
        label = f"<b>{_e(span.get('name', '?'))}</b>"
        if span.get("kind"):
            label += f' <span class="muted">{_e(span["kind"])}</span>'
        label += f' <code class="id">{_e(span.get("span_id"))}</code>'
        extra = {
            k: v
            for k, v in span.items()
            if k not in ("name", "kind", "span_id", "parent_span_id", "parent_id")
        }
        if extra:
            label += " " + " · ".join(
                f"{_e(k)}={_scalar(v, k) if _is_scalar(v) else _e(v)}" for k, v in extra.items()
            )
        kids = children.get(str(span.get("span_id")), []) if depth < 12 else []
        inner = f'<ul class="tree">{"".join(node(k, depth + 1) for k in kids)}</ul>' if kids else ""
        return f"<li>{label}{inner}</li>"

    return f'<ul class="tree">{"".join(node(r, 0) for r in roots)}</ul>'


def _log_line(item: Mapping[str, Any]) -> str:
    where = (
        f"{item.get('stream', '')}:{item.get('line')}" if item.get("stream") else f"line {item.get('line')}"
    )
    return f'<pre class="log"><span class="ln">{_e(where)}</span>{_e(item.get("excerpt", ""))}</pre>'


def _finding(f: Mapping[str, Any]) -> str:
    rest = {k: v for k, v in f.items() if k not in ("requirement", "message")}
    message = _e(f["message"])
    links = _LINKS.get()
    if links is not None:  # the ids the finding's evidence names, where its message quotes them
        message = links.rewrite(message, trace_ids_in(rest), _trace_link)
    block = f'<div class="fmsg">{message}</div>'
    if "excerpt" in rest and "line" in rest:
        block += _log_line(rest)
        rest = {k: v for k, v in rest.items() if k not in ("excerpt", "line", "stream")}
    if rest:
        block += _kv(rest, 1)
    return f"<li>{block}</li>"


def _evidence(result: Mapping[str, Any]) -> str:
    items = [i for i in result.get("evidence", []) if isinstance(i, Mapping)]
    if not items:
        return ""
    findings = [i for i in items if "message" in i and i.get("requirement") == result.get("id")]
    omitted = sum(
        int(i["omitted_findings"])
        for i in items
        if isinstance(i.get("omitted_findings"), int) and len(i) == 1
    )
    notes = [i for i in items if i not in findings and not (len(i) == 1 and "omitted_findings" in i)]
    out = []
    if findings:
        lis = [_finding(f) for f in findings]
        total = len(findings) + omitted
        title = f"Findings ({total})" if not omitted else f"Findings ({len(findings)} of {total} listed)"
        shown = f'<ol class="findings">{"".join(lis[:_FINDINGS_SHOWN])}</ol>'
        if len(lis) > _FINDINGS_SHOWN:
            shown += (
                f'<details><summary class="more">{len(lis) - _FINDINGS_SHOWN} more finding(s)</summary>'
                f'<ol class="findings" start="{_FINDINGS_SHOWN + 1}">'
                f"{''.join(lis[_FINDINGS_SHOWN:])}</ol></details>"
            )
        if omitted:
            shown += f'<div class="more">{omitted} further finding(s) were counted, not kept.</div>'
        out.append(f"<h4>{title}</h4>{shown}")
    if notes:
        merged: dict[str, Any] = {}
        leftovers = []
        for note in notes:
            if "excerpt" in note and "line" in note:
                leftovers.append(_log_line(note))
            elif set(note) & set(merged):
                leftovers.append(_kv(note, 1))
            else:
                merged.update(note)
        title = "What was checked" if result.get("status") == "passed" else "Context"
        body = (_kv(merged, 1) if merged else "") + "".join(leftovers)
        out.append(f"<h4>{title}</h4>{body}")
    return "".join(out)


# --------------------------------------------------------------------------- sections


def _header(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    verdict = str(s.get("verdict", "error"))
    counts = s.get("counts", {})
    service = report.get("profile", {}).get("service") or "service"
    must = len(s.get("failed_must", []))
    should = len(s.get("failed_should", []))
    errors = len(s.get("errors", []))
    stale = len(s.get("baseline_stale", [])) + len(s.get("baseline_expired", []))
    total = sum(counts.get(k, 0) for k in STATUSES)
    if verdict == "passed":
        why = f"Every MUST requirement passed ({counts.get('passed', 0)} of {total} requirements passed"
        why += f"; {should} SHOULD failed" if should else ""
        baselined = len(s.get("baselined", []))
        why += f"; {baselined} known violation(s) baselined)" if baselined else ")"
    else:
        parts = []
        if must:
            parts.append(f"{must} MUST requirement(s) failed")
        if stale:
            parts.append(f"{stale} baseline entr{'y' if stale == 1 else 'ies'} no longer valid")
        if errors:
            parts.append(f"{errors} requirement(s) could not be checked")
        if should:
            parts.append(f"{should} SHOULD failed")
        why = "; ".join(parts) or "see below"
    stack = report.get("stack", {})
    meta = [
        ("service", service),
        ("run", f"{report.get('kind', 'conformance')} · {report.get('run_id', '')}"),
        ("mode", stack.get("mode", "?")),
        ("started", str(report.get("started_at", "")).replace("T", " ")),
        ("duration", _duration(report.get("duration_seconds", 0))),
        ("obsconform", report.get("tool", {}).get("version", "")),
        ("profile", report.get("profile", {}).get("path", "")),
    ]
    meta_html = "".join(f"<span>{_e(k)} <b>{_e(v)}</b></span>" for k, v in meta if v)
    kicker = "Load gate report" if report.get("kind") == "load" else "Pre-release conformance report"
    return (
        f'<header class="verdict {_e(verdict)}" id="verdict">'
        f'<div class="kicker">{kicker}</div>'
        f'<h1>{_e(service)}: <span id="verdict-word">{_e(verdict.upper())}</span></h1>'
        f'<div class="why">{_e(why)}</div><div class="meta">{meta_html}</div></header>'
    )


def _tiles(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    counts = dict(s.get("counts", {}))
    baselined = len(s.get("baselined", []))
    tiles = [
        ("passed", counts.get("passed", 0), "passed"),
        ("failed", counts.get("failed", 0) - baselined, "failed (MUST or SHOULD)"),
        ("error", counts.get("error", 0), "could not be checked"),
        ("skipped", counts.get("skipped", 0), "not applicable"),
    ]
    if baselined or report.get("baseline"):
        tiles.append(("baselined", baselined, "failed, baselined"))
    html = "".join(
        f'<div class="tile {cls}"><div class="n">{n}</div><div class="l">{_e(label)}</div></div>'
        for cls, n, label in tiles
    )
    return f'<section class="tiles" id="counts">{html}</section>{status_bar_svg(counts)}'


def _attention(report: Mapping[str, Any]) -> str:
    """Failed and errored requirements (MUST first; errors sharing one cause grouped), then
    baseline problems."""
    results = report.get("results", [])
    failed = sorted(
        (r for r in results if r.get("status") == "failed" and not _is_baselined(r)),
        key=lambda r: 0 if r.get("level") == "MUST" else 1,
    )
    by_cause: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        if r.get("status") == "error":
            by_cause.setdefault(_first_line(r.get("message", "")), []).append(r)
    problems = [
        e for e in report.get("baseline", {}).get("entries", []) if e.get("state") in ("stale", "expired")
    ]
    if not failed and not by_cause and not problems:
        return (
            '<section id="attention"><h2>Needs attention</h2>'
            '<div class="card">Nothing: no requirement failed or errored, and the baseline is current.</div>'
            "</section>"
        )
    trs = [_attention_row(r) for r in failed]
    for cause, group in by_cause.items():
        if len(group) < 3:
            trs.extend(_attention_row(r) for r in group)
            continue
        chips = "".join(
            f'<a class="chip error" href="#req-{_e(r["id"])}" title="{_e(r.get("title", ""))}">'
            f"{_e(r['id'])}</a>"
            for r in group
        )
        must = sum(1 for r in group if r.get("level") == "MUST")
        trs.append(
            f'<tr><td><span class="badge error">error</span></td><td>{len(group)} requirements</td>'
            f'<td><span class="lvl MUST">{must} MUST</span></td>'
            f'<td>{_e(cause)}<div class="chips">{chips}</div></td></tr>'
        )
    trs.extend(
        f'<tr><td><span class="badge {_e(e["state"])}">{_e(e["state"])}</span></td>'
        f'<td><a href="#baseline" class="mono">{_e(e["id"])}</a></td>'
        '<td><span class="lvl">baseline</span></td>'
        f"<td>baseline entry {_e(e.get('origin', ''))}"
        f'<div class="note">{_e(e.get("detail", ""))}</div></td></tr>'
        for e in problems
    )
    return (
        '<section id="attention"><h2>Needs attention</h2>'
        f'<table class="attention card"><tr><th>status</th><th>id</th><th>level</th><th>requirement</th></tr>'
        f"{''.join(trs)}</table></section>"
    )


def _attention_row(r: Mapping[str, Any]) -> str:
    return (
        f'<tr><td><span class="badge {_e(r["status"])}">{_e(r["status"])}</span></td>'
        f'<td><a href="#req-{_e(r["id"])}" class="mono">{_e(r["id"])}</a></td>'
        f'<td><span class="lvl {_e(r.get("level", ""))}">{_e(r.get("level", ""))}</span></td>'
        f"<td>{_e(r.get('title', ''))}"
        f'<div class="note">{_e(_first_line(r.get("message", "")))}</div></td></tr>'
    )


def _first_line(text: str, limit: int = 240) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _areas(results: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(r.get("area", "?")) for r in results))


def _matrix(report: Mapping[str, Any]) -> str:
    results = report.get("results", [])
    has_baselined = any(_is_baselined(r) for r in results)
    cols = ["passed", "failed", "error", "skipped"] + (["baselined"] if has_baselined else [])
    head = "<tr><th>area</th>" + "".join(f"<th>{c}</th>" for c in cols) + "<th>requirements</th></tr>"
    rows = []
    for area in _areas(results):
        mine = [r for r in results if r.get("area") == area]
        counts = Counter(_display_status(r) for r in mine)
        cells = "".join(
            f'<td class="num {c}{"" if counts.get(c) else " z"}">{counts.get(c, 0)}</td>' for c in cols
        )
        chips = "".join(
            f'<a class="chip {_e(_display_status(r))}" href="#req-{_e(r["id"])}" '
            f'title="{_e(r["id"])} {_e(_display_status(r))}: {_e(r.get("title", ""))}">{_e(r["id"])}</a>'
            for r in mine
        )
        rows.append(
            f'<tr><th><a href="#area-{_anchor(area)}">{_e(area)}</a></th>{cells}'
            f'<td><div class="chips">{chips}</div></td></tr>'
        )
    return (
        '<section id="matrix"><h2>Requirement areas &times; status</h2>'
        f'<table class="matrix card">{head}{"".join(rows)}</table></section>'
    )


def _charts(report: Mapping[str, Any]) -> str:
    parts = []
    latency = find_latency(report)
    if latency:
        parts.append(
            '<div id="chart-latency"><h3>Latency percentiles per endpoint (load gate)</h3>'
            f"{latency_svg(latency)}</div>"
        )
    growth = find_growth(report)
    if growth:
        shown = min(len(growth), 15)
        parts.append(
            '<div id="chart-growth"><h3>Series per metric under the cardinality probe</h3>'
            '<p class="note">Series before the probe, after its first half and after it, per metric and '
            "source. A bounded metric stops growing once every route and status has been seen; "
            f"red marks series still added in the second half. Top {shown} of {len(growth)}.</p>"
            f"{growth_svg(growth)}</div>"
        )
    if not parts:
        return ""
    return f'<section id="charts"><h2>Charts</h2>{"".join(parts)}</section>'


def _baseline(report: Mapping[str, Any]) -> str:
    section = report.get("baseline")
    if not section:
        return ""
    entries = section.get("entries", [])
    rows = []
    for e in entries:
        soon = ' <span class="badge error">expires soon</span>' if e.get("expiring_soon") else ""
        match = f'<div class="note">match: <code>{_e(e["match"])}</code></div>' if e.get("match") else ""
        rows.append(
            f'<tr><td><span class="badge {_e(e.get("state"))}">{_e(e.get("state"))}</span>{soon}</td>'
            f'<td><a href="#req-{_e(e.get("id"))}" class="mono">{_e(e.get("id"))}</a></td>'
            f"<td>{_e(e.get('reason', ''))}{match}</td>"
            f'<td class="mono">{_e(e.get("expires", ""))}</td>'
            f'<td>{_e(e.get("detail", ""))}<div class="note">{_e(e.get("origin", ""))}</div></td></tr>'
        )
    trs = "".join(rows) or '<tr><td colspan="5">No known violations are baselined.</td></tr>'
    return (
        '<section id="baseline"><h2>Baseline (known violations)</h2>'
        f'<p class="note">From {_e(section.get("source", ""))}, '
        f"judged on {_e(section.get('today', ''))} (UTC). "
        "A matched entry keeps its failure out of the verdict until it expires; a stale or expired entry "
        "fails the run.</p>"
        '<table class="card"><tr><th>state</th><th>id</th><th>reason</th><th>expires</th><th>detail</th></tr>'
        f"{trs}</table></section>"
    )


def _requirement(result: Mapping[str, Any]) -> str:
    status = _display_status(result)
    rid = str(result.get("id", ""))
    open_attr = " open" if status in ("failed", "error") else ""
    summary = (
        f'<summary><span class="badge {_e(status)}">{_e(status)}</span>'
        f'<span class="id">{_e(rid)}</span><span class="lvl {_e(result.get("level", ""))}">'
        f'{_e(result.get("level", ""))}</span><span class="t">{_e(result.get("title", ""))}</span>'
        f'<span class="d">{_e(_duration(result.get("duration_seconds", 0)))}</span></summary>'
    )
    body = [f'<div class="src">Source: {_e(result.get("source", ""))}</div>']
    baselined = result.get("baselined")
    if _is_baselined(result) and isinstance(baselined, Mapping):
        body.append(
            f'<div class="baselinenote">Baselined until {_e(baselined.get("expires", ""))}: '
            f"{_e(baselined.get('reason', ''))}</div>"
        )
    if result.get("message"):
        body.append(f'<div class="msg">{_e(result["message"])}</div>')
    examined = result.get("examined") or {}
    if examined and status != "passed":  # a pass says what it examined in its message
        what = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in examined.items())
        body.append(f'<div class="src">Examined: {_e(what)}</div>')
    body.append(_evidence(result))
    return (
        f'<details class="req {_e(status)}" id="req-{_e(rid)}"{open_attr}>{summary}'
        f'<div class="body">{"".join(body)}</div></details>'
    )


def _requirements(report: Mapping[str, Any]) -> str:
    results = report.get("results", [])
    parts = [
        '<section id="requirements"><h2>Requirements</h2>'
        '<div class="toolbar"><label><input type="checkbox" id="only-problems"> '
        "show only failed, errored and baselined</label>"
        '<span class="note">failed and errored requirements are expanded</span></div>'
    ]
    for area in _areas(results):
        parts.append(f'<h3 id="area-{_anchor(area)}">{_e(area)}</h3>')
        parts.extend(_requirement(r) for r in results if r.get("area") == area)
    parts.append("</section>")
    return "".join(parts)


def _stack(report: Mapping[str, Any]) -> str:
    stack = report.get("stack", {})
    rows = []
    details = []
    for c in stack.get("components", []):
        if not isinstance(c, Mapping):
            continue
        what = c.get("image") or c.get("binary") or c.get("command") or c.get("description") or ""
        if isinstance(what, list):
            what = " ".join(str(w) for w in what)
        rows.append(
            f"<tr><td><b>{_e(c.get('name', '?'))}</b></td><td>{_e(c.get('kind', ''))}</td>"
            f'<td class="mono">{_e(c.get("version", "—"))}</td><td class="mono">{_e(what)}</td>'
            f'<td class="mono">{_e(c.get("url", ""))}</td></tr>'
        )
        rest = {
            k: v
            for k, v in c.items()
            if k not in ("name", "kind", "version", "image", "binary", "command", "description", "url")
        }
        if rest:
            details.append(
                f"<details><summary>{_e(c.get('name', '?'))}: details</summary>{_kv(rest, 1)}</details>"
            )
    error = (
        f'<div class="msg" style="background:#ffebe9">Stack error: {_e(stack["error"])}</div>'
        if stack.get("error")
        else ""
    )
    tool = report.get("tool", {})
    return (
        '<section id="stack"><h2>Stack used</h2>'
        f"<p>Mode <b>{_e(stack.get('mode', '?'))}</b> · obsconform {_e(tool.get('version', ''))} · "
        f"Python {_e(tool.get('python', ''))}</p>{error}"
        '<table class="card"><tr><th>component</th><th>kind</th><th>version</th>'
        "<th>binary / image / command</th>"
        f"<th>url</th></tr>{''.join(rows)}</table>{''.join(details)}</section>"
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report as one self-contained HTML document."""
    token = _LINKS.set(trace_links(report))
    try:
        return _document(report)
    finally:
        _LINKS.reset(token)


def _document(report: Mapping[str, Any]) -> str:
    service = report.get("profile", {}).get("service") or "service"
    verdict = str(report.get("summary", {}).get("verdict", "error"))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(verdict.upper())} · {_e(service)} · conformance report</title>"
        f"<style>{_CSS}</style></head><body><main>"
        f"{_header(report)}{_tiles(report)}{_matrix(report)}{_attention(report)}{_charts(report)}"
        f"{_baseline(report)}{_requirements(report)}{_stack(report)}"
        f"<footer>Generated by obsconform {_e(report.get('tool', {}).get('version', ''))} from "
        "conformance-report.json (the source of truth; schemas/conformance-report.schema.json). "
        f"Finished {_e(report.get('finished_at', ''))}. Quoted service output is masked.</footer>"
        "</main></body></html>\n"
    )
