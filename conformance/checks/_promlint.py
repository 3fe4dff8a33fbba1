"""A port of promlint, the linter behind ``promtool check metrics``.

Rules and wording follow client_golang's ``prometheus/testutil/promlint`` as
built into promtool 2.42 (client_golang 1.14), so that our verdict and
promtool's can be compared line by line (:func:`compare_with_promtool`); a
difference is a bug in this port. Two rules are ours on top:

* ``duplicate-family``: a family declared twice. promtool refuses such an
  exposition outright ("second HELP line", "second TYPE line … or TYPE
  reported after samples").
* ``duplicate-series``: the same series twice. promlint has it from
  client_golang 1.20 (promtool 2.54) as "metric not unique"; older promtool
  does not look, so it is compared only with a promtool that does.

promtool never sees a family without samples (its parser drops them), while
prometheus-client exposes ``# HELP``/``# TYPE`` for a labelled metric before
its first observation. Such families are linted too (their problems are
marked ``unsampled``) and left out of the comparison.

One deliberate difference: promlint looks units up in a Go map, whose
iteration order is random, so for a name with two unit words
(``foo_seconds_milliseconds``) promtool sometimes reports the non-base one
and sometimes nothing. We always report it; the comparison tolerates promtool
staying silent on such names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter

from prometheus_client.samples import Sample

from conformance.checks._exposition import ExposedFamily, MetricsView

__all__ = [
    "DUPLICATE_SERIES_SINCE",
    "UNIT_RULES",
    "LintProblem",
    "compare_with_promtool",
    "lint_view",
    "metric_units",
]

#: promtool version from which ``check metrics`` reports duplicate series ("metric not unique").
DUPLICATE_SERIES_SINCE = (2, 54)
#: Rules about units (MET-003); every other rule is about names, types and labels (MET-002).
UNIT_RULES = frozenset({"units", "abbreviated-units"})

_BASE_UNITS = {
    "amperes": "amperes",
    "bytes": "bytes",
    "celsius": "celsius",
    "grams": "grams",
    "joules": "joules",
    "kelvin": "kelvin",
    "meters": "meters",
    "metres": "metres",
    "seconds": "seconds",
    "volts": "volts",
    "minutes": "seconds",
    "hours": "seconds",
    "days": "seconds",
    "weeks": "seconds",
    "kelvins": "kelvin",
    "fahrenheit": "celsius",
    "rankine": "celsius",
    "inches": "meters",
    "yards": "meters",
    "miles": "meters",
    "bits": "bytes",
    "calories": "joules",
    "pounds": "grams",
    "ounces": "grams",
}
# "mibi" (not "mebi") is promlint's own spelling; kept so that mebibytes is not flagged, as in promtool.
_UNIT_PREFIXES = (
    "pico",
    "nano",
    "micro",
    "milli",
    "centi",
    "deci",
    "deca",
    "hecto",
    "kilo",
    "kibi",
    "mega",
    "mibi",
    "giga",
    "gibi",
    "tera",
    "tebi",
    "peta",
    "pebi",
)
_UNIT_ABBREVIATIONS = ("s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d")
#: dto.MetricType names except UNTYPED, lower-cased.
_TYPE_NAMES = ("counter", "gauge", "summary", "histogram", "gauge_histogram")
_CAMEL_CASE = re.compile(r"[a-z][A-Z]")
_NAME = itemgetter(0)  # Sample.name
_LABELS = itemgetter(1)  # Sample.labels


@dataclass(frozen=True, slots=True, order=True)
class LintProblem:
    """One problem, in promtool's words: ``metric`` then ``text``."""

    metric: str
    text: str
    rule: str
    #: The family has no samples. promtool never sees such a family (expfmt drops
    #: empty families), so these problems are ours alone and not compared.
    unsampled: bool = False

    @property
    def line(self) -> str:
        return f"{self.metric} {self.text}"


def metric_units(name: str) -> list[tuple[str, str]]:
    """Every ``(unit word, base unit)`` in ``name``, in name order (``milliseconds`` → ``seconds``)."""
    found = []
    for word in name.split("_"):
        for prefix in ("", *_UNIT_PREFIXES):
            if word.startswith(prefix) and word[len(prefix) :] in _BASE_UNITS:
                found.append((word, _BASE_UNITS[word[len(prefix) :]]))
                break
    return found


def lint_view(view: MetricsView) -> list[LintProblem]:
    """Every problem in ``view``, de-duplicated and sorted like promtool's output."""
    problems: set[LintProblem] = set()
    for name in view.duplicate_declarations:
        problems.add(LintProblem(name, "metric family is declared more than once", "duplicate-family"))
    for family in view.families:
        found = _lint_family(family)
        if not family.samples:
            found = (replace(p, unsampled=True) for p in found)
        problems.update(found)
    return sorted(problems)


