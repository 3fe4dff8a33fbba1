"""A fast parser for the Prometheus text format, equal to prometheus-client's.

Hand-written because prometheus-client's parser (``text_string_to_metric_families``)
walks every sample line in pure Python a character at a time (its quote-aware
``_next_unquoted_char``), which makes it the bottleneck of the metric checks: a
1M-series exposition took longer to parse than ``promtool check metrics`` takes
to parse *and* lint it. This module matches each sample line against the
regular expression of its label layout (one per sample name and label names,
built from the first line of that shape), over whole runs of such lines at once
inside C, and builds the very objects prometheus-client builds (its
:class:`~prometheus_client.metrics_core.Metric` and
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
from itertools import repeat, takewhile
from operator import truth
from typing import cast

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
_LAYOUT_VALUE = r" (?:([-+]?[0-9]+)|([0-9A-Za-z.+-]+))"  # _SAMPLE's value, the last two groups
_GROUP = re.Match.group
_GROUP_DICT = re.Match.groupdict
_NEW_TUPLE = tuple.__new__  # Sample(...) without its Python-level __new__
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


def _allowed(name: str, typ: str) -> tuple[str, ...]:
    suffixes = {"summary": ("_count", "_sum", ""), "histogram": ("_count", "_sum", "_bucket")}.get(typ, ("",))
    return tuple(name + suffix for suffix in suffixes)


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
    """The families, or ``None`` when a declaration line needs prometheus-client's own parser.

    Sample lines are matched against the regular expression of their label layout
    (:class:`_Layout`): a run of lines of one layout (a counter's series, a histogram's
    buckets) is matched, split and turned into samples inside C (``takewhile``/``map``
    over a shared line iterator), with no Python statement per line. The line that ends a
    run (``takewhile`` consumed it) is handled on its own: a comment or declaration, a
    sample of another layout (which then starts the next run), or a line for the careful
    path (:func:`_line_sample`).
    """
    families = _Families()
    layouts = _Layouts()
    lines = list(map(str.strip, text.split("\n")))
    remaining = iter(lines)
    layout = _NOTHING
    at = 0  # the index of the next line in remaining
    while True:
        run = cast("list[re.Match[str]]", list(takewhile(truth, map(layout.match, remaining))))
        if run:
            families.add(layout.name, layout.samples(run))
            layouts.served += len(run)
            at += len(run)
        if at == len(lines):
            return families.finish()
        line = lines[at]  # the line that ended the run, consumed from remaining
        at += 1
        if not line:
            continue
        if line[0] == "#":
            if "HELP" not in line and "TYPE" not in line:
                continue  # a comment: its second token cannot be HELP or TYPE
            declaration = _DECLARATION(line)
            if declaration is None:
                return None
            kind, candidate, rest = declaration.groups()
            if kind == "TYPE" and rest is None:
                return None  # prometheus-client raises; let it say so
            families.declare(kind, candidate, rest)
            continue
        found = layouts.find(line)
        if found is None:
            sample = _line_sample(line)
            families.add(sample[0], [sample])
        else:
            layout, match = found
            families.add(layout.name, layout.samples([match]))


class _Families:
    """prometheus-client's family logic (``text_fd_to_metric_families``), rule for rule."""

    def __init__(self) -> None:
        self.out: list[Metric] = []
        self.name = ""
        self.documentation = ""
        self.typ = "untyped"
        self.samples: list[Sample] = []
        self.allowed: tuple[str, ...] = ()

    def _flush(self) -> None:
        if self.name:
            self.out.append(_build(self.name, self.documentation, self.typ, self.samples))

    def declare(self, kind: str, candidate: str, rest: str | None) -> None:
        if kind == "HELP":
            if candidate != self.name:
                self._flush()
                self.name = candidate
                self.typ = "untyped"
                self.samples = []
                self.allowed = (candidate,)
            self.documentation = _HELP_ESCAPE.sub(_unescape, rest) if rest else ""
        else:
            assert rest is not None
            if candidate != self.name:
                self._flush()
                self.name = candidate
                self.documentation = ""
                self.samples = []
            self.typ = rest
            self.allowed = _allowed(self.name, self.typ)

    def add(self, name: str, samples: list[Sample]) -> None:
        """Samples, all named ``name``, in exposition order."""
        if name in self.allowed:
            self.samples += samples
            return
        for sample in samples:  # a sample of an unexpected name: an untyped family of its own
            self._flush()
            self.name = ""
            self.documentation = ""
            self.typ = "untyped"
            self.samples = []
            self.allowed = ()
            self.out.append(_build(name, "", "untyped", [sample]))

    def finish(self) -> list[Metric]:
        self._flush()
        return self.out


