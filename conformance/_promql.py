"""PromQL, read with a real parser (``promql-parser``, a Python binding of the
Rust crate that tracks Prometheus 2.45's grammar), never with regexes.

What the harness needs from an expression is the set of series selectors it
reads: metric name (or ``__name__`` matchers) plus label matchers, whether
the selector stands alone or sits inside a range (``x[5m]``), a subquery,
a function or an aggregation. Pure: strings in, values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import promql_parser

__all__ = [
    "LabelMatcher",
    "PromQLError",
    "Selector",
    "family_name",
    "parse_duration",
    "selectors",
]

#: Suffixes under which Prometheus stores a metric family's series.
_FAMILY_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created", "_gcount", "_gsum", "_info")


class PromQLError(ValueError):
    """An expression or duration the parser rejects; the message is the parser's."""


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """``name op "value"`` with ``op`` one of ``=``, ``!=``, ``=~``, ``!~``."""

    name: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.name}{self.op}{_quote(self.value)}"

    @property
    def regex(self) -> bool:
        return self.op in ("=~", "!~")

    def matches(self, value: str) -> bool:
        """Whether a label ``value`` (``""`` when the label is absent) satisfies the matcher.

        Regexes are anchored as Prometheus anchors them; Prometheus uses RE2,
        whose syntax Python's ``re`` accepts for everything but exotic cases,
        which raise :class:`PromQLError`.
        """
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        try:
            found = re.fullmatch(f"(?:{self.value})", value, flags=re.DOTALL) is not None
        except re.error as exc:
            raise PromQLError(f"regex {self.value!r} in {self}: {exc}") from None
        return found if self.op == "=~" else not found

    @property
    def requires_label(self) -> bool:
        """True when a series without this label can never match (``a="x"``, ``a=~".+"``)."""
        return not self.matches("")


@dataclass(frozen=True, slots=True)
class Selector:
    """One series selector of an expression.

    ``name`` is the metric name when it is given literally (``foo{…}`` or
    ``{__name__="foo"}``); ``name_matchers`` holds any other ``__name__``
    matchers (``{__name__=~"http_.*"}``); ``matchers`` the label matchers.
    """

    text: str
    name: str | None
    name_matchers: tuple[LabelMatcher, ...]
    matchers: tuple[LabelMatcher, ...]

    def names_matching(self, candidates: set[str] | frozenset[str]) -> set[str]:
        """The candidate metric names this selector's name part selects."""
        out = {self.name} & set(candidates) if self.name is not None else set(candidates)
        return {n for n in out if all(m.matches(n) for m in self.name_matchers)}

    @property
    def has_name(self) -> bool:
        return self.name is not None or any(m.requires_label for m in self.name_matchers)


_OPS = {
    str(promql_parser.MatchOp.Equal): "=",
    str(promql_parser.MatchOp.NotEqual): "!=",
    str(promql_parser.MatchOp.Re): "=~",
    str(promql_parser.MatchOp.NotRe): "!~",
}


def parse(expr: str) -> promql_parser.Expr:
    try:
        return promql_parser.parse(expr)
    except (ValueError, TypeError) as exc:
        raise PromQLError(str(exc)) from None


def selectors(expr: str) -> list[Selector]:
    """Every vector selector in ``expr`` (inside ranges, subqueries, calls too), in order.

    Raises :class:`PromQLError` when the expression does not parse.
    """
    found: list[Selector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.extend(_from_vector_selector(node))
        return True

    promql_parser.walk(parse(expr), visit)
    return found


def _from_vector_selector(node: promql_parser.VectorSelector) -> list[Selector]:
    base = [_matcher(m) for m in node.matchers.matchers]
    # ``{a="x" or b="y"}`` (newer PromQL) selects the union of its alternatives.
    alternatives = [base + [_matcher(m) for m in group] for group in node.matchers.or_matchers] or [base]
    out = []
    for matchers in alternatives:
        name = node.name
        name_matchers = []
        labels = []
        for m in matchers:
            if m.name != "__name__":
                labels.append(m)
            elif m.op == "=" and name is None:
                name = m.value
            else:
                name_matchers.append(m)
        inner = ",".join(map(str, [*name_matchers, *labels]))
        text = (name or "") + (f"{{{inner}}}" if inner or name is None else "")
        out.append(Selector(text, name, tuple(name_matchers), tuple(labels)))
    return out


def _matcher(m: promql_parser.Matcher) -> LabelMatcher:
    return LabelMatcher(m.name, _OPS[str(m.op)], m.value)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def parse_duration(text: str) -> timedelta:
    """A Prometheus duration (``5m``, ``1h30m``, ``0s``)."""
    if text and set(text) <= set("0smhdwy") and text[0] == "0":
        return timedelta(0)  # the parser refuses zero durations, which rule files allow
    try:
        return promql_parser.parse_duration(text)
    except (ValueError, TypeError) as exc:
        raise PromQLError(f"{text!r}: {exc}") from None


def family_name(metric: str) -> str:
    """The family a stored series name belongs to: ``x_bucket`` → ``x``, ``x_total`` → ``x``.

    Used to decide whether two names mean the same metric (an SLO on
    ``http_request_duration_seconds`` is watched by an alert on its ``_bucket`` series).
    """
    for suffix in _FAMILY_SUFFIXES:
        if metric.endswith(suffix) and len(metric) > len(suffix):
            return metric[: -len(suffix)]
    return metric
