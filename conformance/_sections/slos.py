"""``slos``: the service's objectives, read by the alert, metric and load families.

Each SLO names the metric its SLI is computed from and/or a PromQL
expression that evaluates to the SLI value; ``objective`` (a share of good
events) and ``threshold`` (a bound on the SLI value) say what "good" means.
The expression is parsed when the profile loads, so a typo never reaches a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from conformance._exceptions import ProfileError
from conformance._promql import PromQLError, family_name, selectors

__all__ = ["KEY", "Slo", "Slos", "Threshold", "parse"]

KEY = "slos"


@dataclass(frozen=True, slots=True)
class Threshold:
    """The SLI must satisfy ``value <op> self.value`` (e.g. p95 ``<`` 2 seconds)."""

    op: str
    value: float
    unit: str = ""

    def holds(self, observed: float) -> bool:
        return {
            "<": observed < self.value,
            "<=": observed <= self.value,
            ">": observed > self.value,
            ">=": observed >= self.value,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}{' ' + self.unit if self.unit else ''}"


@dataclass(frozen=True, slots=True)
class Slo:
    name: str
    metric: str | None = None
    expression: str | None = None
    objective: float | None = None
    threshold: Threshold | None = None
    description: str = ""
    source: str = ""

    @property
    def metrics(self) -> frozenset[str]:
        """The metric names the SLO is about: ``metric`` when given, else every
        name its expression selects (an error ratio's numerator and denominator)."""
        if self.metric:
            return frozenset({self.metric})
        return frozenset(s.name for s in selectors(self.expression or "") if s.name)

    @property
    def families(self) -> frozenset[str]:
        return frozenset(family_name(n) for n in self.metrics)


@dataclass(frozen=True, slots=True)
class Slos:
    """The profile's SLOs in order (empty when the profile has none)."""

    items: tuple[Slo, ...] = ()

    def __iter__(self) -> Iterator[Slo]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, name: str) -> Slo | None:
        return next((slo for slo in self.items if slo.name == name), None)


def parse(profile: Any, value: list[dict[str, Any]] | None, display: str) -> Slos:
    if value is None:
        return Slos()
    items: list[Slo] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(value):
        where = f"slos[{i}]"
        name = raw["name"]
        if name in seen:
            raise ProfileError(display, f"{where}.name", f"duplicate of slos[{seen[name]}]")
        seen[name] = i
        if "metric" not in raw and "expression" not in raw:
            raise ProfileError(display, where, "needs a metric or an expression (or both)")
        expression = raw.get("expression")
        if expression is not None:
            try:
                found = selectors(expression)
            except PromQLError as exc:
                raise ProfileError(display, f"{where}.expression", f"not valid PromQL: {exc}") from None
            if not any(s.name for s in found):
                raise ProfileError(display, f"{where}.expression", "selects no metric by name")
        threshold = raw.get("threshold")
        items.append(
            Slo(
                name=name,
                metric=raw.get("metric"),
                expression=expression,
                objective=float(raw["objective"]) if "objective" in raw else None,
                threshold=Threshold(threshold["op"], float(threshold["value"]), threshold.get("unit", ""))
                if threshold
                else None,
                description=raw.get("description", ""),
                source=raw.get("source", ""),
            )
        )
    return Slos(tuple(items))