class _Layout:
    """One sample name with one label layout (``name{a="…",b="…"} value``) and the
    regular expression that matches exactly such lines, capturing each label value in
    a group named after its label (so ``Match.groupdict()`` is the sample's labels).

    Narrower than :data:`_SAMPLE`: no escapes, no timestamp. A line it matches reads
    the same under either expression, so its sample is what prometheus-client makes.
    """

    __slots__ = ("keys", "match", "name")

    def __init__(self, name: str, keys: tuple[str, ...], source: str) -> None:
        self.name = name
        self.keys = keys
        self.match: Callable[[str], re.Match[str] | None] = re.compile(source).fullmatch

    def samples(self, matches: list[re.Match[str]]) -> list[Sample]:
        # The label values are named groups (named after their labels), the value the two after.
        labels = map(_GROUP_DICT, matches)
        integers = list(map(_GROUP, matches, repeat(len(self.keys) + 1)))
        values: Iterable[float]
        if None not in integers:
            values = map(int, integers)
        else:
            others = map(_GROUP, matches, repeat(len(self.keys) + 2))
            try:
                values = [
                    int(i) if i is not None else float(o) for i, o in zip(integers, others, strict=True)
                ]
            except ValueError:  # a value float() refuses: prometheus-client's to refuse, in its words
                return [_line_sample(match.string) for match in matches]
        none = repeat(None)
        return list(map(_NEW_TUPLE, repeat(Sample), zip(repeat(self.name), labels, values, none, none, none)))


#: Matches no line: the layout before the first sample line.
_NOTHING = _Layout("", (), "(?!)")


class _Layouts:
    """The layouts of one exposition, the most recently used first.

    Compiling a layout's expression costs about as much as parsing a hundred lines
    the careful way, so an exposition whose lines rarely share a layout (a metric
    name or a label name per series: a cardinality accident) must not compile one
    per line: past the first few, a layout is compiled only while the layouts
    compiled so far have served ``_LINES_PER_LAYOUT`` lines each; other lines take
    the careful path (:func:`_line_sample`).
    """

    _RECENT = 8
    _FREE_LAYOUTS = 64
    _LINES_PER_LAYOUT = 64

    def __init__(self) -> None:
        self.recent: list[_Layout] = []
        self.known: dict[str, _Layout] = {}
        self.served = 0  # sample lines matched by a layout's expression

    def find(self, line: str) -> tuple[_Layout, re.Match[str]] | None:
        """The layout of a sample line and its match, or ``None`` for the careful path."""
        compiled = len(self.known)
        if compiled >= self._FREE_LAYOUTS and compiled * self._LINES_PER_LAYOUT > self.served:
            return None  # layouts do not pay off here: the careful path from now on
        for index, layout in enumerate(self.recent):
            match = layout.match(line)
            if match is not None:
                if index:
                    del self.recent[index]
                    self.recent.insert(0, layout)
                self.served += 1
                return layout, match
        new = self._new(line)
        match = new.match(line) if new is not None else None
        if new is None or match is None:
            return None
        self.recent.insert(0, new)
        del self.recent[self._RECENT :]
        self.served += 1
        return new, match

    def _new(self, line: str) -> _Layout | None:
        match = _SAMPLE(line)
        if match is None:
            return None
        name, block, _, _, stamp = match.groups()
        if stamp is not None or (block and "\\" in block):
            return None
        if block is None:
            keys: tuple[str, ...] = ()
            source = re.escape(name) + _LAYOUT_VALUE
        else:
            # Without a backslash a quote only delimits a value: 'a=' 'x' ',b=' 'y' '' (or ',').
            keys = tuple(part.lstrip(",")[:-1] for part in block.split('"')[:-1:2])
            if len(set(keys)) != len(keys) or any(key[:2] == "__" for key in keys):
                return None  # refused, or special, in prometheus-client: the careful path decides
            pairs = ",".join(f'{key}="(?P<{key}>[^"\\\\]*)"' for key in keys)
            comma = "," if block.endswith(",") else ""
            source = re.escape(name) + r"\{" + pairs + comma + r"\}" + _LAYOUT_VALUE
        layout = self.known.get(source)
        if layout is None:
            layout = self.known[source] = _Layout(name, keys, source)
        return layout


def _line_sample(line: str) -> Sample:
    """The sample of one line, as prometheus-client parses it (or its exception)."""
    match = _SAMPLE(line)
    if match is not None:
        name, block, integer, value_text, stamp = match.groups()
        pairs = _LABEL(block) if block else []
        labels = {k: _ESCAPE.sub(_unescape, v) for k, v in pairs} if block and "\\" in block else dict(pairs)
        if len(labels) == len(pairs) and not any(k[:2] == "__" for k in labels):
            try:
                value = int(integer) if integer is not None else float(value_text)
                timestamp = _number(stamp) / 1000 if stamp is not None else None
            except ValueError:
                pass  # prometheus-client's to refuse, in its words
            else:
                return Sample(name, labels, value, timestamp, None, None)
    return _reference_sample(line)
