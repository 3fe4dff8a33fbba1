"""A fast parser for the Prometheus text format, equal to prometheus-client's.

Hand-written because prometheus-client's parser (``text_string_to_metric_families``)
walks every sample line in pure Python a character at a time (its quote-aware
``_next_unquoted_char``), which makes it the bottleneck of the metric checks: a
1M-series exposition took longer to parse than ``promtool check metrics`` takes
to parse *and* lint it. This module matches the common shapes of a line with one
compiled regular expression each and builds the very objects prometheus-client
builds (its :class:`~prometheus_client.metrics_core.Metric` and
:class:`~prometheus_client.samples.Sample`), with its family logic copied rule for
rule (``# HELP``/``# TYPE`` switching families, ``_total`` moved between a
counter's family and its samples, a sample of an unexpected name becoming an
untyped family of its own).

Anything the fast expressions do not accept is left to prometheus-client: a
sample line (odd spacing, exemplars, quoted or reserved label names, a
timestamp after two values, an unparseable value) is parsed by prometheus-client
on its own, so its result or its exception is prometheus-client's; a ``# HELP``
or ``# TYPE`` line of an unusual shape sends the whole text to prometheus-client.
``tests/unit/test_textformat.py`` compares the two on generated and real
expositions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from conformance._gc import cyclic_gc_paused

__all__ = ["parse_prometheus_text"]

_LABEL_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*(?:\\.[^"\\]*)*"'
_SAMPLE = re.compile(
    r"([a-zA-Z_:][a-zA-Z0-9_:]*)"  # name
    rf"(?:\{{((?:{_LABEL_PAIR}(?:,{_LABEL_PAIR})*,?)?)\}})?"  # labels, a trailing comma allowed
    r" (?:([-+]?[0-9]+)|([0-9A-Za-z.+-]+))"  # value: an integer, or anything int()/float() may take
    r"(?: ([-+]?[0-9]+|[0-9A-Za-z.+-]+))?"  # timestamp (ms)
).fullmatch
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*(?:\\.[^"\\]*)*)"').findall
# prometheus-client splits comment lines on string.whitespace; only spaces and tabs are taken here.
_DECLARATION = re.compile(
    r"#[ \t]+(HELP|TYPE)[ \t]+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:[ \t]+([^ \t\n\r\x0b\x0c].*))?", re.DOTALL
).fullmatch
_ESCAPE = re.compile(r'\\[\\n"]')
_HELP_ESCAPE = re.compile(r"\\[\\n]")
_ESCAPES = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}


def _unescape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group(0)]


def _number(text: str) -> float:
    """prometheus-client's ``_parse_value`` for a token of ASCII letters, digits, ``.+-``."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _allowed(name: str, typ: str) -> list[str]:
    suffixes = {"summary": ["_count", "_sum", ""], "histogram": ["_count", "_sum", "_bucket"]}.get(typ, [""])
    return [name + suffix for suffix in suffixes]


def _build(name: str, documentation: str, typ: str, samples: list[Sample]) -> Metric:
    # prometheus-client's build_metric: counters are named without _total, their samples with it.
    if typ == "counter":
        if name.endswith("_total"):
            name = name[:-6]
        else:
            samples = [Sample(s[0] + "_total", *s[1:]) for s in samples]
    metric = Metric(name, documentation, typ)
    metric.samples = samples
    return metric


def _reference_sample(line: str) -> Sample:
    """The sample prometheus-client makes of ``line`` alone (or its exception)."""
    (family,) = text_string_to_metric_families(line)
    (sample,) = family.samples
    return sample


def parse_prometheus_text(text: str) -> list[Metric]:
    """The families of a text-format exposition, exactly as
    ``list(prometheus_client.parser.text_string_to_metric_families(text))``.

    Raises what prometheus-client raises on an exposition it refuses.
    """
    with cyclic_gc_paused():
        families = _parse(text)
    if families is None:
        return list(text_string_to_metric_families(text))
    return families


def _parse(text: str) -> list[Metric] | None:
    """The families, or ``None`` when a declaration line needs prometheus-client's own parser."""
    out: list[Metric] = []
    name = ""
    documentation = ""
    typ = "untyped"
    samples: list[Sample] = []
    allowed: Iterable[str] = []
    sample_match = _SAMPLE
    labels_of: Callable[[str], list[tuple[str, str]]] = _LABEL
    new_tuple = tuple.__new__  # Sample(...) without its Python-level __new__
    written: list[str] = []  # the label names of the line before, as split below
    keys: list[str] = []
    lines = list(map(str.strip, text.split("\n")))
    for line, match in zip(lines, map(sample_match, lines), strict=True):
        sample = None
        if match is not None:
            sample_name, block, integer, value_text, stamp = match.groups()
            if not block:
                labels: dict[str, str] = {}
                count = 0
            elif "\\" in block:
                pairs = labels_of(block)
                labels = {k: _ESCAPE.sub(_unescape, v) for k, v in pairs}
                count = len(pairs)
            else:
                # Without a backslash a quote only delimits a value: ',a=' 'x' ',b=' 'y' '' (or ',').
                parts = ("," + block).split('"')
                values = parts[1::2]
                shape = parts[::2]
                if shape != written:
                    written = shape
                    keys = [key[1:-1] for key in shape[:-1]]
                labels = dict(zip(keys, values, strict=True))
                count = len(values)
            if len(labels) == count and not (block and "__" in block and any(k[:2] == "__" for k in labels)):
                try:
                    value = int(integer) if integer is not None else float(value_text)
                    timestamp = _number(stamp) / 1000 if stamp is not None else None
                except ValueError:
                    pass  # prometheus-client's to refuse, in its words
                else:
                    sample = new_tuple(Sample, (sample_name, labels, value, timestamp, None, None))
        elif not line:
            continue
        elif line[0] == "#":
            if "HELP" not in line and "TYPE" not in line:
                continue  # a comment: its second token cannot be HELP or TYPE
            declaration = _DECLARATION(line)
            if declaration is None:
                return None
            kind, candidate, rest = declaration.groups()
            if kind == "HELP":
                if candidate != name:
                    if name:
                        out.append(_build(name, documentation, typ, samples))
                    name = candidate
                    typ = "untyped"
                    samples = []
                    allowed = [candidate]
                documentation = _HELP_ESCAPE.sub(_unescape, rest) if rest else ""
            else:
                if rest is None:
                    return None  # prometheus-client raises; let it say so
                if candidate != name:
                    if name:
                        out.append(_build(name, documentation, typ, samples))
                    name = candidate
                    documentation = ""
                    samples = []
                typ = rest
                allowed = _allowed(name, typ)
            continue
        if sample is None:
            sample = _reference_sample(line)
        if sample[0] in allowed:
            samples.append(sample)
        else:
            if name:
                out.append(_build(name, documentation, typ, samples))
            name = ""
            documentation = ""
            typ = "untyped"
            samples = []
            allowed = []
            out.append(_build(sample[0], "", "untyped", [sample]))
    if name:
        out.append(_build(name, documentation, typ, samples))
    return out