def _lint_family(family: ExposedFamily) -> Iterable[LintProblem]:
    name, kind = family.name, family.type
    lower = name.lower()
    if not family.help.strip():
        yield LintProblem(name, "no help text", "help")
    units = metric_units(name)
    non_base = [(unit, base) for unit, base in units if unit != base]
    if non_base:
        unit, base = non_base[0]
        yield LintProblem(name, f'use base unit "{base}" instead of "{unit}"', "units")
    has_total = name.endswith("_total")
    if kind == "counter" and not has_total:
        yield LintProblem(name, 'counter metrics should have "_total" suffix', "counter-suffix")
    elif kind not in ("counter", "untyped") and has_total:
        yield LintProblem(name, 'non-counter metrics should not have "_total" suffix', "counter-suffix")
    labels, duplicated = _label_sets(family.samples)
    if kind != "untyped":
        histogram, summary = kind == "histogram", kind == "summary"
        if not histogram and name.endswith("_bucket"):
            yield LintProblem(
                name, 'non-histogram metrics should not have "_bucket" suffix', "reserved-suffix"
            )
        for suffix in ("_count", "_sum"):
            if not histogram and not summary and name.endswith(suffix):
                yield LintProblem(
                    name,
                    f'non-histogram and non-summary metrics should not have "{suffix}" suffix',
                    "reserved-suffix",
                )
        if not histogram and "le" in labels:
            yield LintProblem(name, 'non-histogram metrics should not have "le" label', "reserved-label")
        if not summary and "quantile" in labels:
            yield LintProblem(name, 'non-summary metrics should not have "quantile" label', "reserved-label")
    for type_name in _TYPE_NAMES:
        if f"_{type_name}_" in lower or lower.endswith(f"_{type_name}"):
            yield LintProblem(name, f"metric name should not include type '{type_name}'", "type-in-name")
    if ":" in name:
        yield LintProblem(name, "metric names should not contain ':'", "colon")
    if _CAMEL_CASE.search(name):
        yield LintProblem(
            name, "metric names should be written in 'snake_case' not 'camelCase'", "camel-case"
        )
    if any(_CAMEL_CASE.search(label) for label in labels):
        yield LintProblem(name, "label names should be written in 'snake_case' not 'camelCase'", "camel-case")
    for abbreviation in _UNIT_ABBREVIATIONS:
        if f"_{abbreviation}_" in lower or lower.endswith(f"_{abbreviation}"):
            yield LintProblem(name, "metric names should not contain abbreviated units", "abbreviated-units")
            break
    if duplicated:
        yield LintProblem(name, "metric not unique", "duplicate-series")


def _label_sets(samples: Sequence[Sample]) -> tuple[set[str], bool]:
    """The label names of ``samples`` (``ExposedFamily.label_names``), and whether two
    of them share a series key (:func:`series_key`: name and label set).

    On a 1M-series exposition this was the lint's hot spot, so it avoids a
    frozenset per sample: when no label set of a sample name is written in two
    label orders, the written order and the values identify the series. The
    label names come from the distinct orders, not from every sample. And it
    keeps hashes, not keys: distinct hashes are distinct keys, so the keys
    themselves are compared only when two hashes are equal (a duplicate, or
    a collision).
    """
    names = list(map(_NAME, samples))
    labels = list(map(_LABELS, samples))
    shapes = set(zip(names, map(tuple, labels), strict=True))
    label_names: set[str] = set().union(*(order for _, order in shapes))

    def keys() -> Iterable[object]:
        values = map(tuple, map(dict.values, labels))
        if len(shapes) == 1:  # one sample name, one label order: the values identify a series
            return values
        if len({name for name, _ in shapes}) == len(shapes):  # one label order per sample name
            return zip(names, values, strict=True)
        if len({(name, frozenset(order)) for name, order in shapes}) == len(shapes):
            return zip(names, map(tuple, labels), values, strict=True)
        return zip(names, map(frozenset, map(dict.items, labels)), strict=True)  # a set in two orders

    if len(set(map(hash, keys()))) == len(samples):
        return label_names, False
    return label_names, len(set(keys())) != len(samples)


def compare_with_promtool(
    ours: Sequence[LintProblem],
    promtool_problems: Iterable[tuple[str, str]],
    promtool_parse_error: str,
    promtool_version: tuple[int, ...],
) -> list[str]:
    """Where our verdict and promtool's differ, one line each; ``[]`` when they agree.

    ``promtool_problems`` are ``(metric, text)`` pairs. An exposition promtool
    refuses to parse (``promtool_parse_error``) agrees with ours when we found
    the family declared twice, which is what promtool's parser stops on.
    """
    if promtool_parse_error:
        twice = "second HELP line" in promtool_parse_error or "second TYPE line" in promtool_parse_error
        if twice and any(p.rule == "duplicate-family" for p in ours):
            return []
        return [f"promtool could not parse the exposition ({promtool_parse_error}); we could"]
    compared = [
        p
        for p in ours
        if not p.unsampled and (p.rule != "duplicate-series" or promtool_version >= DUPLICATE_SERIES_SINCE)
    ]
    mine = {(p.metric, p.text) for p in compared if p.rule != "units"}
    my_units = {p.metric for p in compared if p.rule == "units"}
    theirs: set[tuple[str, str]] = set()
    their_units: dict[str, str] = {}
    for metric, text in promtool_problems:
        if text.startswith("use base unit"):
            their_units[metric] = text
        else:
            theirs.add((metric, text))
    differences = [f"only we report: {m} {t}" for m, t in sorted(mine - theirs)]
    differences += [f"only promtool reports: {m} {t}" for m, t in sorted(theirs - mine)]
    for metric in sorted(my_units | set(their_units)):
        units = metric_units(metric)
        acceptable = {f'use base unit "{base}" instead of "{unit}"' for unit, base in units if unit != base}
        if metric in their_units and metric in my_units:
            if their_units[metric] not in acceptable:
                differences.append(f"promtool reports {metric} {their_units[metric]}; we report another unit")
        elif metric in my_units:
            # With a base unit in the name too, promtool's map order decides (module docstring).
            if not any(unit == base for unit, base in units):
                differences.append(f"only we report: {metric} use base unit (one of {sorted(acceptable)})")
        else:
            differences.append(f"only promtool reports: {metric} {their_units[metric]}")
    return differences
